"""Webhook deliveries and event retention: a delivery builds its CloudEvent from its event when
it is sent, so before retention purges an event, the pending deliveries that still wait for it
get the CloudEvent written into their rows (a paused subscription's, resumed later, sends it as
it would have been); a delivery whose event is gone cannot be redelivered (410), and one that
finds its event gone when it is sent fails at once, without counting against its receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from standardwebhooks import Webhook

from marketsvc.app import create_app
from marketsvc.db_accessor import outbox, webhooks
from marketsvc.events.envelope import envelope
from marketsvc.events.types import NewEvent
from marketsvc.services.retention import purge_events
from marketsvc.services.webhook_delivery import RECENT_BODIES, Sender
from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from marketsvc.store.models import utcnow
from tests.events_feed import feed, settled
from tests.test_webhooks_delivery import (
    SUBSCRIPTIONS,
    fast,
    order_burst,
    set_status,
    subscribe,
    until,
)
from tests.webhook_receivers import Receiver
from tests.webhook_rig import sender_and_receiver

PLACED = "com.marketsvc.order.placed.v1"


async def _bodies(database: Database, subscription_id: int) -> list[str | None]:
    async with database.read() as conn:
        result = await conn.execute(
            text("SELECT body FROM webhook_deliveries WHERE subscription_id = :s ORDER BY id"),
            {"s": subscription_id},
        )
        return [row.body for row in result]


async def _deliveries(client: Any, admin: dict[str, str], subscription_id: int) -> list[Any]:
    resp = await client.get(f"{SUBSCRIPTIONS}/{subscription_id}/deliveries", headers=admin)
    return list(await resp.json())


async def test_a_paused_subscriptions_deliveries_outlive_the_purge_of_their_events(
    aiohttp_client: Any, settings: Settings, admin: dict[str, str]
) -> None:
    paused_receiver, active_receiver = Receiver(), Receiver()
    await paused_receiver.start()
    await active_receiver.start()
    database = Database(settings)
    try:
        client = await aiohttp_client(create_app(fast(settings)))
        paused = await subscribe(client, admin, paused_receiver.url, event_types=[PLACED])
        active = await subscribe(client, admin, active_receiver.url, event_types=[PLACED])
        await set_status(client, admin, [paused["id"]], "paused")
        await order_burst(client, admin, orders=3)
        await until(lambda: len(active_receiver.accepted()) == 3, 20, "the active one's three")

        async def paused_waiting() -> bool:  # without bodies of their own
            return await _bodies(database, paused["id"]) == [None] * 3

        async def active_recorded() -> bool:
            deliveries = await _deliveries(client, admin, active["id"])
            return all(d["status"] == "delivered" for d in deliveries)

        await until(paused_waiting, 20, "the paused one's three deliveries")
        await until(active_recorded, 20, "the active one's attempts recorded")
        placed = [
            {k: v for k, v in event.items() if k != "cursor"}
            for event in await feed(client, admin, type=PLACED)
        ]
        await settled(client)

        assert await purge_events(database, utcnow(), settings.events_source) > 0
        assert await feed(client, admin) == []
        kept = await _bodies(database, paused["id"])
        assert all(body is not None for body in kept)  # written before the events went
        assert await _bodies(database, active["id"]) == [None] * 3  # delivered: not kept

        await set_status(client, admin, [paused["id"]], "active")
        await until(lambda: len(paused_receiver.accepted()) == 3, 20, "the paused one's three")
        sent = {r.event["id"]: r.event for r in paused_receiver.receipts}
        assert sent == {event["id"]: event for event in placed}  # as the feed had them
        for receipt in paused_receiver.receipts:
            Webhook(paused["secret"]).verify(receipt.body, receipt.headers)

        [first, *_] = await _deliveries(client, admin, active["id"])
        redeliver = f"/api/v1/webhooks/deliveries/{first['id']}/redeliver"
        resp = await client.post(redeliver, headers=admin)
        assert resp.status == 410
        assert resp.content_type == "application/problem+json"
        assert "past retention" in (await resp.json())["detail"]
    finally:
        await paused_receiver.stop()
        await active_receiver.stop()
        await database.dispose()


@dataclass
class Rig:
    """A sender of its own (no app), a real receiver, and the settings they run with."""

    settings: Settings
    database: Database
    sender: Sender
    receiver: Receiver

    async def subscribe(self) -> int:
        async with self.database.change_rows() as conn:
            sub = await webhooks.create_subscription(
                conn, self.receiver.url, None, "", "whsec_AA=="
            )
        return int(sub.id)

    async def deliver(self, delivery: dict[str, Any]) -> int:
        async with self.database.change_rows() as conn:
            return await webhooks.insert_delivery(conn, delivery)

    async def one_event(self) -> Any:
        """A new event, read back from the feed once it is settled (PostgreSQL's horizon)."""
        async with self.database.change_rows() as conn:
            await outbox.record(conn, NewEvent("webhook_subscription.disabled", "x/1", {"n": 1}))
        for _ in range(300):
            async with self.database.read() as conn:
                events = (await outbox.read_feed(conn, outbox.START, outbox.FeedFilter(), 9)).rows
            if events:
                return events[-1]
            await asyncio.sleep(0.1)
        raise AssertionError("the event never settled")

    def cloudevent(self, event: Any) -> Any:
        return orjson.loads(orjson.dumps(envelope(event, self.settings.events_source)))


@pytest.fixture
async def rig(settings: Settings) -> AsyncIterator[Rig]:
    async with sender_and_receiver(settings) as parts:
        yield Rig(*parts)


def _delivery_of(subscription_id: int, event: Any) -> dict[str, Any]:
    """A delivery of a feed event, as the relay inserts it (no body)."""
    return {
        "subscription_id": subscription_id,
        "event_row": event.id,
        "event_id": event.event_id,
        "subject": event.subject,
        "type": event.type,
    }


async def test_a_delivery_that_finds_its_event_gone_fails_without_blaming_its_receiver(
    rig: Rig,
) -> None:
    subscription_id = await rig.subscribe()
    gone = SimpleNamespace(id=999_999, event_id="e-gone", subject="orders/1", type=PLACED)
    delivery_id = await rig.deliver(_delivery_of(subscription_id, gone))  # no such event
    assert await rig.sender.send_due() == 1

    async def failed() -> bool:
        async with rig.database.read() as conn:
            delivery = await webhooks.delivery_with_attempts(conn, delivery_id)
        return bool(delivery["status"] == "failed")

    await until(failed, 20, "the delivery failed")
    async with rig.database.read() as conn:
        delivery = await webhooks.delivery_with_attempts(conn, delivery_id)
        subscription = await webhooks.get_subscription(conn, subscription_id)
    assert [a.error for a in delivery["attempt_log"]] == [
        "its event is past retention and was deleted"
    ]
    assert subscription.failing_since is None
    assert rig.receiver.receipts == []


async def test_a_delivery_claimed_just_before_its_events_purge_sends_the_kept_body(
    rig: Rig,
) -> None:
    """The race: a sender claims a delivery (no body of its own), retention then purges its
    event (writing the body into the row first), and only then does the sender read the event.
    It sends the body retention kept, not a failure."""
    event = await rig.one_event()
    delivery_id = await rig.deliver(_delivery_of(await rig.subscribe(), event))
    now = utcnow()
    [claimed] = await rig.database.change_with(
        webhooks.claim_due, rig.sender.owner, now, now + timedelta(minutes=1), 9
    )
    assert claimed.id == delivery_id
    assert claimed.body is None
    for _ in range(300):  # PostgreSQL: until no other transaction holds the horizon
        if await purge_events(rig.database, utcnow(), rig.settings.events_source):
            break
        await asyncio.sleep(0.1)
    async with rig.database.read() as conn:
        assert await outbox.events_by_row(conn, [event.id]) == {}

    sent = (await rig.sender._bodies([claimed]))[delivery_id]
    assert sent is not None, "sent as a failure: its event is gone"
    assert orjson.loads(sent) == rig.cloudevent(event)


async def test_the_relays_cloudevents_spare_the_claim_a_read_of_the_events(rig: Rig) -> None:
    """What this worker's relay fanned out, the sender sends from the CloudEvents it built then
    (``Sender.fanned_out``): the event is not read back. Shown by deleting the event row (no
    body kept) before the claim: the receiver still gets the CloudEvent."""
    event = await rig.one_event()
    await rig.deliver(_delivery_of(await rig.subscribe(), event))
    rig.sender.fanned_out([event], [], None)  # as the relay does after its fan-out commits
    assert rig.sender.wake.is_set()
    async with rig.database.change_rows() as conn:
        await conn.execute(text("DELETE FROM events WHERE id = :id"), {"id": event.id})
    assert await rig.sender.send_due() == 1
    await until(lambda: len(rig.receiver.accepted()) == 1, 20, "the delivery")
    assert rig.receiver.receipts[0].event == rig.cloudevent(event)


async def test_the_sender_keeps_the_last_cloudevents_only(rig: Rig) -> None:
    events = [
        SimpleNamespace(
            id=n,
            event_id=f"e-{n}",
            type=PLACED,
            subject=f"orders/{n}",
            sequence=1,
            time=utcnow(),
            data=b"{}",
        )
        for n in range(RECENT_BODIES + 10)
    ]
    rig.sender.fanned_out(events, [], None)
    assert list(rig.sender._recent) == [e.id for e in events[10:]]
