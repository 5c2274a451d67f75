"""RFC 9457 problem+json responses."""

from __future__ import annotations

from http import HTTPStatus

import orjson
from aiohttp import web

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(problem_body(status, detail, title=title, errors=errors)),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def problem_body(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: dict[str, list[str]] | None = None,
) -> dict[str, object]:
    phrase = HTTPStatus(status).phrase
    body: dict[str, object] = {
        "type": f"urn:marketsvc:problem:{phrase.lower().replace(' ', '-')}",
        "title": title or phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return body


def flatten_errors(messages: object, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error dict as ``{"address.city": [...], "lines.0.quantity": [...]}``."""
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            path = str(key) if not prefix else f"{prefix}.{key}"
            if key == "_schema":
                path = prefix or "_schema"
            for field, msgs in flatten_errors(value, path).items():
                flat.setdefault(field, []).extend(msgs)
        return flat
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "_schema": list(messages)}
    if isinstance(messages, list):
        return flatten_errors(dict(enumerate(messages)), prefix)
    return {prefix or "_schema": [str(messages)]}
