"""``Idempotency-Key`` on POST, PATCH and DELETE: the request runs once, retries replay it."""

from __future__ import annotations

from aiohttp import web

from marketsvc.services.idempotency import IDEMPOTENCY_HEADER, idempotency_key, run_once
from marketsvc.web.keys import PRINCIPAL
from marketsvc.web.routing import Handler, endpoint_of, honours_key


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if IDEMPOTENCY_HEADER not in request.headers:
        return await handler(request)  # the fast path: one lookup
    spec = endpoint_of(request.match_info.handler)
    if not honours_key(request.method, spec) or PRINCIPAL not in request:
        return await handler(request)  # a read, or a public route: keys belong to a caller
    return await run_once(request, handler, idempotency_key(request))
