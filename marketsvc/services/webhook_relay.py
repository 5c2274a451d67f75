"""Fan events out to webhook subscriptions: one delivery per event and matching subscription.

Every worker runs the relay, and the feed consumer ``"webhooks"`` (``db_accessor.consumers``)
elects one of them across all workers and instances: the one holding its lease reads the feed
after the consumer's position and, in ONE transaction, inserts a delivery for each active or
paused subscription whose types match (a paused one's wait until it is resumed) and advances
the position, so each event is fanned out exactly once (a relay that lost its lease rolls
back). Reading the feed and claiming the lease are short transactions of their own; nothing
here does network I/O. The others try for the lease every third of
``MARKETSVC_WEBHOOK_LEASE_SECONDS``, so a crashed relay is replaced within about one lease. A
subscription receives the events fanned out after it was created (events already in the feed
but not yet fanned out included); ``replay`` sends older ones.

The relay wakes on the feed's wake-up (``services.feed_wakeup``: PostgreSQL NOTIFY, SQLite a
short poll) or every ``MARKETSVC_WEBHOOK_POLL_SECONDS``. In its fan-out transaction it leases the
deliveries it can to this worker's sender (``_to_lease``), and after the commit hands them over
with the events it read (``Sender.fanned_out``): the sender sends them without claiming them,
and builds the events' CloudEvents then rather than read the events back for a later claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from marketsvc.db_accessor import outbox, webhooks
from marketsvc.services.background import BACKGROUND_DATABASE, FeedLease, log_retry
from marketsvc.services.feed_wakeup import FEED_WAKEUP, FeedWakeup
from marketsvc.services.webhook_delivery import WEBHOOK_SENDER, Sender
from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from marketsvc.store.models import utcnow
from marketsvc.web.keys import SETTINGS

log = logging.getLogger("marketsvc.webhooks.relay")
CONSUMER = "webhooks"
BATCH = 500
HELD_BACK_S = 0.05


class LeaseLost(Exception):
    """Another relay took the consumer over: this one's fan-out must roll back."""


def _wanted(subscriptions: Sequence[Any]) -> list[tuple[int, set[str] | None]]:
    """Each subscription's id and the event types it takes (None: all)."""
    return [
        (s.id, None if s.event_types is None else set(orjson.loads(s.event_types)))
        for s in subscriptions
    ]


def delivery_rows(events: Sequence[Any], subscriptions: Sequence[Any]) -> list[dict[str, Any]]:
    """One delivery per event and subscription that takes its type, in feed order. No body:
    the sender builds each CloudEvent from its event when it sends it."""
    wanted = _wanted(subscriptions)
    rows = []
    for event in events:
        for subscription_id, types in wanted:
            if types is not None and event.type not in types:
                continue
            rows.append(
                {
                    "subscription_id": subscription_id,
                    "event_row": event.id,
                    "event_id": event.event_id,
                    "subject": event.subject,
                    "type": event.type,
                }
            )
    return rows


def _claimed(delivery_id: int, row: dict[str, Any], subscription: Any) -> webhooks.Claimed:
    """A delivery the relay leased as it inserted it, as a claim would have returned it."""
    return webhooks.Claimed(
        id=delivery_id,
        subscription_id=row["subscription_id"],
        event_id=row["event_id"],
        type=row["type"],
        event_row=row["event_row"],
        body=None,
        attempts=0,
        first_attempt_at=None,
        url=subscription.url,
        secret=subscription.secret,
        previous_secret=subscription.previous_secret,
        previous_until=subscription.previous_until,
    )


