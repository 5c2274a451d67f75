"""Who calls, and whether the matched route lets them: the route's ``@endpoint(access=...)``."""

from __future__ import annotations

from aiohttp import web

from marketsvc.errors import Forbidden, Unauthorized
from marketsvc.web.auth import TOKEN_CODEC
from marketsvc.web.keys import PRINCIPAL
from marketsvc.web.routing import Access, Handler, endpoint_of


def bearer_token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("this route needs an Authorization: Bearer token")
    return token.strip()


def required_access(request: web.Request) -> Access:
    """What the matched route demands. An /api/v1 route that declares nothing is admin-only."""
    if request.match_info.http_exception is not None:
        return Access.PUBLIC  # no such route or method: let the router answer 404/405
    spec = endpoint_of(request.match_info.handler)
    if spec is not None:
        return spec.access
    return Access.ADMIN if request.path.startswith("/api/v1/") else Access.PUBLIC


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    access = required_access(request)
    if access is Access.PUBLIC:
        return await handler(request)
    principal = request.app[TOKEN_CODEC].decode(bearer_token(request))
    if access is Access.ADMIN and not principal.is_admin:
        raise Forbidden("this route is for admins only")
    if access is Access.CUSTOMER and principal.is_seller:
        raise Forbidden("this route is for admins and customers only")
    if access is Access.SELLER and not (principal.is_admin or principal.is_seller):
        raise Forbidden("this route is for admins and sellers only")
    request[PRINCIPAL] = principal
    return await handler(request)
