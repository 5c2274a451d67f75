"""Fan events out to webhook subscriptions: one delivery per event and matching subscription.

Every worker runs the relay, and the feed consumer ``"webhooks"`` (``db_accessor.consumers``)
elects one of them across all workers and instances: the one holding its lease reads the feed
after the consumer's position and, in ONE transaction, inserts a delivery for each active or
paused subscription whose types match (a paused one's wait until it is resumed) and advances
the position, so each event is fanned out exactly once (a relay that lost its lease rolls
back). The others try for the lease every third of ``MARKETSVC_WEBHOOK_LEASE_SECONDS``, so a
crashed relay is replaced within about one lease. A subscription receives the events fanned
out after it was created (events already in the feed but not yet fanned out included);
``replay`` sends older ones.

A delivery is recorded once, after its POST, where it can be: before that transaction the
relay sends, through its worker's sender (``Sender.send_first``), each new delivery that may
go out at once (``_firsts``: the first about its subject, to a healthy active subscription, as
many as the sender has room for), waits up to ``ANSWER_WAIT_S`` for the answers, and inserts
those answered in their state after the attempt (delivered, or retrying), with the attempt.
The others answered later are inserted leased to the sender, which records their attempts
(``Sender.handed_over``); the rest are pending, for claims. Written before the POST and again
after it, a delivery cost the database a pending row, an attempt and an update, in two write
transactions (scripts/bench: placement with a subscription active, SQLite). A relay that
crashes or loses its lease before the transaction commits leaves the position where it was:
the next fan-out sends those events again (a duplicate the receiver drops by ``webhook-id``),
never loses one.

The relay wakes on the feed's wake-up (``services.feed_wakeup``: PostgreSQL NOTIFY, SQLite a
short poll) or every ``MARKETSVC_WEBHOOK_POLL_SECONDS``.
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
from marketsvc.services.webhook_delivery import (
    WEBHOOK_SENDER,
    FirstSend,
    Result,
    Sender,
    count_outcomes,
)
from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from marketsvc.store.models import utcnow
from marketsvc.web.keys import SETTINGS

log = logging.getLogger("marketsvc.webhooks.relay")
CONSUMER = "webhooks"
BATCH = 500
HELD_BACK_S = 0.05
# How long a fan-out waits for the POSTs it sent first: those answered by then are recorded once,
# in their state after the attempt; the rest are recorded leased to the sender, which records
# their attempts when they answer. A slow receiver delays the fan-out by this much at most.
ANSWER_WAIT_S = 0.25
Key = tuple[int, int]  # (subscription id, events.id): a delivery in one fan-out


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


def _key(row: dict[str, Any]) -> Key:
    return row["subscription_id"], row["event_row"]


def _after(result: Result, now: datetime) -> dict[str, Any]:
    """A new delivery's columns after its first attempt."""
    if result.outcome is None:
        return {
            "status": "delivered",
            "attempts": 1,
            "first_attempt_at": result.at,
            "delivered_at": now,
        }
    return result.outcome  # attempts, first_attempt_at, and next_attempt_at or status


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
            jobs = await self._send_first(conn, page.rows)
        if jobs:
            try:
                await asyncio.wait([job.answer for job in jobs.values()], timeout=ANSWER_WAIT_S)
            except BaseException:  # cancelled: stopping
                self.sender.abandon(list(jobs.values()))
                raise
        if not await self._record(page.rows, jobs):
            return 0, False
        return len(page.rows), page.held_back

    async def _send_first(self, conn: Any, events: Sequence[Any]) -> dict[Key, FirstSend]:
        """Start POSTing the new deliveries that go out at once (``_firsts``); by key."""
        subscriptions = await webhooks.receiving_subscriptions(conn)
        rows = delivery_rows(events, subscriptions)
        if not rows:
            return {}
        fanned = {row["event_row"] for row in rows}
        bodies = self.sender.remember([event for event in events if event.id in fanned])
        by_id = {s.id: s for s in subscriptions}
        firsts = [rows[n] for n in await self._firsts(conn, rows, subscriptions)]
        sent = self.sender.send_first(
            [
                (_claimed(0, row, by_id[row["subscription_id"]]), bodies[row["event_row"]])
                for row in firsts
            ]
        )
        return {_key(row): job for row, job in zip(firsts, sent, strict=True)}

    async def _firsts(
        self, conn: Any, rows: list[dict[str, Any]], subscriptions: Sequence[Any]
    ) -> list[int]:
        """Which new deliveries go out before they are recorded, by index: as many as the
        sender has room for (``Sender.room``), each to an active subscription that is not
        failing (a failing one's go by claims, so a timing-out receiver does not hold the
        fan-out up), and the first about its subject with none pending before it
        (per-subject order)."""
        room = self.sender.room()
        healthy = {s.id for s in subscriptions if s.status == "active" and s.failing_since is None}
        firsts: dict[tuple[int, str], int] = {}  # (subscription, subject) -> its first row
        for n, row in enumerate(rows):
            pair = (row["subscription_id"], row["subject"])
            if row["subscription_id"] in healthy and pair not in firsts and len(firsts) < room:
                firsts[pair] = n
        if not firsts:
            return []
        waiting = await webhooks.pending_subjects(
            conn, list({s for s, _ in firsts}), list({subject for _, subject in firsts})
        )
        return [n for pair, n in firsts.items() if pair not in waiting]

    async def _record(self, events: Sequence[Any], jobs: dict[Key, FirstSend]) -> bool:
        """Record the fan-out in one transaction, the answered deliveries in their state after
        the attempt, and hand the unanswered ones over to the sender; if it does not commit,
        abandon them all: the next step sends the batch again. False: the lease passed on."""
        results = {
            key: self.sender.result(job.row, job.answer.result())
            for key, job in jobs.items()
            if job.answer.done() and not job.answer.cancelled()
        }
        try:
            rows, ids, until = await self.database.change_with(self._fan_out, events, jobs, results)
        except BaseException as exc:
            self.sender.abandon(list(jobs.values()))
            if not isinstance(exc, LeaseLost):
                raise
            log.info("webhook relay lease passed to another process")
            self.lease.lost()
            return False
        last = events[-1]
        self.lease.position = (last.txid, last.id)
        made = {_key(row): ids[n] for n, row in enumerate(rows)}
        for key, job in jobs.items():
            if key not in made:  # its subscription was deleted meanwhile
                job.answer.cancel()
            elif key not in results:
                self.sender.handed_over(job, job.row._replace(id=made[key]), until)
        count_outcomes([result for key, result in results.items() if key in made])
        if rows:
            self.sender.wake.set()  # deliveries left to claims
        return True

    async def _fan_out(
        self,
        conn: Any,
        events: Sequence[Any],
        jobs: dict[Key, FirstSend],
        results: dict[Key, Result],
    ) -> tuple[list[dict[str, Any]], list[int], datetime]:
        """One delivery per event and matching subscription (read again: one may have come
        or gone since), the answered ones' attempts and their subscriptions' health, and the
        position past the events, in one transaction. A delivery sent first and unanswered is
        leased to this worker's sender. The rows, their ids, and the end of that lease."""
        subscriptions = await webhooks.receiving_subscriptions(conn)
        rows = delivery_rows(events, subscriptions)
        now = utcnow()
        until = self.sender.lease_until(now)
        answered: list[tuple[int, Result]] = []
        for n, row in enumerate(rows):
            key = _key(row)
            if (result := results.get(key)) is not None:
                row.update(_after(result, now))
                answered.append((n, result))
            elif key in jobs:
                row["lease_owner"], row["lease_until"] = self.sender.owner, until
        ids = await webhooks.insert_deliveries(conn, rows)
        if answered:
            await webhooks.record_attempts(
                conn, self.sender.owner, [(ids[n], r.attempt) for n, r in answered], (), now
            )
            await self.sender.note_health(conn, [result for _, result in answered])
        if not await self.lease.advance(conn, (events[-1].txid, events[-1].id)):
            raise LeaseLost
        return rows, ids, until

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
