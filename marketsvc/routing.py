"""What each handler declares about itself: who may call it and the shapes it takes and gives.

The access middleware and the OpenAPI generator both read this; a route without it is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from aiohttp import web
from marshmallow import Schema

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Access(StrEnum):
    PUBLIC = "public"  # anyone, no token
    CUSTOMER = "customer"  # an admin, or a customer acting on its own data
    ADMIN = "admin"  # admins only


@dataclass(frozen=True)
class Endpoint:
    summary: str
    access: Access
    tag: str
    body: Schema | None = None
    query: Schema | None = None
    response: Schema | None = None
    status: int = 200
    stream: bool = False
    errors: tuple[int, ...] = ()
    headers: tuple[str, ...] = ()


def endpoint(**kwargs: object) -> Callable[[Handler], Handler]:
    spec = Endpoint(**kwargs)  # type: ignore[arg-type]

    def attach(handler: Handler) -> Handler:
        handler.endpoint = spec  # type: ignore[attr-defined]
        return handler

    return attach


def endpoint_of(handler: object) -> Endpoint | None:
    return getattr(handler, "endpoint", None)
