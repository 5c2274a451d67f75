"""Typed keys for what the application and each request hold."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    pass

SETTINGS = web.AppKey["Settings"]("settings")
DATABASE = web.AppKey["Database"]("database")
REQUEST_ID = web.RequestKey[str]("request_id")
PRINCIPAL = web.RequestKey["Principal"]("principal")
STREAMED_BYTES = web.RequestKey[int]("streamed_bytes")  # body bytes a streamed response wrote
