"""The OpenAPI 3.1 document, built once at start-up from every route's ``@endpoint`` metadata.

Request and response shapes come from the same marshmallow schemas the handlers load and dump
with (apispec's marshmallow plugin), so the document cannot drift from the code. Error responses
are derived from what each route declares: any request can be malformed (400); a body can be too
big (413), not JSON (415) or invalid (422); a query can be invalid (422); a token can be missing
(401) or lack the right (403); a path id can name nothing (404); the database can be down (503).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from marketsvc.schemas.common import MAX_ID, Money
from marketsvc.schemas.events import CURSOR_PATTERN
from marketsvc.services.idempotency import KEY_PATTERN, MAX_KEY_LENGTH
from marketsvc.web.openapi_components import (
    REPLAYED_REF,
    add_components,
    custom_field_properties,
    problem_name,
    schema_name,
)
from marketsvc.web.routing import Access, Endpoint, Handler, endpoint_of, honours_key

OPENAPI_JSON = web.AppKey("openapi_json", bytes)
DOCUMENTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PATH_PARAM = re.compile(r"\{(\w+)\}")

TAGS = {  # in the order the docs page shows them; a tag not listed here comes last
    "items": "The catalogue: anyone reads, admins and sellers write.",
    "customers": "Customers and their addresses.",
    "orders": "Orders, their lines, totals and status moves.",
    "events": "What changed, as CloudEvents: a feed that never skips one.",
    "users": "Users and the pets they own.",
    "pets": "Pets, owned by a user or by nobody.",
    "sellers": "Sellers: who sells each item, their status and commission.",
    "operations": "Liveness, readiness and metrics.",
    "documentation": "This document and its interactive page.",
    "payments": "Payment results from the payment provider, signed per Standard Webhooks.",
}
WHO_MAY_CALL = {
    Access.PUBLIC: "Anyone may call this; no token is needed.",
    Access.CUSTOMER: (
        "Needs a bearer token: an admin's, or a customer's acting on its own data (another"
        " customer's resources answer 404)."
    ),
    Access.ADMIN: "Needs an admin's bearer token.",
    Access.SELLER: (
        "Needs a bearer token: an admin's, or a seller's acting on its own data (another"
        " seller's resources answer 404; a suspended seller's token may read, not change)."
    ),
}
ETAG = {
    "description": "A strong tag of this representation (its bytes): send it back in "
    "`If-None-Match` to revalidate, or in `If-Match` to edit only this version.",
    "schema": {"type": "string", "pattern": '^"[0-9a-f]{32}"$'},
}
REQUEST_HEADERS: dict[str, dict[str, Any]] = {
    "If-Match": {
        "description": "Change the item only if its current `ETag` is one of these (or `*`);"
        " otherwise 412 and nothing changes.",
        "schema": {"type": "string"},
    },
    "If-None-Match": {
        "description": "The `ETag`s the client holds: when one is current, 304 without a body.",
        "schema": {"type": "string"},
    },
    "Last-Event-ID": {
        "description": "An SSE client resuming: the `id:` of the last event it received; the"
        " feed continues after it (it wins over `after`).",
        "schema": {"type": "string", "pattern": CURSOR_PATTERN},
    },
    "webhook-id": {
        "description": "Standard Webhooks: the sender's message id (at most 255 characters); a"
        " repeated id is answered, not applied again. Missing: 401.",
        "schema": {"type": "string"},
    },
    "webhook-timestamp": {
        "description": "Standard Webhooks: seconds since the epoch; more than 5 minutes off: 401.",
        "schema": {"type": "string"},
    },
    "webhook-signature": {
        "description": "Standard Webhooks: `v1,<base64 HMAC-SHA256 of id.timestamp.body>` under"
        " `MARKETSVC_PAYMENTS_WEBHOOK_SECRET` (several, space-separated); no match: 401.",
        "schema": {"type": "string"},
    },
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes a retry safe: the first answer to this key from this caller (kept at least "
        "24 hours) is replayed byte for byte with `Idempotent-Replayed: true`; the same key "
        "with another method, path or body is 422; while the first is in flight, 409."
    ),
    "schema": {"type": "string", "pattern": KEY_PATTERN, "maxLength": MAX_KEY_LENGTH},
}
RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "ETag": ETAG,
    "Cache-Control": {
        "description": "`public, max-age=5`: any cache may keep it for 5 seconds, then "
        "revalidate with `If-None-Match`.",
        "schema": {"type": "string"},
    },
    "Link": {
        "description": '`<...>; rel="next"` (RFC 8288): the next page, with its cursor, '
        "whenever more rows may follow.",
        "schema": {"type": "string"},
    },
}


def build_spec(app: web.Application) -> APISpec:
    plugin = MarshmallowPlugin(schema_name_resolver=schema_name)
    spec = APISpec(
        title="marketsvc",
        version="1",
        openapi_version="3.1.0",
        plugins=[plugin],
        info={
            "description": "A marketplace order service. Money is a decimal string. An integer"
            " in a body may be written as a whole-number float (`3.0`, `3e0`) up to 2^53;"
            " beyond, write it as plain digits (a float that large may not be the number"
            " written). Errors are problem+json; each `errors` key says where the input came"
            " from (`body.`, `query.`, `header.`).",
            "license": {"name": "Proprietary"},
            "contact": {"name": "marketsvc maintainers"},
        },
        servers=[{"url": "/", "description": "The service that serves this document"}],
        security=[{"bearerAuth": []}],  # the default; public operations say security: []
    )
    assert plugin.converter is not None  # APISpec(plugins=[plugin]) has set it
    plugin.map_to_openapi_type(Money, "string", None)
    plugin.converter.add_attribute_function(custom_field_properties)
    paths = _operations(app)
    add_components(spec, _error_statuses_used(paths))
    used = {op["tags"][0] for ops in paths.values() for op in ops.values()}
    for tag in [*(t for t in TAGS if t in used), *sorted(used - TAGS.keys())]:
        spec.tag({"name": tag, "description": TAGS.get(tag, "")})
    for path, operations in sorted(paths.items()):
        spec.path(path=path, operations=operations)
    return spec


def _error_statuses_used(paths: dict[str, dict[str, Any]]) -> set[int]:
    return {
        int(status)
        for operations in paths.values()
        for operation in operations.values()
        for status in operation["responses"]
        if int(status) >= 400
    }


def build_document(app: web.Application) -> dict[str, Any]:
    document = build_spec(app).to_dict()
    for operations in document["paths"].values():
        for operation in operations.values():
            for param in operation.get("parameters", ()):
                _no_null_in_query(param)
    return document


def _no_null_in_query(param: dict[str, Any]) -> None:
    """A query string cannot carry null: an optional parameter is simply left out."""
    schema = param.get("schema", {})
    if param.get("in") == "query" and isinstance(schema.get("type"), list):
        schema["type"] = next(t for t in schema["type"] if t != "null")
        if schema.get("default", 0) is None:
            del schema["default"]


def undocumented_routes(app: web.Application, document: dict[str, Any]) -> list[str]:
    """Routes with no ``@endpoint`` metadata, or missing from ``document``: each is a bug."""
    missing = []
    for route in app.router.routes():
        resource = route.resource  # None only for aiohttp's system routes, never in a router
        if (
            route.method not in DOCUMENTED_METHODS
            or resource is None
            or isinstance(resource, web.StaticResource)
        ):
            continue
        spec, path = endpoint_of(route.handler), resource.canonical
        if spec is None:
            missing.append(f"{route.method} {path}: no @endpoint metadata")
        elif route.method.lower() not in document["paths"].get(path, {}):
            missing.append(f"{route.method} {path}: not in the OpenAPI document")
    return missing


async def publish_document(app: web.Application) -> None:
    """``on_startup``: the routes are final now; serialize the document once for every request.

    Built once per process and set of routes: a build takes some 45 ms, and the tests create
    an app (and start it) some 2,000 times."""
    routes = tuple((m, p, h, id(spec)) for m, p, h, spec in documented_routes(app))
    if routes not in _PUBLISHED:
        _PUBLISHED[routes] = orjson.dumps(build_document(app))
    app[OPENAPI_JSON] = _PUBLISHED[routes]


_PUBLISHED: dict[tuple[Any, ...], bytes] = {}


def documented_routes(app: web.Application) -> Iterator[tuple[str, str, Handler, Endpoint]]:
    """(method, path, handler, endpoint) of every route the document describes."""
    for route in app.router.routes():
        spec = endpoint_of(route.handler)
        if route.method in DOCUMENTED_METHODS and spec is not None and route.resource is not None:
            yield route.method, route.resource.canonical, route.handler, spec


def _operations(app: web.Application) -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    for method, path, handler, spec in documented_routes(app):
        keyed = honours_key(method, spec)
        paths[path][method.lower()] = _operation(handler, spec, PATH_PARAM.findall(path), keyed)
    return paths


def _operation(
    handler: Handler, spec: Endpoint, path_params: list[str], keyed: bool
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": handler.__name__,
        "summary": spec.summary,
        "tags": [spec.tag],
        "parameters": _parameters(spec, path_params, keyed),
        "responses": _responses(spec, path_params, keyed),
    }
    doc = (handler.__doc__ or "").strip()
    operation["description"] = (doc + "\n\n" if doc else "") + WHO_MAY_CALL[spec.access]
    operation["security"] = [] if spec.access is Access.PUBLIC else [{"bearerAuth": []}]
    if spec.body is not None:
        media: dict[str, Any] = {"schema": spec.body}
        if spec.request_example is not None:
            media["example"] = spec.request_example
        operation["requestBody"] = {"required": True, "content": {"application/json": media}}
    return operation


def _parameters(spec: Endpoint, path_params: list[str], keyed: bool) -> list[dict[str, Any] | str]:
    # a parameter is an object, or the name of a component (apispec makes it a $ref)
    params: list[dict[str, Any] | str] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": f"The {spec.tag.removesuffix('s')}'s id (the customer's, for a "
            "customer's orders; the user's, for a user's pets): 1 to 2^63-1; anything else "
            "is a 404.",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        }
        for name in path_params
    ]
    if spec.query is not None:
        params.append({"in": "query", "schema": spec.query})
    for header in spec.headers + (("If-None-Match",) if spec.cached else ()):
        known = REQUEST_HEADERS.get(header, {"schema": {"type": "string"}})
        params.append({"name": header, "in": "header", "required": False} | known)
    if keyed:
        params.append(IDEMPOTENCY_KEY)
    params.append("RequestId")
    return params


def error_statuses(spec: Endpoint, path_params: list[str], keyed: bool = False) -> set[int]:
    """Every error status this route can answer, from what it declares about itself."""
    statuses = set(spec.errors) | {400}  # any request can be malformed at the HTTP level
    if keyed:
        statuses |= {409, 422}  # a key in flight; a key reused for another request
    if spec.body is not None:
        statuses |= {413, 415, 417, 422}
    if spec.query is not None:
        statuses.add(422)
    if spec.access is not Access.PUBLIC:
        statuses |= {401, 403}
    if path_params:
        statuses.add(404)
    if spec.database:
        statuses.add(503)
    if spec.stream:
        statuses.add(406)
    return statuses


def _responses(spec: Endpoint, path_params: list[str], keyed: bool) -> dict[str, Any]:
    success: dict[str, Any] = {
        "description": HTTPStatus(spec.status).phrase,
        "headers": {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}},
    }
    if spec.status == 201:
        success["headers"]["Location"] = {"$ref": "#/components/headers/Location"}
    if spec.stream:
        success["headers"]["Vary"] = {
            "description": "Accept: the body's type follows the request's Accept header.",
            "schema": {"type": "string", "const": "Accept"},
        }
    if keyed:
        success["headers"]["Idempotent-Replayed"] = {"$ref": REPLAYED_REF}
    cache_headers = ("ETag", "Cache-Control") if spec.cached else ()
    paged = ("Link",) if spec.query is not None and "cursor" in spec.query.fields else ()
    for header in dict.fromkeys(spec.response_headers + paged + cache_headers):
        success["headers"][header] = RESPONSE_HEADERS[header]
    if spec.status != 204:
        success["content"] = _success_content(spec)
    responses: dict[str, Any] = {str(spec.status): success}
    if spec.cached:
        responses["304"] = {
            "description": "Not modified: the `ETag` in `If-None-Match` is current; no body.",
            "headers": {h: success["headers"][h] for h in ("X-Request-ID", *cache_headers)},
        }
    for status in sorted(error_statuses(spec, path_params, keyed)):
        responses[str(status)] = problem_name(status)
    return responses


def _success_content(spec: Endpoint) -> dict[str, Any]:
    content = _json_content(spec)
    for media_type in spec.extra_media_types:
        content[media_type] = {"schema": {"type": "string"}}
        if media_type == "text/event-stream" and spec.response_example is not None:
            event = spec.response_example  # one Server-Sent Event carrying the example
            data = orjson.dumps(event).decode()
            frame = f"id: {event['cursor']}\nevent: {event['type']}\ndata: {data}\n\n"
            content[media_type]["example"] = frame
    return content


def _json_content(spec: Endpoint) -> dict[str, Any]:
    if spec.media_type != "application/json":
        text: dict[str, Any] = {"schema": {"type": "string"}}
        if spec.response_example is not None:
            text["example"] = spec.response_example
        return {spec.media_type: text}
    schema: Any = spec.response if spec.response is not None else {"type": "object"}
    if not spec.stream:
        media: dict[str, Any] = {"schema": schema}
        if spec.response_example is not None:
            media["example"] = spec.response_example
        return {"application/json": media}
    array: dict[str, Any] = {"schema": {"type": "array", "items": schema}}
    # NDJSON: a sequence of JSON texts, each an instance of the item schema, one per line
    lines: dict[str, Any] = {"schema": schema}
    if spec.response_example is not None:
        array["example"] = [spec.response_example]
        lines["example"] = spec.response_example  # one line's value
    return {"application/json": array, "application/x-ndjson": lines}
