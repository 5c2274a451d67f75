"""``Idempotency-Key`` on POST, PATCH and DELETE: the request runs once, retries replay it."""

from __future__ import annotations

from aiohttp import web

from marketsvc.services.idempotency import (
    IDEMPOTENCY_HEADER,
    UNSAFE_METHODS,
    idempotency_key,
    run_once,
)
from marketsvc.web.keys import PRINCIPAL
from marketsvc.web.routing import Handler, endpoint_of


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in UNSAFE_METHODS or IDEMPOTENCY_HEADER not in request.headers:
        return await handler(request)  # the fast path: two lookups
    spec = endpoint_of(request.match_info.handler)
    if spec is None or not spec.keyed or PRINCIPAL not in request:
        return await handler(request)  # keys belong to a caller: a public route has none
    return await run_once(request, handler, idempotency_key(request))
