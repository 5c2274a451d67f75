"""Webhook deliveries and event retention: a delivery builds its CloudEvent from its event when
it is sent, so before retention purges an event, the pending deliveries that still wait for it
get the CloudEvent written into their rows (a paused subscription's, resumed later, sends it as
it would have been); a delivery whose event is gone cannot be redelivered (410), and one that
finds its event gone when it is sent fails at once, without counting against its receiver."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import text
from standardwebhooks import Webhook

from marketsvc.app import create_app
from marketsvc.db_accessor import outbox, webhooks
from marketsvc.events.envelope import envelope
from marketsvc.events.types import NewEvent
from marketsvc.services.retention import purge_events
from marketsvc.services.webhook_delivery import Sender
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


async def test_a_delivery_that_finds_its_event_gone_fails_without_blaming_its_receiver(
    settings: Settings,
) -> None:
    receiver = Receiver()
    await receiver.start()
    settings = dataclasses.replace(settings, webhook_allow_private=True)
    database = Database(settings)
    sender = Sender(database, settings)
    try:
        async with database.change_rows() as conn:
            sub = await webhooks.create_subscription(conn, receiver.url, None, "", "whsec_AA==")
            delivery_id = await webhooks.insert_delivery(
                conn,
                {
                    "subscription_id": sub.id,
                    "event_row": 999_999,  # no such event: purged, say, by a race
                    "event_id": "e-gone",
                    "subject": "orders/1",
                    "type": PLACED,
                },
            )
        assert await sender.send_due() == 1

        async def failed() -> bool:
            async with database.read() as conn:
                delivery = await webhooks.delivery_with_attempts(conn, delivery_id)
            return bool(delivery["status"] == "failed")

        await until(failed, 20, "the delivery failed")
        async with database.read() as conn:
            delivery = await webhooks.delivery_with_attempts(conn, delivery_id)
            subscription = await webhooks.get_subscription(conn, sub.id)
        assert [a.error for a in delivery["attempt_log"]] == [
            "its event is past retention and was deleted"
        ]
        assert subscription.failing_since is None
        assert receiver.receipts == []
    finally:
        await sender.close()
        await receiver.stop()
        await database.dispose()


async def test_a_delivery_claimed_just_before_its_events_purge_sends_the_kept_body(
    settings: Settings,
) -> None:
    """The race: a sender claims a delivery (no body of its own), retention then purges its
    event (writing the body into the row first), and only then does the sender read the event.
    It sends the body retention kept, not a failure."""
    settings = dataclasses.replace(settings, webhook_allow_private=True)
    database = Database(settings)
    sender = Sender(database, settings)
    try:
        async with database.change_rows() as conn:
            await outbox.record(conn, NewEvent("webhook_subscription.disabled", "x/1", {"n": 1}))
        events: Any = []
        for _ in range(300):  # PostgreSQL: until no other transaction holds the horizon
            async with database.read() as conn:
                events = (await outbox.read_feed(conn, outbox.START, outbox.FeedFilter(), 9)).rows
            if events:
                break
            await asyncio.sleep(0.1)
        [event] = events
        async with database.change_rows() as conn:
            sub = await webhooks.create_subscription(conn, "http://127.0.0.1:9/", None, "", "s")
            delivery_id = await webhooks.insert_delivery(
                conn,
                {
                    "subscription_id": sub.id,
                    "event_row": event.id,
                    "event_id": event.event_id,
                    "subject": event.subject,
                    "type": event.type,
                },
            )
        now = utcnow()
        [claimed] = await database.change_with(
            webhooks.claim_due, sender.owner, now, now + timedelta(minutes=1), 9
        )
        assert claimed.id == delivery_id
        assert claimed.body is None
        for _ in range(300):  # PostgreSQL: until no other transaction holds the horizon
            if await purge_events(database, utcnow(), settings.events_source):
                break
            await asyncio.sleep(0.1)
        async with database.read() as conn:
            assert await outbox.events_by_row(conn, [event.id]) == {}

        bodies = await sender._bodies([claimed])
        sent = bodies[delivery_id]
        assert sent is not None, "sent as a failure: its event is gone"
        assert orjson.loads(sent) == orjson.loads(
            orjson.dumps(envelope(event, settings.events_source))
        )
    finally:
        await sender.close()
        await database.dispose()
