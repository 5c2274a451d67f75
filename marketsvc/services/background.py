"""Background work's shared parts: a small connection pool of its own (the webhook relay and
sender, the NATS relay, the outbox backlog measurement), so that background tasks never take a
connection a request needs nor show in the request pool's metrics; and the name a process
holds its leases under; the lease itself, on a feed consumer (``FeedLease``); how a step that
failed and will run again is logged (``log_retry``)."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from marketsvc.db_accessor import consumers
from marketsvc.db_accessor.core import Executor
from marketsvc.db_accessor.outbox import Position
from marketsvc.store.engine import Database
from marketsvc.store.outages import classify
from marketsvc.web.keys import DATABASE

# Its connections stay open once made, idle between steps: with PostgreSQL's feed listener they
# must leave the requests a slot however tight max_connections is. With 4, the idle connections
# of a few overlapping steps could take every slot of a server allowing 4 (tests/test_outages.py)
BACKGROUND_POOL_SIZE = 2
BACKGROUND_DATABASE = web.AppKey("background_database", Database)


async def background_database_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` (after the request database's, before the tasks that use it)."""
    database = app[DATABASE].companion(BACKGROUND_POOL_SIZE)
    app[BACKGROUND_DATABASE] = database
    yield
    await database.dispose()


def log_retry(log: logging.Logger, what: str, exc: BaseException) -> None:
    """A background step failed and will run again. The database away (``outages.classify``:
    down, timed out, not migrated) is a warning with its cause; anything else, a bug or a
    statement the database refuses, is an error with its stack: a broken database must not pass
    for an outage that will end."""
    outage = classify(exc)
    if outage is None:
        log.error("%s failed, will retry", what, exc_info=exc)
    else:
        log.warning("%s failed (database %s), will retry: %s", what, outage.value, exc)


def process_owner() -> str:
    """A name for this process's leases, unique across hosts, processes and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class FeedLease:
    """This process's hold on a feed consumer (``db_accessor.consumers``), for a relay that must
    be the only one following it: claimed, renewed once a third of the lease has passed;
    ``position`` is None while another process holds it."""

    def __init__(self, database: Database, consumer: str, seconds: float) -> None:
        self.database = database
        self.consumer = consumer
        self.owner = process_owner()
        self.duration = timedelta(seconds=seconds)
        self.position: Position | None = None
        self._claimed_at = 0.0

    @property
    def retry_seconds(self) -> float:
        """How often a process without the lease tries for it."""
        return self.duration.total_seconds() / 3

    async def hold(self) -> bool:
        """Claim or renew the consumer when due; whether this process follows it."""
        if time.monotonic() - self._claimed_at < self.retry_seconds:
            return self.position is not None
        async with self.database.change_rows() as conn:
            self.position = await consumers.claim(conn, self.consumer, self.owner, self.duration)
        self._claimed_at = time.monotonic()
        return self.position is not None

    async def advance(self, conn: Executor, position: Position) -> bool:
        """Move the position in the caller's transaction; False if the lease passed on."""
        return await consumers.advance(conn, self.consumer, self.owner, position)

    def renew_soon(self) -> None:
        """After a failure: claim again before the next step."""
        self._claimed_at = 0.0

    def lost(self) -> None:
        self.position, self._claimed_at = None, 0.0

    async def release(self) -> None:
        if self.position is not None:
            async with self.database.change_rows() as conn:
                await consumers.release(conn, self.consumer, self.owner)
