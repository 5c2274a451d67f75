"""Opaque keyset cursors: where a list stopped, signed so that a client cannot forge one.

A cursor holds the last row's sort value and id (base64url JSON), and an HMAC over them and
the query they belong to (sort, q, filters): the same cursor under another query, or with a
byte changed, is a 400 naming ``cursor``, never a wrong page.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from typing import Any

import orjson

from marketsvc.errors import DomainError

MAC_BYTES = 16
BASE64URL = re.compile(r"[A-Za-z0-9_-]+")  # unpadded, as encode() writes it


class InvalidCursor(DomainError):
    status = 400

    def __init__(self) -> None:
        super().__init__(
            "the cursor was not made by this service for this query",
            {"query.cursor": ["Not a cursor this service gave for this query; start without it."]},
        )


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"marketsvc cursor\0" + secret.encode()).digest()

    def encode(self, position: tuple[Any, int], query: str) -> str:
        payload = orjson.dumps(list(position))
        token = payload + self._mac(payload, query)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode()

    def decode(self, cursor: str, query: str) -> tuple[Any, int]:
        if not BASE64URL.fullmatch(cursor):
            raise InvalidCursor()
        try:
            token = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except ValueError:
            raise InvalidCursor() from None
        payload, mac = token[:-MAC_BYTES], token[-MAC_BYTES:]
        if len(token) <= MAC_BYTES or not hmac.compare_digest(mac, self._mac(payload, query)):
            raise InvalidCursor()
        value, last_id = orjson.loads(payload)  # ours, since the MAC holds
        return value, last_id

    def _mac(self, payload: bytes, query: str) -> bytes:
        message = payload + b"\0" + query.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()[:MAC_BYTES]


@functools.cache
def cursor_codec(secret: str) -> CursorCodec:
    return CursorCodec(secret)
