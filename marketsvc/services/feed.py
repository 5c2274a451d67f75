"""Reading the event feed: a page after a cursor, waiting for one when asked to."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from marketsvc.db_accessor import outbox
from marketsvc.db_accessor.outbox import FeedFilter, FeedPage, Position
from marketsvc.errors import CursorExpired
from marketsvc.services.feed_wakeup import FALLBACK_POLL_S, SETTLE_POLL_S, FeedWakeup
from marketsvc.store.engine import Database


async def read_page(
    database: Database, after: Position | None, where: FeedFilter, limit: int
) -> FeedPage:
    """Events after ``after`` (``None``: from the oldest kept); 410 if some were purged.

    The purge mark is read after the page: a purge that committed before the page was read is
    seen, so a page with a hole in it is never returned.
    """
    async with database.scan() as conn:  # a filtered page may visit many rows
        page = await outbox.read_feed(conn, after or outbox.START, where, limit)
        if after is not None and after < await outbox.purged_through(conn):
            raise CursorExpired(outbox.cursor_of(after))
    return page


async def wait_for_page(
    database: Database,
    wakeup: FeedWakeup,
    after: Position | None,
    where: FeedFilter,
    limit: int,
    wait_s: float,
) -> tuple[Sequence[Any], bool]:
    """``read_page``, waiting up to ``wait_s`` for a first event; (rows, found after waiting).

    An event held back by an older open transaction, or a wake-up that found nothing (the
    same, or an event this reader may not see), means looking again after ``SETTLE_POLL_S``,
    doubling up to ``FALLBACK_POLL_S``; otherwise the reader sleeps until a notification.
    """
    deadline = time.monotonic() + wait_s
    waited = moved = False
    settle: float | None = None
    while True:
        seen = wakeup.generation
        page = await read_page(database, after, where, limit)
        remaining = deadline - time.monotonic()
        if page.rows or remaining <= 0 or wakeup.closing:
            return page.rows, waited
        if moved or (page.held_back and settle is None):
            settle = SETTLE_POLL_S
        elif settle is not None:
            settle = min(settle * 2, FALLBACK_POLL_S)
        moved = await wakeup.wait(seen, min(remaining, settle or remaining))
        waited = True
