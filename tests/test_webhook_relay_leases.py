"""The relay leases the deliveries it makes to its worker's sender, in the fan-out's transaction,
and hands them over: the sender sends them without a claim (``Relay._to_lease``), those beyond
its free slots from a queue of its own. Only as many as it has slots and queue for (of a failing
subscription's, one at a time), only to an active subscription, and only a delivery that is the
first pending one about its subject: per-subject order holds as it does for a claim."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from marketsvc.db_accessor import outbox, webhooks
from marketsvc.events.types import NewEvent
from marketsvc.services import webhook_delivery
from marketsvc.services.webhook_delivery import Sender
from marketsvc.services.webhook_relay import Relay
from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from tests.test_webhooks_delivery import until
from tests.webhook_receivers import Receiver
from tests.webhook_rig import sender_and_receiver


@dataclass
class Rig:
    """A relay and its sender (no app, so no claim runs unless a test asks), a real receiver."""

    database: Database
    sender: Sender
    relay: Relay
    receiver: Receiver

    async def subscribe(self, status: str = "active") -> int:
        async with self.database.change_rows() as conn:
            sub = await webhooks.create_subscription(
                conn, self.receiver.url, None, "", "whsec_AA=="
            )
            if status != "active":
                await webhooks.update_subscription(conn, sub.id, {"status": status})
        return int(sub.id)

    async def events(self, *subjects: str) -> None:
        async with self.database.change_rows() as conn:
            for n, subject in enumerate(subjects):
                await outbox.record(
                    conn, NewEvent("webhook_subscription.disabled", subject, {"n": n})
                )

    async def fan_out(self) -> None:
        """Relay steps until it has fanned out what there is (PostgreSQL: once settled)."""
        for _ in range(300):
            moved, _held_back = await self.relay.step()
            if moved:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the relay fanned nothing out")

    async def deliveries(self) -> list[Any]:
        async with self.database.read() as conn:
            result = await conn.execute(
                text("SELECT id, subject, status, lease_owner FROM webhook_deliveries ORDER BY id")
            )
            return list(result)

    def subjects_received(self) -> list[str]:
        return [receipt.event["subject"] for receipt in self.receiver.accepted()]


@pytest.fixture
async def rig(settings: Settings) -> AsyncIterator[Rig]:
    async with sender_and_receiver(settings) as (settings, database, sender, receiver):
        yield Rig(database, sender, Relay(database, settings, sender), receiver)


@pytest.fixture
async def short_lease_rig(settings: Settings) -> AsyncIterator[Rig]:
    """POSTs time out after 1 s and leases last 2 s (the timeout and a margin of 1 s)."""
    short = dataclasses.replace(settings, webhook_timeout_seconds=1.0, webhook_lease_seconds=1.0)
    async with sender_and_receiver(short) as (short, database, sender, receiver):
        yield Rig(database, sender, Relay(database, short, sender), receiver)


async def delivered(rig: Rig, count: int) -> None:
    async def done() -> bool:
        rows = await rig.deliveries()
        return sum(row.status == "delivered" for row in rows) == count

    await until(done, 20, f"{count} delivered and recorded")


async def test_the_relay_hands_its_sender_leased_deliveries_that_go_out_without_a_claim(
    rig: Rig,
) -> None:
    await rig.subscribe()
    await rig.events("orders/1", "orders/2", "orders/3")
    await rig.fan_out()
    # nothing claimed: the sender's loop does not run here, and send_due is never called
    await until(lambda: len(rig.receiver.accepted()) == 3, 20, "the three deliveries")
    assert sorted(rig.subjects_received()) == ["orders/1", "orders/2", "orders/3"]
    await delivered(rig, 3)


async def test_a_subjects_later_delivery_waits_for_the_earlier_one(rig: Rig) -> None:
    await rig.subscribe()
    await rig.events("orders/1", "orders/1", "orders/2")  # two about orders/1 in one batch
    await rig.fan_out()
    await delivered(rig, 2)
    rows = await rig.deliveries()
    assert [(row.subject, row.status, row.lease_owner) for row in rows] == [
        ("orders/1", "delivered", None),
        ("orders/1", "pending", None),  # not leased: the first about orders/1 was pending
        ("orders/2", "delivered", None),
    ]
    # a new event about orders/1 while its second delivery is still pending: not leased either
    await rig.events("orders/1")
    await rig.fan_out()
    assert [row.lease_owner for row in await rig.deliveries()] == [None] * 4
    assert await rig.sender.send_due() == 1  # the claim takes the subject's head only
    await delivered(rig, 3)
    assert await rig.sender.send_due() == 1
    await delivered(rig, 4)
    assert rig.subjects_received()[-2:] == ["orders/1", "orders/1"]
    numbers = [
        r.event["data"]["n"] for r in rig.receiver.accepted() if r.event["subject"] == "orders/1"
    ]
    assert numbers == [0, 1, 0]  # in feed order


async def test_a_paused_subscriptions_deliveries_are_not_leased(rig: Rig) -> None:
    await rig.subscribe(status="paused")
    await rig.events("orders/1")
    await rig.fan_out()
    [row] = await rig.deliveries()
    assert (row.status, row.lease_owner) == ("pending", None)
    await asyncio.sleep(0.3)
    assert rig.receiver.receipts == []


async def test_leased_deliveries_beyond_the_free_slots_wait_in_the_senders_queue(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhook_delivery, "IN_FLIGHT", 2)
    monkeypatch.setattr(webhook_delivery, "QUEUED", 1)
    await rig.subscribe()
    await rig.events(*(f"orders/{n}" for n in range(5)))
    await rig.fan_out()
    # two slots and one place in the queue: three leased, two left in the table for a claim
    await delivered(rig, 3)  # the queued one too, without a claim
    await asyncio.sleep(0.3)
    assert len(rig.receiver.receipts) == 3
    rows = await rig.deliveries()
    assert [row.status for row in rows] == ["delivered"] * 3 + ["pending"] * 2
    assert [row.lease_owner for row in rows[3:]] == [None, None]
    assert await rig.sender.send_due() == 2
    await delivered(rig, 5)


async def test_a_queued_delivery_whose_lease_would_run_out_first_is_left_to_a_claim(
    short_lease_rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = short_lease_rig
    monkeypatch.setattr(webhook_delivery, "IN_FLIGHT", 1)
    rig.receiver.hang_first, rig.receiver.hang_s = 1, 1.5  # the one slot held until its timeout
    await rig.subscribe()
    await rig.events("orders/1", "orders/2")
    await rig.fan_out()
    # both leased until the fan-out + 2 s; the second waits in the queue for the slot, which
    # frees when the first POST times out, 1 s in: sending it then could outlast its lease
    await until(lambda: rig.sender.room() == webhook_delivery.QUEUED + 1, 20, "the slot freed")
    await asyncio.sleep(0.3)
    assert len(rig.receiver.receipts) == 1
    second = (await rig.deliveries())[1]
    assert (second.status, second.lease_owner) == ("pending", rig.sender.owner)
    await asyncio.sleep(1.0)  # its lease runs out: a claim takes it
    assert await rig.sender.send_due() >= 1
    await until(
        lambda: "orders/2" in rig.subjects_received(), 20, "the second, sent after its claim"
    )


async def test_a_failing_subscription_gets_one_post_at_a_time_until_one_succeeds(
    rig: Rig,
) -> None:
    rig.receiver.fail_first = 10**6  # 500 to everything, but what the gate holds
    subscription = await rig.subscribe()
    await rig.events("orders/1")
    await rig.fan_out()
    await until(lambda: len(rig.receiver.receipts) == 1, 20, "the first POST, answered 500")
    await until(lambda: rig.sender.takes(subscription) == 1, 20, "the failure noted")
    await until(lambda: recorded_first(rig), 20, "the failed attempt recorded")

    # the next POST is held at the receiver: the subscription's one probe is out
    rig.receiver.gate_when = lambda event: event["subject"] == "orders/2"
    await rig.events(*(f"orders/{n}" for n in range(2, 7)))
    await rig.fan_out()
    await until(lambda: rig.receiver.arrived.is_set(), 20, "the probe at the receiver")
    rows = await rig.deliveries()
    leased = [row.subject for row in rows if row.lease_owner is not None]
    assert leased == ["orders/2"]  # the other four were left in the table
    assert rig.sender.takes(subscription) == 0
    assert await rig.sender.send_due() == 0  # and the claims pass over them
    assert len(rig.receiver.receipts) == 2

    rig.receiver.fail_first = 0
    rig.receiver.gate.set()  # the probe succeeds: the subscription is healthy again
    await until(lambda: rig.sender.takes(subscription) is None, 20, "the success noted")
    await until(rig.sender.send_due, 20, "the four left claimed")
    wanted = {f"orders/{n}" for n in range(2, 7)}
    await until(lambda: wanted <= set(rig.subjects_received()), 20, "orders/2 to 6 accepted")
    assert rig.receiver.most_open == 1


async def recorded_first(rig: Rig) -> bool:
    first = (await rig.deliveries())[0]
    return first.status == "pending" and first.lease_owner is None
