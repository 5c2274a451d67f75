"""Typed keys for what the application and each request hold."""

from __future__ import annotations

from aiohttp import web

from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from marketsvc.web.auth import Principal

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", Principal)
STREAMED_BYTES = web.RequestKey("streamed_bytes", int)  # body bytes a streamed response wrote
