"""RFC 9457 problem+json responses."""

from __future__ import annotations

import orjson
from aiohttp import web

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:marketsvc:problem:"

# One type and one title per status (RFC 9457 section 3.1.3: the title belongs to the type),
# written here once so that no Python version's HTTPStatus phrases can change what clients see.
PROBLEM_TYPES: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    410: ("gone", "Gone"),
    412: ("precondition-failed", "Precondition failed"),
    413: ("content-too-large", "Content too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    417: ("expectation-failed", "Expectation failed"),
    422: ("unprocessable-content", "Unprocessable content"),
    500: ("internal-server-error", "Internal server error"),
    503: ("service-unavailable", "Service unavailable"),
}
FALLBACK_TYPE = ("http-error", "HTTP error")  # any other status aiohttp may raise


def problem(
    status: int,
    detail: str,
    *,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(problem_body(status, detail, errors=errors)),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def problem_body(
    status: int,
    detail: str,
    *,
    errors: dict[str, list[str]] | None = None,
) -> dict[str, object]:
    """``errors`` keys say where each entry came from: ``body.<path>``, ``query.<name>``,
    ``header.<Name>``."""
    slug, title = PROBLEM_TYPES.get(status, FALLBACK_TYPE)
    body: dict[str, object] = {
        "type": TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return body


def flatten_errors(messages: object, prefix: str) -> dict[str, list[str]]:
    """marshmallow's nested error dict as ``{"body.address.city": [...], "query.limit": [...]}``
    under ``prefix`` (``body`` or ``query``); errors about the whole body are under ``body``."""
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            path = str(key) if not prefix else f"{prefix}.{key}"
            if key == "_schema":
                path = prefix
            for field, msgs in flatten_errors(value, path).items():
                flat.setdefault(field, []).extend(msgs)
        return flat
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix: list(messages)}
    if isinstance(messages, list):
        return flatten_errors(dict(enumerate(messages)), prefix)
    return {prefix: [str(messages)]}
