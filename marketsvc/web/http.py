"""Request parsing and JSON responses shared by every handler."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from marshmallow import Schema

from marketsvc.errors import DomainError, NotFound
from marketsvc.schemas.common import parse_id


class MalformedJSON(DomainError):
    status = 400
    title = "Malformed JSON"


class UnsupportedMediaType(DomainError):
    status = 415
    title = "Unsupported media type"


def path_id(request: web.Request, name: str = "id") -> int:
    """A path id that is not a positive 64-bit integer names nothing: 404."""
    raw = request.match_info[name]
    value = parse_id(raw)
    if value is None:
        raise NotFound(f"no resource with {name} {raw!r}")
    return value


async def read_json(request: web.Request, schema: Schema) -> Any:
    """The body, parsed as JSON and loaded (validated) by ``schema``."""
    if request.content_type != "application/json" and not request.content_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"the body must be application/json, not {request.content_type or 'missing'!r}"
        )
    body = await request.read()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"the body is not valid JSON: {exc}") from None
    return schema.load(data)


def read_query(request: web.Request, schema: Schema) -> Any:
    """The query string loaded by ``schema``: a repeated parameter is invalid, not silently lost."""
    data: dict[str, str | list[str]] = {}
    for key in request.query:
        values = request.query.getall(key)
        data[key] = values[0] if len(values) == 1 else values
    return schema.load(data)


async def read_body(request: web.Request) -> Any:
    """The body validated by the very schema instance the route declares (and documents)."""
    return await read_json(request, _declared(request).body)


def read_params(request: web.Request) -> Any:
    """The query string validated by the schema instance the route declares (and documents)."""
    return read_query(request, _declared(request).query)


def _declared(request: web.Request) -> Any:
    spec = getattr(request.match_info.handler, "endpoint", None)
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
