"""Every request gets an id (``X-Request-ID`` when the client sent a sane one) and every
response carries it."""

from __future__ import annotations

import os
import re
import secrets

from aiohttp import web

from marketsvc.web.keys import REQUEST_ID

_REQUEST_ID_OK = re.compile(r"^[\w.:@/+=-]{1,200}$")


class _RequestIds:
    """32 hex digits, unique across processes: a random prefix per process and a counter
    (``uuid4`` reads the kernel's entropy on every request; this does once per process)."""

    def __init__(self) -> None:
        self.pid = -1

    def next(self) -> str:
        if self.pid != os.getpid():  # a forked worker must not repeat its parent's ids
            self.pid, self.prefix, self.counter = os.getpid(), secrets.token_hex(10), 0
        self.counter += 1
        return f"{self.prefix}{self.counter:012x}"


_request_ids = _RequestIds()


def new_request_id() -> str:
    return _request_ids.next()


def request_id_of(request: web.Request) -> str:
    if REQUEST_ID not in request:
        given = request.headers.get("X-Request-ID", "")
        request[REQUEST_ID] = given if _REQUEST_ID_OK.match(given) else _request_ids.next()
    return request[REQUEST_ID]


async def tag_response(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every response, streamed or not, carries the request id."""
    response.headers["X-Request-ID"] = request_id_of(request)
