"""The parts of the OpenAPI document every operation shares: field types, problem responses."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from apispec import APISpec
from marshmallow import Schema, fields

from marketsvc.schemas.common import (
    MONEY_INTEGER_DIGITS,
    Money,
    MoneyIn,
    Name,
    ProblemSchema,
    Text,
)
from marketsvc.schemas.countries import ISO_COUNTRIES
from marketsvc.schemas.customers import Country
from marketsvc.schemas.search_text import MAX_QUERY_LENGTH, SearchTextField
from marketsvc.web.problems import problem_body

# Money sent by a client has at most MONEY_INTEGER_DIGITS integer digits (MoneyIn); money the
# service computes, such as an order's total, can be longer (Money).
MONEY_WIRE_PATTERN = r"^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$"
MONEY_IN_PATTERN = rf"^(0|[1-9][0-9]{{0,{MONEY_INTEGER_DIGITS - 1}}})(\.[0-9]{{1,2}})?$"
MONEY_IN_MAX_LENGTH = MONEY_INTEGER_DIGITS + 3
NAME_PATTERN = r"^[^\x00-\x1f]*[^\s\x00-\x1f][^\x00-\x1f]*$"

REPLAYED_REF = "#/components/headers/Idempotent-Replayed"
NOT_REPLAYED = (401, 503)  # answered before the key is claimed, or nothing was stored

# aiohttp's HTTP parser answers before any code of the service runs; its answer cannot be made
# problem+json (the app's hooks never see it), so the document states it exactly.
PARSER_400 = (
    "The HTTP parser's answer to a request it cannot read (a request line or a header field"
    " over 8190 bytes, a NUL, CR or LF inside a header): `400 Bad Request`, a blank line and"
    " the parser's reason, as text/plain; the connection is then closed."
)

# What each generic error status means, for every route it applies to.
ERRORS: dict[int, str] = {
    400: (
        "Malformed: the body is not valid JSON (problem+json); or the HTTP request itself is,"
        " such as a request line or header over 8190 bytes (text/plain, from the HTTP server"
        " before the service sees the request)."
    ),
    401: "No bearer token, a bad signature or an expired token.",
    403: "The token is valid but does not grant this operation.",
    404: "No such resource, or not one the caller may see.",
    406: "The Accept header takes neither application/json nor application/x-ndjson.",
    409: "Conflicts with the resource's current state (or its Idempotency-Key is in flight).",
    412: "`If-Match` names no current `ETag` of the resource: it changed since it was read.",
    413: (
        "The body is over the configured size limit; with `Expect: 100-continue` this is the"
        " answer before the body is sent."
    ),
    415: "The body is not application/json.",
    417: "An `Expect` header other than `100-continue`.",
    422: (
        "Well-formed but invalid input, or an Idempotency-Key used for another request;"
        " `errors` names each field."
    ),
    503: "The database is unavailable; retry after `Retry-After` seconds.",
}


def schema_name(schema: type[Schema] | Schema) -> str:
    name = (schema if isinstance(schema, type) else type(schema)).__name__.removesuffix("Schema")
    return name + "Partial" if getattr(schema, "partial", False) else name


def custom_field_properties(
    self: Any, field: fields.Field[Any], ret: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    """JSON Schema details of the project's own field types (their base types map by MRO)."""
    if isinstance(field, MoneyIn):
        return {
            "pattern": MONEY_IN_PATTERN,
            "maxLength": MONEY_IN_MAX_LENGTH,
            "examples": ["10.50"],
            "description": _described(
                field,
                f"Up to {MONEY_INTEGER_DIGITS} digits before the decimal point, up to two after.",
            ),
        }
    if isinstance(field, Money):
        return {"pattern": MONEY_WIRE_PATTERN, "examples": ["10.50"]}
    if isinstance(field, Country):
        return {"enum": sorted(ISO_COUNTRIES)}
    if isinstance(field, Name):
        return {"pattern": NAME_PATTERN}
    if isinstance(field, SearchTextField):
        return {"pattern": r"\S", "maxLength": MAX_QUERY_LENGTH}  # not blank
    if isinstance(field, Text):
        return {"pattern": r"^[^\x00]*$"}
    return {}


def _described(field: fields.Field[Any], rule: str) -> str:
    given = field.metadata.get("description")
    return f"{given} {rule}" if given else rule


def problem_name(status: int) -> str:
    return "Problem" + str(status)


def add_components(spec: APISpec, error_statuses: set[int]) -> None:
    spec.components.schema("Problem", schema=ProblemSchema)
    spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    spec.components.header(
        "X-Request-ID",
        {"description": "Echoed from the request, or made up.", "schema": {"type": "string"}},
    )
    spec.components.header(
        "Location", {"description": "The new resource.", "schema": {"type": "string"}}
    )
    spec.components.header(
        "Idempotent-Replayed",
        {
            "description": "`true` when this is the stored answer to an earlier request with "
            "the same Idempotency-Key.",
            "schema": {"type": "string", "enum": ["true"]},
        },
    )
    spec.components.parameter(
        "RequestId",
        "header",
        {
            "name": "X-Request-ID",
            "required": False,
            "description": "Echoed in the response; made up when absent or unusable.",
            "schema": {"type": "string"},
        },
    )
    for status in sorted(error_statuses):
        description = ERRORS.get(status) or HTTPStatus(status).phrase + "."
        spec.components.response(problem_name(status), _problem_response(status, description))


def _problem_response(status: int, description: str) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}
    if status == 401:
        headers["WWW-Authenticate"] = {"schema": {"type": "string"}, "required": True}
    if status == 503:
        headers["Retry-After"] = {"schema": {"type": "string"}}
    if status not in NOT_REPLAYED:
        headers["Idempotent-Replayed"] = {"$ref": REPLAYED_REF}
    errors = {"body.name": ["Missing data for required field."]} if status == 422 else None
    example = problem_body(status, description, errors=errors)
    content: dict[str, Any] = {
        "application/problem+json": {
            "schema": {"$ref": "#/components/schemas/Problem"},
            "example": example,
        }
    }
    if status == 400:
        content["text/plain"] = {
            "schema": {"type": "string", "description": PARSER_400},
            "example": "400 Bad Request\n\nBad status line 'Header name is too long'",
        }
    return {"description": description, "headers": headers, "content": content}
