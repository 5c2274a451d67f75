"""One subscription's broken receiver does not hold up the others' deliveries: a sender gives a
subscription at most half its slots, and one whose last attempt failed one POST at a time until
a POST succeeds (``webhook_delivery.SUBSCRIPTION_IN_FLIGHT``, ``FAILING_IN_FLIGHT``; the relay's
side: ``test_webhook_relay_leases``)."""

from __future__ import annotations

from typing import Any

from marketsvc.app import create_app
from marketsvc.services import webhook_delivery
from marketsvc.settings import Settings
from tests.test_webhooks_delivery import fast, subscribe, until
from tests.webhook_receivers import Receiver

ORDERS = 120


async def test_a_receiver_timing_out_does_not_delay_a_healthy_one(
    aiohttp_client: Any, settings: Settings, admin: dict[str, str]
) -> None:
    hanging = Receiver(hang_first=10**6, hang_s=4.0)  # every POST outlasts the 2 s timeout
    healthy = Receiver()
    for receiver in (hanging, healthy):
        await receiver.start()
    try:
        client = await aiohttp_client(create_app(fast(settings, webhook_timeout_seconds=2.0)))
        await subscribe(client, admin, hanging.url)
        await subscribe(client, admin, healthy.url)
        customer = {
            "name": "Ada",
            "email": "ada@example.com",
            "address": {
                "street": "1 High St",
                "city": "Leeds",
                "post_code": "LS1",
                "country": "GB",
            },
        }
        resp = await client.post("/api/v1/customers", json=customer, headers=admin)
        customer_id = (await resp.json())["id"]
        item = {"name": "Kettle", "price": "10.00", "stock": 10_000}
        item_id = (await (await client.post("/api/v1/items", json=item, headers=admin)).json())[
            "id"
        ]
        order = {"customer_id": customer_id, "lines": [{"item_id": item_id, "quantity": 1}]}
        for _ in range(ORDERS):
            resp = await client.post("/api/v1/orders", json=order, headers=admin)
            assert resp.status == 201, await resp.text()

        def placements_at_healthy() -> int:
            return sum(r.event["type"].endswith("order.placed.v1") for r in healthy.receipts)

        # every event is an order of its own (a subject of its own): none waits for another
        await until(lambda: placements_at_healthy() == ORDERS, 60, "every placement at healthy")
        # Sent in turn from one queue, the healthy receiver's deliveries waited behind the
        # hanging one's timeouts, 50 at a time: it had about as many POSTs by then (327 for 300
        # orders). Now the hanging one had its first 25 at once, then one at a time.
        assert len(hanging.receipts) < ORDERS // 2, len(hanging.receipts)
        assert hanging.most_open <= webhook_delivery.IN_FLIGHT // 2
    finally:
        for receiver in (hanging, healthy):
            await receiver.stop()
