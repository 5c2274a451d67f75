"""Request parsing and JSON responses shared by every handler."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import HttpVersion11, web
from marshmallow import Schema, ValidationError

from marketsvc.errors import DomainError, InvalidRequest, NotFound
from marketsvc.schemas.common import parse_id
from marketsvc.web.keys import SETTINGS
from marketsvc.web.problems import flatten_errors, problem
from marketsvc.web.routing import Endpoint, endpoint_of


class MalformedJSON(DomainError):
    status = 400


class UnsupportedMediaType(DomainError):
    status = 415


def path_id(request: web.Request, name: str = "id") -> int:
    """A path id that is not a positive 64-bit integer names nothing: 404."""
    raw = request.match_info[name]
    value = parse_id(raw)
    if value is None:
        raise NotFound(f"no resource with {name} {raw!r}")
    return value


def body_too_large(request: web.Request) -> bool:
    """The client announced a body over ``MARKETSVC_MAX_BODY_BYTES``: refuse it unread."""
    length = request.content_length
    return length is not None and length > request.app[SETTINGS].max_body_bytes


async def continue_unless_too_large(request: web.Request) -> web.StreamResponse | None:
    """aiohttp's ``expect_handler`` for every route: ``Expect: 100-continue`` gets its
    ``100 Continue`` only when the announced body fits; otherwise nothing is sent, so the client
    keeps its body and the handler's ``read_json`` answers 413 at once. Any other expectation is
    a 417 problem (this runs before the middlewares, so it answers for itself)."""
    if request.headers.get("Expect", "").lower() != "100-continue":
        return problem(417, "the only expectation understood is 100-continue")
    if request.version >= HttpVersion11 and not body_too_large(request):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the interim response is not part of the answer
    return None


async def read_json(request: web.Request, schema: Schema) -> dict[str, Any]:
    """The body, parsed as JSON and loaded (validated) by ``schema``."""
    if body_too_large(request):
        raise web.HTTPRequestEntityTooLarge(
            max_size=request.app[SETTINGS].max_body_bytes, actual_size=request.content_length or 0
        )
    if request.content_type != "application/json" and not request.content_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"the body must be application/json, not {request.content_type or 'missing'!r}"
        )
    body = await request.read()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"the body is not valid JSON: {exc}") from None
    return _load(schema, data, "body")


def read_query(request: web.Request, schema: Schema) -> dict[str, Any]:
    """The query string loaded by ``schema``: a repeated parameter is invalid, not silently lost."""
    data: dict[str, str | list[str]] = {}
    for key in request.query:
        values = request.query.getall(key)
        data[key] = values[0] if len(values) == 1 else values
    return _load(schema, data, "query")


def _load(schema: Schema, data: Any, where: str) -> dict[str, Any]:
    """``schema.load``, its errors keyed by where they came from (``body.lines.0.quantity``)."""
    try:
        loaded: dict[str, Any] = schema.load(data)  # a Schema without many=True loads an object
    except ValidationError as exc:
        raise InvalidRequest(flatten_errors(exc.messages, where)) from None
    return loaded


async def read_body(request: web.Request) -> dict[str, Any]:
    """The body validated by the very schema instance the route declares (and documents)."""
    schema = _declared(request).body
    assert schema is not None, "a route that reads a body declares @endpoint(body=...)"
    return await read_json(request, schema)


def read_params(request: web.Request) -> dict[str, Any]:
    """The query string validated by the schema instance the route declares (and documents)."""
    schema = _declared(request).query
    assert schema is not None, "a route that reads its query declares @endpoint(query=...)"
    return read_query(request, schema)


def _declared(request: web.Request) -> Endpoint:
    spec = endpoint_of(request.match_info.handler)
    assert spec is not None, "every route declares itself with @endpoint"
    return spec


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def created(data: dict[str, Any], location: str) -> web.Response:
    return json_response(data, status=201, headers={"Location": location})
