"""Request counts, latency and in-flight requests per method, route template and status."""

from __future__ import annotations

import time

from aiohttp import web

from marketsvc.events import tracking
from marketsvc.ops.metrics import EVENTS_WRITTEN, IN_FLIGHT, ROWS_STREAMED, TALLIES
from marketsvc.web.keys import STREAMED_BYTES
from marketsvc.web.routing import Handler, route_of

_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Counted in this worker's ``TALLIES``, published to /metrics every second and on scrape;
    the in-flight gauge is live."""
    start = time.perf_counter()
    status = 499  # cancelled: the client went away before an answer existed (nginx's code)
    IN_FLIGHT.inc()
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # redirects are raised, not returned
        status = exc.status
        raise
    finally:
        IN_FLIGHT.dec()
        method = request.method if request.method in _METHODS else "OTHER"
        TALLIES.observe(method, route_of(request), status, time.perf_counter() - start)
        if status < 400:  # a failed request rolled its events back
            for _, event_type in tracking.recorded():
                EVENTS_WRITTEN.labels(event_type).inc()


def streamed(request: web.Request, rows: int, body_bytes: int) -> None:
    """A streaming response wrote ``rows`` rows in ``body_bytes`` bytes."""
    ROWS_STREAMED.labels(route_of(request)).inc(rows)
    request[STREAMED_BYTES] = request.get(STREAMED_BYTES, 0) + body_bytes
