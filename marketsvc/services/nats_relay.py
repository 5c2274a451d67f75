"""Publish every event to NATS JetStream: only with ``MARKETSVC_NATS_URL`` set.

``nats`` is imported here, inside the methods that connect, and nowhere else: without the
setting nothing about NATS is imported or needed.

Every worker runs the relay; the feed consumer ``"nats"`` (``db_accessor.consumers``) lets one
of them at a time, across workers and instances, follow the feed. The one holding the lease:

1. reads the next batch of the feed after the consumer's position (a read of its own: no
   transaction stays open while it talks to NATS, which on PostgreSQL would hold the feed's
   horizon back for every reader);
2. publishes each event's CloudEvent (the JSON the feed serves, ``events.envelope``) to
   ``<MARKETSVC_NATS_SUBJECT_PREFIX>.<event name>`` (``marketsvc.events.order.placed``) with
   header ``Nats-Msg-Id`` = the event id, pipelined, and awaits every ``PubAck``;
3. only then advances the consumer's position, in a short transaction of its own.

A crash between 2 and 3 makes the next relay publish the batch again; JetStream drops each
message whose ``Nats-Msg-Id`` it stored within the stream's duplicate window (the stream this
relay creates keeps ten minutes; a lease is 30 s by default), so the stream holds each event
once. NATS unreachable, slow (no ack within ``ACK_TIMEOUT_S``) or refusing: the batch is not
marked, the relay logs, backs off (doubling, with jitter, up to ``BACKOFF_CAP_S``) and tries
again; the backlog grows (``marketsvc_outbox_backlog_events{consumer="nats"}``) and HTTP
requests never wait for NATS. Within the stream, a retried batch can land after a later one
that went through first; consumers order by each event's ``resourceversion`` per subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from marketsvc.db_accessor import outbox
from marketsvc.events.envelope import encode, envelope
from marketsvc.events.types import BY_TYPE, TYPE_PREFIX
from marketsvc.ops.metrics import NATS_FAILURES, NATS_PUBLISHED
from marketsvc.services.background import BACKGROUND_DATABASE, FeedLease
from marketsvc.services.feed_wakeup import FEED_WAKEUP, FeedWakeup
from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from marketsvc.web.keys import SETTINGS

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

log = logging.getLogger("marketsvc.nats.relay")
CONSUMER = "nats"
BATCH = 500
ACK_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 3
POLL_S = 5.0
HELD_BACK_S = 0.05
BACKOFF_FIRST_S, BACKOFF_CAP_S = 0.5, 30.0
DUPLICATE_WINDOW_S = 600.0
CONTENT_TYPE = "application/cloudevents+json"

# Called with a batch after JetStream acknowledged every event in it and before the consumer's
# position moves past it: where a test stops the relay mid-way (and nothing else does).
AfterAcks = Callable[[Sequence[Any]], Awaitable[None]]


class NatsUnavailable(Exception):
    """NATS did not take the batch: not connected, no ack in time, or an error answer."""


class LeaseLost(Exception):
    """Another relay took the consumer over: this one must not advance it."""


def subject_of(settings: Settings, event_type: str) -> str:
    """``com.marketsvc.order.placed.v1`` -> ``marketsvc.events.order.placed``."""
    kind = BY_TYPE.get(event_type)
    name = kind.name if kind else event_type.removeprefix(TYPE_PREFIX).rsplit(".", 1)[0]
    return f"{settings.nats_subject_prefix}.{name}"


class NatsRelay:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.lease = FeedLease(database, CONSUMER, settings.nats_lease_seconds)
        self.after_acks: AfterAcks | None = None
        self.published = 0  # events JetStream stored, by this relay
        self.duplicates = 0  # events JetStream already had (a re-publish it dropped)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    async def step(self) -> tuple[int, bool]:
        """Publish the next batch if this process holds the lease: (events, held back)."""
        js = await self._connection()
        if not await self.lease.hold() or self.lease.position is None:
            return 0, False
        async with self.database.scan() as conn:
            page = await outbox.read_feed(conn, self.lease.position, outbox.FeedFilter(), BATCH)
        if not page.rows:
            return 0, page.held_back
        await self._publish(js, page.rows)
        if self.after_acks is not None:
            await self.after_acks(page.rows)
        last = page.rows[-1]
        async with self.database.change_rows() as conn:
            if not await self.lease.advance(conn, (last.txid, last.id)):
                raise LeaseLost
        self.lease.position = (last.txid, last.id)
        return len(page.rows), page.held_back

    async def _connection(self) -> JetStreamContext:
        """The JetStream context, connecting (and creating the stream if missing) if needed."""
        if self._js is not None and self._nc is not None and self._nc.is_connected:
            return self._js
        await self.disconnect()
        import nats
        from nats.errors import Error as NatsError
        from nats.js.errors import NotFoundError

        try:
            nc = await nats.connect(
                self.settings.nats_url or "",
                name="marketsvc",
                connect_timeout=CONNECT_TIMEOUT_S,
                allow_reconnect=False,  # this relay reconnects, with its own backoff
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                error_cb=_quiet,
                disconnected_cb=_quiet_event,
                closed_cb=_quiet_event,
            )
        except (NatsError, OSError, TimeoutError) as exc:
            raise NatsUnavailable(f"cannot connect: {exc!r}") from exc
        try:
            js = nc.jetstream(timeout=ACK_TIMEOUT_S)
            stream = self.settings.nats_stream
            try:
                await js.stream_info(stream)
            except NotFoundError:
                subjects = [f"{self.settings.nats_subject_prefix}.>"]
                await js.add_stream(
                    name=stream, subjects=subjects, duplicate_window=DUPLICATE_WINDOW_S
                )
                log.info("created JetStream stream %s for %s", stream, subjects[0])
        except (NatsError, OSError, TimeoutError) as exc:
            await nc.close()
            raise NatsUnavailable(f"cannot use stream: {exc!r}") from exc
        self._nc, self._js = nc, js
        return js

    async def _publish(self, js: JetStreamContext, rows: Sequence[Any]) -> None:
        """Send the batch in order, then await every ack (within ``ACK_TIMEOUT_S``)."""
        from nats.errors import Error as NatsError

        source, stream = self.settings.events_source, self.settings.nats_stream
        try:
            async with asyncio.timeout(ACK_TIMEOUT_S):
                pending = [
                    await js.publish_async(
                        subject_of(self.settings, row.type),
                        encode(envelope(row, source)),
                        stream=stream,
                        headers={"Nats-Msg-Id": row.event_id, "Content-Type": CONTENT_TYPE},
                    )
                    for row in rows
                ]
                acks = await asyncio.gather(*pending)
        except (NatsError, OSError, TimeoutError) as exc:
            await self.disconnect()
            raise NatsUnavailable(f"batch not acknowledged: {exc!r}") from exc
        duplicates = sum(1 for ack in acks if ack.duplicate)
        self.published += len(acks) - duplicates
        self.duplicates += duplicates
        NATS_PUBLISHED.labels("stored").inc(len(acks) - duplicates)
        NATS_PUBLISHED.labels("duplicate").inc(duplicates)

    async def disconnect(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(Exception):  # closing a broken connection: nothing to save
                await nc.close()

    async def run(self, wakeup: FeedWakeup) -> None:
        failures = 0
        while True:
            seen = wakeup.generation
            try:
                moved, held_back = await self.step()
                failures = 0
            except LeaseLost:
                log.info("NATS relay lease passed to another process")
                self.lease.lost()
                continue
            except Exception as exc:  # NATS or the database away, or a bug: never stop relaying
                if not isinstance(exc, NatsUnavailable | SQLAlchemyError | OSError | TimeoutError):
                    log.exception("NATS relay step failed unexpectedly")
                failures += 1
                NATS_FAILURES.inc()
                self.lease.renew_soon()  # before the next attempt
                delay = min(BACKOFF_CAP_S, BACKOFF_FIRST_S * 2 ** (failures - 1))
                delay *= random.uniform(0.5, 1.0)
                log.warning(
                    "NATS relay failed (%d in a row), retry in %.1f s: %s", failures, delay, exc
                )
                await asyncio.sleep(delay)
                continue
            if moved == BATCH:
                continue
            if held_back:
                await asyncio.sleep(HELD_BACK_S)
            elif self.lease.position is None or wakeup.closing:  # not the relay, or stopping
                await asyncio.sleep(min(POLL_S, self.lease.retry_seconds))
            else:
                await wakeup.wait(seen, POLL_S)


async def _quiet(exc: Exception) -> None:
    """nats-py's error callback: the relay logs failures itself, once per attempt."""


async def _quiet_event() -> None:
    pass


NATS_RELAY = web.AppKey("nats_relay", NatsRelay)


async def nats_relay_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` (after the feed wake-up's): with ``MARKETSVC_NATS_URL`` set, the relay
    task; on a clean stop it gives its lease up so that another process takes over at once."""
    settings = app[SETTINGS]
    if settings.nats_url is None:
        yield
        return
    relay = NatsRelay(app[BACKGROUND_DATABASE], settings)
    app[NATS_RELAY] = relay
    task = asyncio.create_task(relay.run(app[FEED_WAKEUP]))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await relay.disconnect()
    with contextlib.suppress(SQLAlchemyError, OSError, TimeoutError):
        await relay.lease.release()
