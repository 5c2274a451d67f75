"""Wake feed readers (long-polls, SSE streams) when an event commits, on any worker or instance.

PostgreSQL: a trigger on ``events`` NOTIFYs ``marketsvc_events`` at commit (migration
0002_events); each worker LISTENs on one dedicated asyncpg connection, outside the pool, and
reconnects when it drops. It listens only while readers wait (and ``IDLE_S`` after the last
one): each notification costs every listening worker a wake-up, which placements should not
pay for while nobody follows the feed. A notification can arrive while the new event is still
held back by an older open transaction (see ``db_accessor.outbox``), so a reader whose wake-up
found nothing re-reads after ``SETTLE_POLL_S``, doubling, until the feed moves or it gives up;
without a listening connection readers poll every ``FALLBACK_POLL_S``. SQLite: a short poll
(``SQLITE_POLL_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from sqlalchemy import make_url

from marketsvc.settings import Settings
from marketsvc.web.keys import SETTINGS

log = logging.getLogger("marketsvc.events.wakeup")
CHANNEL = "marketsvc_events"
SQLITE_POLL_S = 0.1
FALLBACK_POLL_S = 1.0
SETTLE_POLL_S = 0.005  # a transaction holding the horizon usually ends within milliseconds
RECONNECT_S = 1.0
IDLE_S = 60.0  # listen this long after the last reader stopped waiting


class FeedWakeup:
    """A generation counter: it moves on every notification; readers wait for it to move."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.generation = 0
        self.closing = False
        self._changed = asyncio.Event()
        self._listening = False
        self._task: asyncio.Task[None] | None = None
        self._waiting = 0
        self._last_wait = 0.0
        self._wanted = asyncio.Event()  # a reader waits: the listener should be up

    async def wait(self, seen: int, within_s: float) -> bool:
        """Until the generation moves past ``seen`` or a poll is due; True if it moved.

        Returns at once if it moved already, so that a notification arriving between a reader's
        empty read and its wait is not lost (read ``generation`` before reading the feed).
        """
        if self.generation != seen or self.closing:
            return True
        if self.settings.is_sqlite:
            within_s = min(within_s, SQLITE_POLL_S)
        elif not self._listening:
            within_s = min(within_s, FALLBACK_POLL_S)
            self._wanted.set()
        self._waiting += 1
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(within_s, 0)):
                    while self.generation == seen and not self.closing:
                        await self._changed.wait()
        finally:
            self._waiting -= 1
            self._last_wait = time.monotonic()
        return self.generation != seen

    def notify(self, *_: Any) -> None:
        self.generation += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        self.closing = True
        self.notify()

    def start(self) -> None:
        if not self.settings.is_sqlite:
            self._task = asyncio.create_task(self._listen_forever())

    async def stop(self) -> None:
        self.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen_forever(self) -> None:
        dsn = make_url(self.settings.database_url).set(drivername="postgresql")
        while True:
            await self._wanted.wait()
            await self._listen_once(dsn.render_as_string(hide_password=False))
            if self._wanted.is_set():  # the connection failed, not idle: retry after a pause
                await asyncio.sleep(RECONNECT_S)

    def _idle(self) -> bool:
        return self._waiting == 0 and time.monotonic() - self._last_wait > IDLE_S

    async def _listen_once(self, dsn: str) -> None:
        """LISTEN until the connection drops, or no reader has waited for ``IDLE_S``."""
        import asyncpg  # PostgreSQL only

        lost = asyncio.Event()
        try:
            conn = await asyncpg.connect(
                dsn,
                timeout=self.settings.connect_timeout,
                server_settings={"application_name": "marketsvc-feed-listener"},
            )
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("feed listener cannot connect: %s", exc)
            return
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, self.notify)
            self._listening = True
            self.notify()  # anything committed while no one listened: readers look again
            while not self._idle():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(IDLE_S / 4):
                        await lost.wait()
                if lost.is_set():
                    log.warning("feed listener connection lost; reconnecting")
                    return
            self._wanted.clear()
        except (
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            # the server went away while asyncpg was between two protocol states (seen when
            # PostgreSQL restarts just as LISTEN is sent): the connection is lost all the same
            asyncpg.exceptions.InternalClientError,
        ) as exc:
            log.warning("feed listener failed: %s", exc)
        finally:
            self._listening = False
            if not conn.is_closed():
                await conn.close(timeout=1)


FEED_WAKEUP = web.AppKey("feed_wakeup", FeedWakeup)


async def feed_wakeup_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: one listener per worker, for the worker's life."""
    wakeup = FeedWakeup(app[SETTINGS])
    app[FEED_WAKEUP] = wakeup
    wakeup.start()
    yield
    await wakeup.stop()


async def close_feeds(app: web.Application) -> None:
    """``on_shutdown``: end SSE streams and long-polls so that a graceful stop does not wait."""
    app[FEED_WAKEUP].close()