class Relay:
    def __init__(self, database: Database, settings: Settings, sender: Sender) -> None:
        self.database = database
        self.settings = settings
        self.sender = sender
        self.lease = FeedLease(database, CONSUMER, settings.webhook_lease_seconds)

    async def step(self) -> tuple[int, bool]:
        """Fan out the next batch if this process holds the lease: (events, held back)."""
        if not await self.lease.hold() or self.lease.position is None:
            return 0, False
        async with self.database.scan() as conn:
            page = await outbox.read_feed(conn, self.lease.position, outbox.FeedFilter(), BATCH)
            if not page.rows:
                return 0, page.held_back
        last = page.rows[-1]
        try:
            rows, leased, until = await self.database.change_with(self._fan_out, page.rows)
        except LeaseLost:
            log.info("webhook relay lease passed to another process")
            self.lease.lost()
            return 0, False
        self.lease.position = (last.txid, last.id)
        if rows:
            fanned = {row["event_row"] for row in rows}
            events = [event for event in page.rows if event.id in fanned]
            self.sender.fanned_out(events, leased, until)
        return len(page.rows), page.held_back

    async def _fan_out(
        self, conn: Any, events: Sequence[Any]
    ) -> tuple[list[dict[str, Any]], list[webhooks.Claimed], datetime | None]:
        """One delivery per event and matching subscription, and the position past the
        events, in one transaction; the deliveries, those leased to this worker's sender, and
        the end of their lease."""
        subscriptions = await webhooks.receiving_subscriptions(conn)
        rows = delivery_rows(events, subscriptions)
        chosen, until = await self._to_lease(conn, rows, subscriptions)
        ids = await webhooks.insert_deliveries(conn, rows)
        if not await self.lease.advance(conn, (events[-1].txid, events[-1].id)):
            raise LeaseLost
        by_id = {s.id: s for s in subscriptions}
        leased = [_claimed(ids[n], rows[n], by_id[rows[n]["subscription_id"]]) for n in chosen]
        return rows, leased, until

    async def _to_lease(
        self, conn: Any, rows: list[dict[str, Any]], subscriptions: Sequence[Any]
    ) -> tuple[list[int], datetime | None]:
        """Lease new deliveries to this worker's sender as they are inserted, so that it sends
        them without claiming them (a claim is a write of its own, behind the placements for
        SQLite's one write lock): as many as it has room for (``Sender.room``; of a failing
        subscription's, only what the sender may start at once: ``Sender.takes``), each to an
        active subscription and the first pending delivery about its subject (per-subject
        order: a delivery waits while an earlier one about the same resource is pending). Every
        row gets the lease's columns, None where not leased; the indexes of the leased rows
        and the end of their lease (None: none leased)."""
        room = self.sender.room()
        # per active subscription, how many more it may lease (None: as many as there is room)
        takes = {s.id: self.sender.takes(s.id) for s in subscriptions if s.status == "active"}
        firsts: dict[tuple[int, str], int] = {}  # (subscription, subject) -> its first row
        for n, row in enumerate(rows):
            row["lease_owner"] = row["lease_until"] = None
            subscription_id = row["subscription_id"]
            pair = (subscription_id, row["subject"])
            if subscription_id not in takes or pair in firsts or len(firsts) >= room:
                continue
            if (left := takes[subscription_id]) is not None:
                if left <= 0:
                    continue
                takes[subscription_id] = left - 1
            firsts[pair] = n
        if not firsts:
            return [], None
        waiting = await webhooks.pending_subjects(
            conn, list({s for s, _ in firsts}), list({subject for _, subject in firsts})
        )
        until = self.sender.lease_until(utcnow())
        chosen = [n for pair, n in firsts.items() if pair not in waiting]
        for n in chosen:
            rows[n]["lease_owner"], rows[n]["lease_until"] = self.sender.owner, until
        return chosen, until

    async def run(self, wakeup: FeedWakeup) -> None:
        while True:
            seen = wakeup.generation
            try:
                moved, held_back = await self.step()
            except Exception as exc:  # the database away, or a bug: never stop relaying
                log_retry(log, "webhook relay step", exc)
                moved, held_back = 0, False
                self.lease.renew_soon()
            if moved == BATCH:
                continue
            if held_back:
                await asyncio.sleep(HELD_BACK_S)
                continue
            poll = self.settings.webhook_poll_seconds
            if self.lease.position is None:  # not the relay: try for the lease now and then
                await asyncio.sleep(min(poll, self.lease.retry_seconds))
            else:
                await wakeup.wait(seen, poll)


async def webhook_relay_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` (after the sender's and the feed wake-up's): the relay task; on a clean
    stop it gives its lease up so that another process takes over at once."""
    relay = Relay(app[BACKGROUND_DATABASE], app[SETTINGS], app[WEBHOOK_SENDER])
    task = asyncio.create_task(relay.run(app[FEED_WAKEUP]))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with contextlib.suppress(SQLAlchemyError, OSError, TimeoutError):
        await relay.lease.release()
