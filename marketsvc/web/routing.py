"""What each handler declares about itself: who may call it and the shapes it takes and gives.

The access middleware and the OpenAPI generator both read this; a route without it is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

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
    headers: tuple[str, ...] = ()  # request headers it reads, e.g. "Idempotency-Key"
    # For the OpenAPI document (marketsvc/web/openapi.py); the defaults fit a JSON API route.
    database: bool = True  # it may answer 503 when the database is unavailable
    media_type: str = "application/json"  # of the success response
    extra_media_types: tuple[str, ...] = ()  # other success media types, as text (e.g. SSE)
    request_example: Any = None
    response_example: Any = None


def endpoint(**kwargs: object) -> Callable[[Handler], Handler]:
    spec = Endpoint(**kwargs)  # type: ignore[arg-type]

    def attach(handler: Handler) -> Handler:
        handler.endpoint = spec  # type: ignore[attr-defined]
        return handler

    return attach


def endpoint_of(handler: object) -> Endpoint | None:
    return getattr(handler, "endpoint", None)


UNMATCHED = "<unmatched>"  # one label for every unknown path, so scanners cannot explode series


def route_of(request: web.Request) -> str:
    """The route template (``/api/v1/items/{id}``), never the raw path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED
