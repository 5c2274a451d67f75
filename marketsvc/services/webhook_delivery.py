"""Send webhook deliveries: every worker, every instance, at least once, in order per subject.

A sender claims due deliveries in a short transaction of its own (``webhooks.claim_due``: a
lease of ``MARKETSVC_WEBHOOK_TIMEOUT_SECONDS`` + ``MARKETSVC_WEBHOOK_LEASE_SECONDS``; on
PostgreSQL ``FOR UPDATE SKIP LOCKED``, so two senders never take the same row), commits, reads
the claimed deliveries' events and builds each CloudEvent once (a delivery carries a body of its
own only when it has no event: a ping, or one whose event retention purged). New deliveries its
worker's relay leased to it as it made them come with their events, unclaimed (``fanned_out``);
those beyond its free slots wait in its own queue for a slot, not in the table for a claim.
One subscription gets at most half the slots, and one whose last attempt here failed one POST at
a time until one succeeds (``SUBSCRIPTION_IN_FLIGHT``, ``FAILING_IN_FLIGHT``): a receiver that is
down does not hold up the others.
It POSTs each with no transaction open (``webhook_http``), then records the attempts and their
outcomes in batches, in short transactions of their own. A sender that dies between lease and
record leaves a lease that runs out: the delivery is sent again (a duplicate the receiver drops
by ``webhook-id``), never lost.

Outcome: a 2xx is delivered. Anything else (another status, a timeout, a refused or failed
connection) is retried after a random wait between 0 and the schedule's next step ("full
jitter"; ``MARKETSVC_WEBHOOK_RETRY_SCHEDULE``, default 5s, 30s, 2m, 10m, 30m, 1h, 2h, 4h, 8h, then
8h again) until ``MARKETSVC_WEBHOOK_RETRY_FOR`` (default 24h) has passed since the first attempt:
then it is failed. A subscription whose attempts have all failed for
``MARKETSVC_WEBHOOK_DISABLE_AFTER`` (default 5 days) is disabled, and the event
``webhook_subscription.disabled`` records it (in the same transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from marketsvc.db_accessor import outbox, webhooks
from marketsvc.events.envelope import encode, envelope
from marketsvc.events.types import NewEvent
from marketsvc.ops.metrics import WEBHOOK_ATTEMPT_SECONDS, WEBHOOK_DELIVERIES, WEBHOOK_DISABLED
from marketsvc.schemas.webhooks import dump_subscription
from marketsvc.services.background import BACKGROUND_DATABASE, log_retry, process_owner
from marketsvc.services.webhook_http import CannotConnect, WebhookHttp
from marketsvc.services.webhook_signing import signed_headers
from marketsvc.services.webhook_targets import TargetRefused
from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from marketsvc.store.models import utcnow
from marketsvc.web.keys import SETTINGS

log = logging.getLogger("marketsvc.webhooks.delivery")
IN_FLIGHT = 50  # deliveries one sender POSTs at once (a slow receiver holds one slot)
# A slot is free once its POST has an answer: the attempt is recorded in a batch after it
# (``_record_batch``), and the delivery stays leased until then. With 20 slots, each waiting for
# its record, a subscribed worker fell behind its placements (scripts/bench, SQLite: half the
# events still pending when a load ended); with 50 it keeps up. 100 kept up too, but its bursts
# of POSTs cost the placements more, and unevenly (scripts/bench/results/webhook-ac03f4c.md).
#
# One subscription gets at most half the slots, and one whose last attempt here failed (an
# error status, a timeout, no connection) one POST at a time until a POST succeeds: a receiver
# that is down must not hold the slots that every other subscription's deliveries wait for.
# Sent in turn from one queue, 300 orders' deliveries to a receiver hanging past a 2 s timeout
# held those to a healthy receiver back for 13.6 s; with the caps, 0.7 s, as long as placing the
# orders took (tests/test_webhooks_isolation.py). Half, not all, for a receiver that has just
# gone down: it looks healthy until its first timeout.
SUBSCRIPTION_IN_FLIGHT = IN_FLIGHT // 2
FAILING_IN_FLIGHT = 1
# A finished POST wakes the sender to claim again only once half of what one subscription may
# have out is free: a claim is a write transaction, and one per finished delivery queued behind
# the placements for SQLite's one write lock. A fan-out still wakes it at once.
REFILL_AT = SUBSCRIPTION_IN_FLIGHT // 2
# Deliveries this worker's relay leased to it beyond its free slots wait here for one (a batch
# of the relay's). Left in the table, two in three were claimed under the placement load, each
# claim a write transaction of its own (scripts/bench, SQLite: ~150 events a fan-out, 50 slots).
# One whose lease would run out before its POST could end is left to a claim instead.
QUEUED = 500
MAX_RESPONSE_BYTES = 64 * 1024  # of a receiver's answer, read and dropped
MAX_ERROR_LENGTH = 500
GAUGE_EVERY_S = 30.0
USER_AGENT = "marketsvc-webhooks/1"
EVENT_GONE = "its event is past retention and was deleted"
# CloudEvents of the events this worker's relay fanned out last, kept for the claims that
# follow: without them each claim read its events back (about 25 us a delivery on SQLite,
# scripts/bench's placement with a subscription, profiled)
RECENT_BODIES = 2048
RECORD_GATHER_S = 0.02  # attempts finished this close together are recorded in one transaction


def next_wait(settings: Settings, attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: full jitter under the schedule's step."""
    schedule = settings.webhook_retry_schedule
    return random.uniform(0, schedule[min(attempts - 1, len(schedule) - 1)])


