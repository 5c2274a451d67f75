"""Webhook delivery end to end: real receivers, a burst of order events over the real API, a
relay stopped mid-delivery, and every event delivered, in order per subject, signed."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from standardwebhooks import Webhook

from marketsvc.app import create_app
from marketsvc.services.webhook_signing import signature
from marketsvc.settings import Settings
from tests.events_feed import feed
from tests.webhook_receivers import Receipt, Receiver

SUBSCRIPTIONS = "/api/v1/webhooks/subscriptions"


def fast(settings: Settings, **overrides: Any) -> Settings:
    """Tiny waits, so that retries and lease expiries take a test seconds, not hours."""
    tiny = {
        "webhook_allow_private": True,
        "webhook_timeout_seconds": 10.0,  # a busy test machine is not a receiver timing out
        "webhook_retry_schedule": (0.05, 0.1, 0.2),
        "webhook_poll_seconds": 0.05,
        "webhook_lease_seconds": 1.0,
    }
    return dataclasses.replace(settings, **tiny | overrides)


async def until(condition: Callable[[], Any], seconds: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def subscribe(client: Any, admin: dict[str, str], url: str, **body: Any) -> dict[str, Any]:
    resp = await client.post(SUBSCRIPTIONS, json={"url": url} | body, headers=admin)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def order_burst(client: Any, admin: dict[str, str], orders: int = 6) -> None:
    """A customer, two items, ``orders`` orders; pay two, cancel two (one of them paid)."""
    customer = {
        "name": "Ada",
        "email": "ada@example.com",
        "address": {"street": "1 High St", "city": "Leeds", "post_code": "LS1", "country": "GB"},
    }
    resp = await client.post("/api/v1/customers", json=customer, headers=admin)
    assert resp.status == 201, await resp.text()
    customer_id = (await resp.json())["id"]
    items = []
    for name in ("Kettle", "Teapot"):
        body = {"name": name, "price": "10.00", "stock": 1000}
        resp = await client.post("/api/v1/items", json=body, headers=admin)
        items.append((await resp.json())["id"])
    placed = []
    for n in range(orders):
        lines = [{"item_id": items[n % 2], "quantity": 1}]
        resp = await client.post(
            "/api/v1/orders", json={"customer_id": customer_id, "lines": lines}, headers=admin
        )
        assert resp.status == 201, await resp.text()
        placed.append((await resp.json())["id"])
    for order_id, status in (
        (placed[0], "paid"),
        (placed[1], "paid"),
        (placed[1], "cancelled"),
        (placed[2], "cancelled"),
    ):
        resp = await client.patch(
            f"/api/v1/orders/{order_id}", json={"status": status}, headers=admin
        )
        assert resp.status == 200, await resp.text()


async def set_status(client: Any, admin: dict[str, str], ids: list[int], status: str) -> None:
    for subscription_id in ids:
        resp = await client.patch(
            f"{SUBSCRIPTIONS}/{subscription_id}", json={"status": status}, headers=admin
        )
        assert resp.status == 200, await resp.text()


async def nothing_pending(client: Any, admin: dict[str, str]) -> bool:
    for subscription in await (await client.get(SUBSCRIPTIONS, headers=admin)).json():
        url = f"{SUBSCRIPTIONS}/{subscription['id']}/deliveries?status=pending"
        if await (await client.get(url, headers=admin)).json():
            return False
    return True


def verify_signatures(receipts: list[Receipt], secret: str) -> None:
    for receipt in receipts:
        Webhook(secret).verify(receipt.body, receipt.headers)  # raises if any signature is off
        assert receipt.headers["webhook-id"] == receipt.event["id"]


def check_order(receipts: list[Receipt], crash_at: float | None) -> None:
    """Per subject, accepted events come in increasing ``resourceversion``; a repeat (same
    webhook-id) only of an event first accepted before the crash, and received again after."""
    first_seen: dict[str, float] = {}
    by_subject: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for receipt in receipts:
        event = receipt.event
        event_id = event["id"]
        if event_id in first_seen:
            assert crash_at is not None, f"event {event_id} delivered twice without a crash"
            assert first_seen[event_id] <= crash_at < receipt.at, f"{event_id} repeated"
        else:
            first_seen[event_id] = receipt.at
        by_subject[event["subject"]].append((event_id, event["resourceversion"]))
    for subject, seen in by_subject.items():
        versions = [v for i, (e, v) in enumerate(seen) if i == 0 or seen[i - 1][0] != e]
        assert versions == sorted(set(versions)), f"{subject} out of order: {versions}"


async def test_every_event_reaches_every_receiver_in_order_despite_failures_and_a_crash(
    aiohttp_client: Any, settings: Settings, admin: dict[str, str]
) -> None:
    failing = Receiver(fail_first=5)
    hanging = Receiver(hang_first=2, hang_s=3.0)
    healthy = Receiver(gate_when=lambda event: event["type"].endswith("order.cancelled.v1"))
    receivers = (failing, hanging, healthy)
    for receiver in receivers:
        await receiver.start()
    try:
        config = fast(settings, webhook_timeout_seconds=2.0)  # the hanging receiver: 3 s
        first = await aiohttp_client(create_app(config))
        secrets, ids = {}, []
        for receiver in receivers:
            created = await subscribe(first, admin, receiver.url)
            secrets[receiver.url] = created["secret"]
            ids.append(created["id"])
        # paused during the burst, so that every event is due at once when they resume: the
        # order per subject then rests on the delivery rule, not on the pace of the requests
        await set_status(first, admin, ids, "paused")
        await order_burst(first, admin)
        await set_status(first, admin, ids[:1] + ids[2:], "active")  # the hanging one: later
        # the healthy receiver holds the first order.cancelled it gets: the sender is mid-POST
        await asyncio.wait_for(healthy.arrived.wait(), 20)
        await first.close()  # the relay and sender stop between claim and record
        crash_at = time.monotonic()
        healthy.gate.set()  # the receiver processes it, but nobody records the success

        second = await aiohttp_client(create_app(config))  # a new instance, same database
        await set_status(second, admin, ids[1:2], "active")  # now the hanging receiver's turn
        events = await feed(second, admin)
        expected = {e["id"] for e in events}
        assert len(expected) >= 6 + 4 + 3  # placements, moves, customer and items

        def everywhere() -> bool:
            return all(
                expected <= {r.event["id"] for r in receiver.accepted()} for receiver in receivers
            )

        await until(everywhere, 60, "every event accepted by every receiver")
        await until(lambda: nothing_pending(second, admin), 60, "no delivery pending")
        for receiver in receivers:
            verify_signatures(receiver.receipts, secrets[receiver.url])
            check_order(receiver.accepted(), crash_at)
        assert len(failing.receipts) > len(failing.accepted())  # it did refuse some
        assert any(not r.accepted for r in hanging.receipts)  # it did time out
        repeated = len(healthy.accepted()) - len({r.event["id"] for r in healthy.accepted()})
        assert repeated >= 1  # the event in flight at the crash came again

        # the deliveries and their attempts are visible: a timeout, a 500, and the successes
        subscriptions = await (await second.get(SUBSCRIPTIONS, headers=admin)).json()
        by_url = {s["url"]: s["id"] for s in subscriptions}
        resp = await second.get(f"{SUBSCRIPTIONS}/{by_url[hanging.url]}/deliveries", headers=admin)
        deliveries = await resp.json()
        errors = [a["error"] for d in deliveries for a in d["attempts"] if a["error"]]
        assert any("timed out" in e for e in errors), errors
        assert all(d["status"] == "delivered" for d in deliveries)
        resp = await second.get(f"{SUBSCRIPTIONS}/{by_url[failing.url]}/deliveries", headers=admin)
        failing_deliveries = await resp.json()
        codes = [a["status_code"] for d in failing_deliveries for a in d["attempts"]]
        assert codes.count(500) == 5
        for delivery in deliveries + failing_deliveries:
            assert delivery["attempt_count"] == len(delivery["attempts"]), delivery
        assert 200 in codes
    finally:
        for receiver in receivers:
            await receiver.stop()


async def test_two_instances_share_the_work_without_double_delivery(
    aiohttp_client: Any, settings: Settings, admin: dict[str, str]
) -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        config = fast(settings)
        one = await aiohttp_client(create_app(config))
        two = await aiohttp_client(create_app(config))
        secret = (await subscribe(one, admin, receiver.url))["secret"]
        await order_burst(one, admin, orders=10)
        expected = {e["id"] for e in await feed(two, admin)}
        await until(
            lambda: expected <= {r.event["id"] for r in receiver.accepted()}, 60, "all delivered"
        )
        await asyncio.sleep(0.5)  # anything sent twice would have arrived by now
        ids = [r.event["id"] for r in receiver.receipts]
        assert len(ids) == len(set(ids)) == len(expected)
        verify_signatures(receiver.receipts, secret)
        check_order(receiver.accepted(), None)
    finally:
        await receiver.stop()


def test_signatures_match_the_specs_published_vector() -> None:
    """The example of the Standard Webhooks repository (libraries/python/tests: sign)."""
    assert (
        signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_a_generated_secret_is_whsec_and_base64() -> None:
    from marketsvc.services.webhook_signing import new_secret

    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
