"""Bearer JWTs: who calls, and whether the route lets them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import jwt
from aiohttp import web

from marketsvc.errors import Forbidden, Unauthorized
from marketsvc.keys import PRINCIPAL
from marketsvc.routing import Access, Handler, endpoint_of
from marketsvc.settings import Settings

LEEWAY_SECONDS = 30
ROLES = ("admin", "customer")


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def customer_id(self) -> int | None:
        """The customer this caller may act for; ``None`` for an admin (any customer)."""
        return None if self.is_admin else int(self.subject)

    @property
    def owner(self) -> str:
        return f"{self.role}:{self.subject}"


class TokenCodec:
    def __init__(self, settings: Settings) -> None:
        self.secret = settings.jwt_secret
        self.public_key_file = settings.jwt_public_key_file

    @cached_property
    def _public_key(self) -> str | None:
        return Path(self.public_key_file).read_text() if self.public_key_file else None

    def issue(self, subject: str, role: str, ttl: int = 3600) -> str:
        now = int(time.time())
        claims = {"sub": subject, "role": role, "iat": now, "exp": now + ttl}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def decode(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") == "RS256" and self._public_key:
                key, algorithms = self._public_key, ["RS256"]
            else:
                key, algorithms = self.secret, ["HS256"]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except (jwt.InvalidTokenError, OSError, ValueError) as exc:
            raise Unauthorized(f"the token is not valid: {exc}") from None
        return _principal(claims)


def _principal(claims: dict[str, object]) -> Principal:
    subject, role = str(claims.get("sub", "")), claims.get("role")
    if role not in ROLES:
        raise Unauthorized("the token names no known role")
    if role == "customer" and not (subject.isdecimal() and 0 < int(subject) < 2**63):
        raise Unauthorized("a customer token's subject must be a customer id")
    return Principal(subject=subject, role=str(role))


TOKEN_CODEC = web.AppKey("token_codec", TokenCodec)


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
    request[PRINCIPAL] = principal
    return await handler(request)