@dataclass(frozen=True)
class _Result:
    """A finished attempt, waiting for its batch to be recorded."""

    delivery_id: int
    subscription_id: int
    at: datetime
    attempt: dict[str, Any]
    outcome: dict[str, Any] | None  # None: delivered
    label: str
    posted: bool  # False: nothing was sent (its event was purged): says nothing of the receiver


class Sender:
    """One per worker: claims and sends due deliveries, records what happened."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.owner = process_owner()
        self.wake = asyncio.Event()
        self.http = WebhookHttp(
            allow_private=settings.webhook_allow_private,
            user_agent=USER_AGENT,
            max_response_bytes=MAX_RESPONSE_BYTES,
        )
        self._gauge_at = 0.0
        self._in_flight: set[asyncio.Task[None]] = set()
        self._results: list[_Result] = []
        self._flush: asyncio.Task[None] | None = None  # the batch still gathering
        self._recording: set[asyncio.Task[None]] = set()  # batches gathering or committing
        self._recent: dict[int, bytes] = {}  # events.id -> CloudEvent (``fanned_out``)
        # leased, waiting for a slot, by subscription: (delivery, its CloudEvent, lease's end)
        self._queued: dict[int, deque[tuple[Any, bytes | None, datetime]]] = {}
        self._queued_count = 0
        self._busy: Counter[int] = Counter()  # POSTs in flight by subscription
        self._failing: set[int] = set()  # subscriptions whose last attempt here failed

    async def close(self) -> None:
        """Stop: a POST in flight is abandoned, a queued delivery dropped (their leases run
        out: they are sent again)."""
        self._queued.clear()
        self._queued_count = 0
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        for task in list(self._recording):  # unrecorded attempts: leases run out, sent again
            task.cancel()
        await asyncio.gather(*self._recording, return_exceptions=True)
        await self.http.close()

    async def send_due(self) -> int:
        """Claim what is due, as many as there are free slots, and start sending each (the
        claim is committed first); how many were claimed. None while leased deliveries that
        may start wait for a slot: they came first. Not the deliveries of a failing
        subscription that has its POST out or deliveries waiting here."""
        room = IN_FLIGHT - len(self._in_flight)
        if room <= 0 or any(map(self._may_start, self._queued)):
            return 0
        skip = sorted(s for s in self._failing if not self._may_start(s) or s in self._queued)
        now = utcnow()
        async with self.database.read() as conn:
            if not await webhooks.any_due(conn, now, skip):
                return 0
        until = self.lease_until(now)
        claimed = await self.database.change_with(
            webhooks.claim_due, self.owner, now, until, room, skip
        )
        bodies = await self._bodies(claimed)
        for row in claimed:
            self._enqueue(row, bodies[row.id], until)
        self._start_queued()
        return len(claimed)

    def room(self) -> int:
        """How many new deliveries the relay may lease to this sender: its free slots and the
        free places in its queue."""
        return max(0, IN_FLIGHT + QUEUED - len(self._in_flight) - self._queued_count)

    def takes(self, subscription_id: int) -> int | None:
        """How many more of this subscription's deliveries the relay may lease to this sender
        (within ``room()``): None if only ``room()`` bounds them; for a failing subscription,
        what it may start at once."""
        if subscription_id not in self._failing:
            return None
        waiting = len(self._queued.get(subscription_id, ()))
        return max(0, FAILING_IN_FLIGHT - self._busy[subscription_id] - waiting)

    def _may_start(self, subscription_id: int) -> bool:
        """Whether a POST of this subscription's may start now that a slot is free."""
        failing = subscription_id in self._failing
        return self._busy[subscription_id] < (
            FAILING_IN_FLIGHT if failing else SUBSCRIPTION_IN_FLIGHT
        )

    def lease_until(self, now: datetime) -> datetime:
        """The end of a lease taken ``now``: the POST's timeout and the lease's margin."""
        settings = self.settings
        return now + timedelta(
            seconds=settings.webhook_timeout_seconds + settings.webhook_lease_seconds
        )

    def _launch(self, row: Any, body: bytes | None) -> None:
        task = asyncio.create_task(self._deliver_logged(row, body))
        self._in_flight.add(task)
        self._busy[row.subscription_id] += 1
        task.add_done_callback(functools.partial(self._finished, row.subscription_id))

    def _enqueue(self, row: Any, body: bytes | None, until: datetime) -> None:
        self._queued.setdefault(row.subscription_id, deque()).append((row, body, until))
        self._queued_count += 1

    def _start_queued(self) -> None:
        """Start queued deliveries while there are free slots, one subscription after the
        other, a failing one only as far as ``FAILING_IN_FLIGHT``; drop one whose lease would
        run out before its POST's timeout (it is claimed once the lease has run out)."""
        if not self._queued:
            return
        latest = utcnow() + timedelta(seconds=self.settings.webhook_timeout_seconds)
        moved = True
        while moved and len(self._in_flight) < IN_FLIGHT:
            moved = False
            for subscription_id, queue in list(self._queued.items()):
                while queue and queue[0][2] <= latest:  # could not be sent within its lease
                    queue.popleft()
                    self._queued_count -= 1
                if queue and len(self._in_flight) < IN_FLIGHT and self._may_start(subscription_id):
                    row, body, _ = queue.popleft()
                    self._queued_count -= 1
                    self._launch(row, body)
                    moved = True
                if not queue:
                    del self._queued[subscription_id]

    def fanned_out(
        self, events: Sequence[Any], leased: Sequence[webhooks.Claimed], until: datetime | None
    ) -> None:
        """This worker's relay fanned these events out (feed rows) and leased ``leased`` of
        their deliveries to this sender, until ``until``, as it inserted them (at most
        ``room()``): build the events' CloudEvents, keep them for the claims that follow, and
        start sending the leased deliveries, queueing those beyond the free slots."""
        recent = self._recent
        for event in events:
            recent[event.id] = self._encode(event)
        if until is not None:
            # a fanned-out delivery has its event (only a ping has none)
            bodies = {row.id: recent[row.event_row] for row in leased if row.event_row is not None}
            for row in leased:
                self._enqueue(row, bodies[row.id], until)
            self._start_queued()
        while len(recent) > RECENT_BODIES:  # the oldest first (insertion order)
            del recent[next(iter(recent))]
        self.wake.set()

    def _encode(self, event: Any) -> bytes:
        return encode(envelope(event, self.settings.events_source))

    async def _bodies(self, claimed: list[Any]) -> dict[int, bytes | None]:
        """Each claimed delivery's CloudEvent, by delivery id: its own body (a ping's), else
        built from its event, once per event (None: retention purged the event and kept no
        body for it)."""
        recent = self._recent
        missing = {row.event_row for row in claimed if row.body is None} - recent.keys()
        events: dict[int, Any] = {}
        kept: dict[int, str] = {}
        if missing:
            async with self.database.read() as conn:
                events = await outbox.events_by_row(conn, list(missing))
                # purged since the claim: retention wrote the body into the row first
                if purged := missing - events.keys():
                    ids = [
                        row.id for row in claimed if row.body is None and row.event_row in purged
                    ]
                    kept = await webhooks.kept_bodies(conn, ids)
        built = {event_row: self._encode(event) for event_row, event in events.items()}
        bodies: dict[int, bytes | None] = {}
        for row in claimed:
            if (body := row.body if row.body is not None else kept.get(row.id)) is not None:
                bodies[row.id] = body.encode()
            else:
                bodies[row.id] = recent.get(row.event_row) or built.get(row.event_row)
        return bodies

    def _finished(self, subscription_id: int, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._busy[subscription_id] -= 1
        if not self._busy[subscription_id]:
            del self._busy[subscription_id]
        self._start_queued()
        if len(self._in_flight) <= REFILL_AT and not any(map(self._may_start, self._queued)):
            self.wake.set()

    async def _deliver_logged(self, row: Any, body: bytes | None) -> None:
        """``deliver`` in a task of its own, which nothing awaits: whatever fails is logged here,
        and the delivery's lease runs out, so it is sent again."""
        try:
            await self.deliver(row, body)
        except Exception as exc:
            log_retry(log, f"webhook delivery {row.id}", exc)

    async def deliver(self, row: Any, body: bytes | None) -> None:
        """POST one claimed delivery (no transaction open) and queue the attempt's record;
        ``body`` None: its event was purged, nothing can be sent (failed)."""
        if body is None:
            self._record(row, utcnow(), None, EVENT_GONE, 0.0, gone=True)
            return
        secrets = [row.secret]
        if row.previous_secret and row.previous_until and row.previous_until > utcnow():
            secrets.append(row.previous_secret)
        headers = signed_headers(secrets, row.event_id, int(time.time()), body)
        headers["Content-Type"] = "application/json"
        at, started = utcnow(), time.perf_counter()
        status_code, error = await self._post(row.url, body, headers)
        elapsed = time.perf_counter() - started
        WEBHOOK_ATTEMPT_SECONDS.observe(elapsed)
        if error is None:
            self._failing.discard(row.subscription_id)
        else:
            self._failing.add(row.subscription_id)
        self._record(row, at, status_code, error, elapsed)

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        try:
            async with asyncio.timeout(self.settings.webhook_timeout_seconds):
                status = await self.http.post(url, body, headers)
        except TimeoutError:
            return None, f"timed out after {self.settings.webhook_timeout_seconds:g} s"
        except TargetRefused as exc:
            return None, str(exc)
        except CannotConnect as exc:
            return None, f"cannot connect: {exc}"[:MAX_ERROR_LENGTH]
        except (OSError, ValueError) as exc:  # BadResponse, ssl.SSLError...
            return None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
        if 200 <= status < 300:
            return status, None
        return status, f"answered {status}"

    def _record(
        self,
        row: Any,
        at: datetime,
        status_code: int | None,
        error: str | None,
        elapsed: float,
        gone: bool = False,
    ) -> None:
        """Queue the attempt's record in the batch gathering now (``gone``: failed at once)."""
        now = utcnow()
        attempts = row.attempts + 1
        first = row.first_attempt_at or at
        outcome: dict[str, Any] | None = None  # delivered: a batch's in one statement
        if error is None:
            label, next_at = "delivered", None
        elif gone or (now - first).total_seconds() >= self.settings.webhook_retry_for_seconds:
            outcome = {"attempts": attempts, "first_attempt_at": first, "status": "failed"}
            label, next_at = "failed", None
        else:
            next_at = now + timedelta(seconds=next_wait(self.settings, attempts))
            outcome = {"attempts": attempts, "first_attempt_at": first, "next_attempt_at": next_at}
            label = "retrying"
        attempt = {
            "at": at,
            "status_code": status_code,
            "latency_ms": round(elapsed * 1000),
            "error": error,
            "next_attempt_at": next_at,
        }
        self._results.append(
            _Result(row.id, row.subscription_id, at, attempt, outcome, label, posted=not gone)
        )
        if self._flush is None:
            self._flush = asyncio.create_task(self._record_batch())
            self._recording.add(self._flush)
            self._flush.add_done_callback(self._recording.discard)

    async def _record_batch(self) -> None:
        """Record every attempt finished within ``RECORD_GATHER_S`` in one transaction.

        One transaction per delivery (an attempt row, the delivery, the subscription's health)
        made a subscribed placement cost three write transactions instead of one: on SQLite
        they queue behind the placements for the one write lock. Batched, a burst of
        deliveries costs a few (scripts/bench: placement with a subscription active).
        """
        await asyncio.sleep(RECORD_GATHER_S)
        batch, self._results, self._flush = self._results, [], None
        try:
            await self.database.change_with(self._record_in, batch)
        except Exception as exc:  # their leases run out: the deliveries are sent again
            log_retry(log, f"recording {len(batch)} webhook attempts", exc)
            return
        for label, count in Counter(result.label for result in batch).items():
            WEBHOOK_DELIVERIES.labels(label).inc(count)  # one shared-memory write an outcome

    async def _record_in(self, conn: Any, batch: list[Any]) -> None:
        """The batch's attempts, deliveries and subscriptions' health, in one transaction."""
        await webhooks.record_attempts(
            conn,
            self.owner,
            [(r.delivery_id, r.attempt) for r in batch],
            delivered=[r.delivery_id for r in batch if r.outcome is None],
            now=utcnow(),
            outcomes=[(r.delivery_id, r.outcome) for r in batch if r.outcome is not None],
        )
        # a subscription's health after the batch: healthy if its last attempt succeeded,
        # else failing since the first failure after its last success
        health: dict[int, datetime | None] = {}
        for result in batch:
            if not result.posted:
                continue
            failed = result.attempt["error"] is not None
            if not failed:
                health[result.subscription_id] = None
            elif health.get(result.subscription_id) is None:
                health[result.subscription_id] = result.at
        for subscription_id, failing_since in health.items():
            if failing_since is None:
                await webhooks.mark_healthy(conn, subscription_id)
            else:
                await self._note_failure(conn, subscription_id, failing_since)

    async def _note_failure(self, conn: Any, subscription_id: int, at: datetime) -> None:
        since = await webhooks.mark_failing(conn, subscription_id, at)
        if (utcnow() - since).total_seconds() < self.settings.webhook_disable_after_seconds:
            return
        disabled = await webhooks.disable(conn, subscription_id)
        if disabled is not None:
            log.warning("webhook subscription %d disabled: failing since %s", disabled.id, since)
            await outbox.record(
                conn,
                NewEvent(
                    "webhook_subscription.disabled",
                    f"webhook_subscriptions/{disabled.id}",
                    dump_subscription(disabled),
                ),
            )
            self._gauge_at = 0.0

    async def publish_gauge(self) -> None:
        if time.monotonic() - self._gauge_at < GAUGE_EVERY_S:
            return
        async with self.database.read() as conn:
            WEBHOOK_DISABLED.set(await webhooks.count_disabled(conn))
        self._gauge_at = time.monotonic()

    async def run(self) -> None:
        while True:
            try:
                await self.publish_gauge()
                if await self.send_due():
                    continue
            except Exception as exc:  # a bug must not end the sender for the worker's life
                log_retry(log, "webhook sending", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.webhook_poll_seconds):
                    await self.wake.wait()
            self.wake.clear()


WEBHOOK_SENDER = web.AppKey("webhook_sender", Sender)


async def webhook_sender_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: one sender per worker. Stopping it mid-POST leaves the lease to run
    out: the delivery is sent again by whoever claims it next."""
    database = app[BACKGROUND_DATABASE]
    sender = Sender(database, app[SETTINGS])
    app[WEBHOOK_SENDER] = sender
    task = asyncio.create_task(sender.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await sender.close()
