"""What each handler declares about itself: who may call it and the shapes it takes and gives.

The access middleware and the OpenAPI generator both read this; a route without it is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from aiohttp import web
from marshmallow import Schema

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)
_ATTRIBUTE = "endpoint"  # where a handler carries its declaration


class Access(StrEnum):
    PUBLIC = "public"  # anyone, no token
    CUSTOMER = "customer"  # an admin, or a customer acting on its own data
    ADMIN = "admin"  # admins only
    SELLER = "seller"  # an admin, or a seller acting on its own data


@dataclass(frozen=True)
class Endpoint:
    summary: str
    access: Access
    tag: str
    body: Schema | None = None
    query: Schema | None = None
    response: Schema | dict[str, Any] | None = None  # a dict: a raw JSON Schema (oneOf, say)
    status: int = 200
    stream: bool = False
    errors: tuple[int, ...] = ()
    headers: tuple[str, ...] = ()  # request headers it reads, besides the ones below
    # POST/PATCH/DELETE honour Idempotency-Key (marketsvc/services/idempotency.py); False for a
    # read that takes a body, which is safe to retry as it is
    keyed: bool = True
    response_headers: tuple[str, ...] = ()  # success headers it may send, e.g. "Link"
    cached: bool = False  # ETag and Cache-Control; If-None-Match may make it a 304
    # For the OpenAPI document (marketsvc/web/openapi.py); the defaults fit a JSON API route.
    database: bool = True  # it may answer 503 when the database is unavailable
    media_type: str = "application/json"  # of the success response
    extra_media_types: tuple[str, ...] = ()  # other success media types, as text (e.g. SSE)
    request_example: Any = None
    response_example: Any = None

    def __call__(self, handler: H) -> H:
        """As a decorator: the handler carries this declaration."""
        setattr(handler, _ATTRIBUTE, self)
        return handler


endpoint = Endpoint  # ``@endpoint(summary=..., access=..., tag=...)`` above a handler


def endpoint_of(handler: object) -> Endpoint | None:
    spec: Endpoint | None = getattr(handler, _ATTRIBUTE, None)  # set only by Endpoint.__call__
    return spec


UNSAFE_METHODS = frozenset(("POST", "PATCH", "DELETE"))


def honours_key(method: str, spec: Endpoint | None) -> bool:
    """Whether a request to this route runs once per Idempotency-Key (and is documented so)."""
    return method in UNSAFE_METHODS and spec is not None and spec.keyed


UNMATCHED = "<unmatched>"  # one label for every unknown path, so scanners cannot explode series


def route_of(request: web.Request) -> str:
    """The route template (``/api/v1/items/{id}``), never the raw path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED
