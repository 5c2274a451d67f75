"""problem+json answers, raised straight from the handlers (no middleware)."""

from __future__ import annotations

import orjson
from aiohttp import web

ANSWERS: dict[int, tuple[str, type[web.HTTPException]]] = {
    400: ("Malformed JSON", web.HTTPBadRequest),
    401: ("Unauthorized", web.HTTPUnauthorized),
    403: ("Forbidden", web.HTTPForbidden),
    404: ("Not found", web.HTTPNotFound),
    409: ("Conflict", web.HTTPConflict),
    415: ("Unsupported media type", web.HTTPUnsupportedMediaType),
    422: ("Invalid input", web.HTTPUnprocessableEntity),
}


class UnknownCustomer(Exception):
    pass


class UnknownItems(Exception):
    def __init__(self, item_ids: list[int]) -> None:
        super().__init__(item_ids)
        self.item_ids = item_ids


class OutOfStock(Exception):
    def __init__(self, item_ids: list[int]) -> None:
        super().__init__(item_ids)
        self.item_ids = item_ids


def problem(
    status: int, detail: str, errors: dict[str, list[str]] | None = None
) -> web.HTTPException:
    title, answer = ANSWERS[status]
    body: dict[str, object] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    text = orjson.dumps(body).decode()
    return answer(text=text, content_type="application/problem+json", headers=headers)
