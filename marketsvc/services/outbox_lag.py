"""The outbox's backlog per feed consumer, for ``/metrics``: refreshed every ``EVERY_S``.

Each worker measures (a few index range reads every few seconds; the gauges keep the most
recent value among live workers). The consumers are the ones with a position in
``event_consumers``, and those this instance runs but which never claimed one yet (the NATS
relay with NATS unreachable from the start): their backlog is the whole feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from marketsvc.db_accessor import consumer_lag, outbox
from marketsvc.ops.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE
from marketsvc.services.background import BACKGROUND_DATABASE
from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from marketsvc.store.models import utcnow
from marketsvc.web.keys import SETTINGS

log = logging.getLogger("marketsvc.events.lag")
EVERY_S = 2.0


def expected_consumers(settings: Settings) -> tuple[str, ...]:
    return ("nats",) if settings.nats_url is not None else ()


async def measure(database: Database, expected: tuple[str, ...]) -> None:
    """Set the backlog gauges of every consumer, as of now."""
    async with database.scan() as conn:
        positions = await consumer_lag.consumer_positions(conn)
        for name in expected:
            positions.setdefault(name, outbox.START)
        lags = {name: await consumer_lag.lag_after(conn, at) for name, at in positions.items()}
    now = utcnow()
    for name, lag in lags.items():
        OUTBOX_BACKLOG.labels(name).set(lag.events)
        age = 0.0 if lag.oldest is None else max(0.0, (now - lag.oldest).total_seconds())
        OUTBOX_OLDEST_AGE.labels(name).set(age)


async def outbox_lag_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: measure every ``EVERY_S`` seconds while the worker runs."""
    expected = expected_consumers(app[SETTINGS])

    async def run() -> None:
        while True:
            try:
                await measure(app[BACKGROUND_DATABASE], expected)
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                log.debug("outbox backlog not measured: %s", exc)
            await asyncio.sleep(EVERY_S)

    task = asyncio.create_task(run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
