"""Background work's shared parts: a small connection pool of its own (the webhook relay and
sender, the NATS relay, the outbox backlog measurement), so that background tasks never take a
connection a request needs nor show in the request pool's metrics; and the name a process
holds its leases under."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from marketsvc.store.engine import Database
from marketsvc.web.keys import DATABASE

BACKGROUND_POOL_SIZE = 4
BACKGROUND_DATABASE = web.AppKey("background_database", Database)


async def background_database_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` (after the request database's, before the tasks that use it)."""
    database = app[DATABASE].companion(BACKGROUND_POOL_SIZE)
    app[BACKGROUND_DATABASE] = database
    yield
    await database.dispose()


def process_owner() -> str:
    """A name for this process's leases, unique across hosts, processes and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
