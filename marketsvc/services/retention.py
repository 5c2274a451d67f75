"""Events are kept ``MARKETSVC_EVENTS_RETENTION_DAYS``, then purged in small batches.

Each batch is a short write transaction of its own, so writers wait at most one batch (on
SQLite they queue behind it; on PostgreSQL they never wait: the rows purged are old). Every
worker runs the task; on PostgreSQL two purging at once delete disjoint rows or wait briefly.

A webhook delivery builds its CloudEvent from its event when it is sent. A pending one whose
event a batch purges (a paused subscription's, one still retrying) gets the CloudEvent written
into its row first, in the same transaction: it is sent as it would have been.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from marketsvc.db_accessor import outbox, webhooks
from marketsvc.events.envelope import encode, envelope
from marketsvc.services.background import log_retry
from marketsvc.store.engine import Database
from marketsvc.store.models import utcnow
from marketsvc.web.keys import DATABASE, SETTINGS

log = logging.getLogger("marketsvc.events.retention")
PURGE_EVERY_S = 600


async def purge_events(database: Database, cutoff: datetime, source: str) -> int:
    """Delete every event older than ``cutoff``, a batch per transaction; how many. ``source``:
    the CloudEvents source, for the deliveries that still wait for a purged event."""
    total = 0
    while True:
        async with database.change_rows() as conn:
            prefix = await outbox.purgeable(conn, cutoff)
            if prefix and (waiting := await webhooks.waiting_for(conn, [e.id for e in prefix])):
                events = await outbox.events_by_row(conn, list(waiting))
                bodies = {k: encode(envelope(e, source)).decode() for k, e in events.items()}
                await webhooks.keep_bodies(conn, bodies)
            await outbox.purge(conn, prefix)
        purged = len(prefix)
        total += purged
        if purged < outbox.PURGE_BATCH:
            return total
        await asyncio.sleep(0)  # writers waiting for the SQLite writer turn go first


async def retention_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: purge now and then (workers start at random offsets)."""
    days = app[SETTINGS].events_retention_days

    async def run() -> None:
        while True:
            await asyncio.sleep(random.uniform(0.5, 1.5) * PURGE_EVERY_S)
            try:
                cutoff = utcnow() - timedelta(days=days)
                purged = await purge_events(app[DATABASE], cutoff, app[SETTINGS].events_source)
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                log_retry(log, "event purge", exc)
                continue
            if purged:
                log.info("purged %d events older than %d days", purged, days)

    task = asyncio.create_task(run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
