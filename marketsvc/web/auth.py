"""Bearer JWTs: who calls, and whether the route lets them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import jwt
from aiohttp import web

from marketsvc.errors import Unauthorized
from marketsvc.schemas.common import parse_id
from marketsvc.settings import Settings

LEEWAY_SECONDS = 30
ROLES = ("admin", "customer", "seller")


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_seller(self) -> bool:
        return self.role == "seller"

    @property
    def customer_id(self) -> int | None:
        """The customer this caller may act for; ``None`` for an admin (any customer). Only a
        customer has one: a route that lets a seller in must not read a seller's id as this
        (the access middleware keeps sellers off customer routes)."""
        return int(self.subject) if self.role == "customer" else None

    @property
    def seller_id(self) -> int | None:
        """The seller this caller acts for; ``None`` for anyone else."""
        return int(self.subject) if self.is_seller else None

    @property
    def owner(self) -> str:
        return f"{self.role}:{self.subject}"


class TokenCodec:
    """Issues and verifies tokens. A verified token is remembered (keyed by the whole signed
    string) until it expires, so a client reusing its token pays for the signature once."""

    CACHE_SIZE = 10_000

    def __init__(self, settings: Settings) -> None:
        self.secret = settings.jwt_secret
        self.public_key_file = settings.jwt_public_key_file
        self._verified: dict[str, tuple[Principal, float]] = {}

    @cached_property
    def _public_key(self) -> str | None:
        return Path(self.public_key_file).read_text() if self.public_key_file else None

    def issue(self, subject: str, role: str, ttl: int = 3600) -> str:
        now = int(time.time())
        claims = {"sub": subject, "role": role, "iat": now, "exp": now + ttl}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def decode(self, token: str) -> Principal:
        hit = self._verified.get(token)
        if hit is not None and time.time() <= hit[1] + LEEWAY_SECONDS:
            return hit[0]
        principal, expires = self._verify(token)
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
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
        except (jwt.InvalidTokenError, OSError, ValueError):  # the library's words stay here
            raise Unauthorized("the token is not valid") from None
        return _principal(claims), float(claims["exp"])


def _principal(claims: dict[str, object]) -> Principal:
    subject, role = str(claims.get("sub", "")), claims.get("role")
    if role not in ROLES:
        raise Unauthorized("the token names no known role")
    if role == "customer" and parse_id(subject) is None:
        raise Unauthorized("a customer token's subject must be a customer id")
    if role == "seller" and parse_id(subject) is None:
        raise Unauthorized("a seller token's subject must be a seller id")
    return Principal(subject=subject, role=str(role))


TOKEN_CODEC = web.AppKey("token_codec", TokenCodec)
