"""A small connection pool of its own for background tasks (the NATS relay, the outbox backlog
measurement): they never take a connection a request needs, nor show in the request pool's
metrics. On SQLite it queues for the write lock in the same line as the requests' writers
(``Database.change``), so it never contends for the file lock with them."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from aiohttp import web

from marketsvc.store.engine import Database
from marketsvc.web.keys import DATABASE, SETTINGS

BACKGROUND_POOL_SIZE = 3
BACKGROUND_DATABASE = web.AppKey("background_database", Database)


async def background_database_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` (after the request database's, before the tasks that use it)."""
    settings = dataclasses.replace(app[SETTINGS], pool_size=BACKGROUND_POOL_SIZE, max_overflow=0)
    database = Database(settings)
    database._writers = app[DATABASE]._writers  # one SQLite writer queue per process
    app[BACKGROUND_DATABASE] = database
    yield
    await database.dispose()
