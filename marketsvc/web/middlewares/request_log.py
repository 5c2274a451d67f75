"""One ``request`` log line per request: method, route template, status, duration, bytes, id,
and the ids of the events the request committed."""

from __future__ import annotations

import time

from aiohttp import web

from marketsvc.events import tracking
from marketsvc.ops.logs import REQUEST_LINES
from marketsvc.web.keys import STREAMED_BYTES
from marketsvc.web.middlewares.request_id import request_id_of
from marketsvc.web.routing import Handler, route_of


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.perf_counter()
    tracking.start()
    response: web.StreamResponse | None = None
    try:
        response = await handler(request)
        return response
    except web.HTTPException as exc:  # redirects are raised, not returned
        response = exc
        raise
    finally:
        _log_request(request, response, start)


def _log_request(request: web.Request, response: web.StreamResponse | None, start: float) -> None:
    if response is None:  # cancelled: the client went away before an answer existed
        status, size = 499, 0
    elif isinstance(response, web.Response):
        status, size = response.status, response.content_length or 0
    else:  # a stream, already written: the body bytes it counted
        status, size = response.status, request.get(STREAMED_BYTES, 0)
    fields = {
        "method": request.method,
        "route": route_of(request),
        "status": status,
        "duration_ms": round((time.perf_counter() - start) * 1000, 2),
        "bytes": size,
        "request_id": request_id_of(request),
    }
    events = tracking.recorded()
    if events and status < 400:  # a failed request rolled its events back
        fields["event_ids"] = [event_id for event_id, _ in events]
    REQUEST_LINES.log(f"{request.method} {request.path} {status}", fields)
