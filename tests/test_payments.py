"""Payment results come in exactly once: POST /api/v1/payments/events, signed per Standard
Webhooks by the ``standardwebhooks`` package as a payment provider would, on both databases."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from marketsvc.settings import Settings
from marketsvc.store.models import PaymentInbox
from marketsvc.web.keys import DATABASE
from tests.conftest import TEST_SECRET
from tests.events_feed import feed, short_types
from tests.ordering import place, stock_of

ROUTE = "/api/v1/payments/events"


@pytest.fixture
def secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def settings(database_url: str, secret: str) -> Settings:
    return Settings(
        database_url=database_url,
        jwt_secret=TEST_SECRET,
        pool_size=5,
        max_overflow=5,
        payments_webhook_secret=secret,
    )


def signed(
    secret: str, body: bytes, msg_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    """The headers a Standard Webhooks sender puts on ``body``."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
        "Content-Type": "application/json",
    }


def event(type_: str, order_id: int, payment_id: str = "pay_1", **extra: Any) -> bytes:
    data = {"order_id": order_id, "payment_id": payment_id} | extra
    return orjson.dumps({"type": type_, "data": data})


async def deliver(client, secret: str, body: bytes, msg_id: str | None = None, **kw: Any):
    return await client.post(ROUTE, data=body, headers=signed(secret, body, msg_id, **kw))


async def order_status(client, admin, order_id: int) -> str:
    resp = await client.get(f"/api/v1/orders/{order_id}", headers=admin)
    return (await resp.json())["status"]


async def inbox_rows(client) -> int:
    async with client.server.app[DATABASE].read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(PaymentInbox)))


async def order_events(client, admin, order_id: int) -> list[str]:
    return short_types(await feed(client, admin, subject=f"orders/{order_id}"))


@pytest.fixture
async def pending(client, admin, new_customer, new_item) -> dict[str, Any]:
    """A pending order of 3 units of an item stocked 10 (7 left)."""
    customer, item = await new_customer(), await new_item(stock=10)
    order = await place(client, admin, customer["id"], (item["id"], 3))
    return order | {"item_id": item["id"]}


async def test_success_pays_a_pending_order_once(client, admin, secret, pending) -> None:
    body = event("payment.succeeded", pending["id"], amount="30.00")
    first = await deliver(client, secret, body, "msg_first")
    again = await deliver(client, secret, body, "msg_first")

    assert first.status == 200, await first.text()
    answer = await first.json()
    assert answer["outcome"] == "applied"
    assert answer["duplicate"] is False
    assert answer["webhook_id"] == "msg_first"
    assert answer["order_id"] == pending["id"]
    assert again.status == 200
    assert await again.json() == answer | {"duplicate": True}
    assert await order_status(client, admin, pending["id"]) == "paid"
    assert await order_events(client, admin, pending["id"]) == ["order.placed", "order.paid"]
    assert await inbox_rows(client) == 1


async def test_failure_cancels_and_restores_stock(client, admin, secret, pending) -> None:
    resp = await deliver(client, secret, event("payment.failed", pending["id"]))

    assert resp.status == 200, await resp.text()
    assert (await resp.json())["outcome"] == "applied"
    assert await order_status(client, admin, pending["id"]) == "cancelled"
    assert await stock_of(client, pending["item_id"]) == 10
    events = await feed(client, admin, subject=f"orders/{pending['id']}")
    assert short_types(events) == ["order.placed", "order.cancelled"]
    assert events[1]["data"]["cancelled_by"] == {"role": "payments", "subject": "pay_1"}
    assert events[1]["data"]["stock_restored"] is True


async def test_concurrent_duplicates_apply_once(client, admin, secret, pending) -> None:
    """Twenty deliveries of one webhook-id at once: one applies (one cancel, the stock given
    back once), the others are answered as duplicates."""
    body = event("payment.failed", pending["id"])
    headers = signed(secret, body, "msg_race")
    answers = await asyncio.gather(
        *(client.post(ROUTE, data=body, headers=headers) for _ in range(20))
    )

    assert [r.status for r in answers] == [200] * 20
    bodies = [await r.json() for r in answers]
    assert sorted(b["duplicate"] for b in bodies) == [False] + [True] * 19
    assert {b["outcome"] for b in bodies} == {"applied"}
    assert await stock_of(client, pending["item_id"]) == 10
    assert await order_events(client, admin, pending["id"]) == ["order.placed", "order.cancelled"]
    assert await inbox_rows(client) == 1


async def test_concurrent_success_and_failure_of_one_order(client, admin, secret, pending) -> None:
    """A success and a failure (different ids) racing on one pending order: whichever runs
    first moves it; the other finds it moved and never undoes it."""
    paid, failed = event("payment.succeeded", pending["id"]), event("payment.failed", pending["id"])
    answers = await asyncio.gather(deliver(client, secret, paid), deliver(client, secret, failed))

    outcomes = sorted([(await r.json())["outcome"] for r in answers])
    status = await order_status(client, admin, pending["id"])
    types = await order_events(client, admin, pending["id"])
    if status == "paid":
        assert outcomes == ["applied", "ignored"]
        assert types == ["order.placed", "order.paid"]
    else:
        assert status == "cancelled"
        assert outcomes == ["applied", "conflict"]
        assert types == ["order.placed", "order.cancelled", "order.payment_conflict"]


@pytest.mark.parametrize(
    "tamper",
    ["signature", "stale", "future", "missing", "malformed", "other_secret", "body"],
)
async def test_unsigned_deliveries_are_401_and_change_nothing(
    client, admin, secret, pending, tamper: str
) -> None:
    body = event("payment.succeeded", pending["id"])
    headers = signed(secret, body, "msg_forged")
    sent = body
    if tamper == "signature":
        headers["webhook-signature"] = "v1," + base64.b64encode(b"x" * 32).decode()
    elif tamper == "stale":
        headers = signed(secret, body, "msg_forged", datetime.now(tz=UTC) - timedelta(minutes=6))
    elif tamper == "future":
        headers = signed(secret, body, "msg_forged", datetime.now(tz=UTC) + timedelta(minutes=6))
    elif tamper == "missing":
        del headers["webhook-signature"]
    elif tamper == "malformed":
        headers["webhook-signature"] = "v1"
    elif tamper == "other_secret":
        other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        headers = signed(other, body, "msg_forged")
    else:
        sent = event("payment.succeeded", pending["id"], payment_id="pay_forged")

    resp = await client.post(ROUTE, data=sent, headers=headers)

    assert resp.status == 401, await resp.text()
    assert resp.content_type == "application/problem+json"
    assert await order_status(client, admin, pending["id"]) == "pending"
    assert await inbox_rows(client) == 0
    assert await order_events(client, admin, pending["id"]) == ["order.placed"]
    # the refused id was not taken: the genuine delivery of it applies
    genuine = await deliver(client, secret, body, "msg_forged")
    assert (await genuine.json())["outcome"] == "applied"


async def test_success_after_cancel_is_a_conflict(client, admin, secret, pending) -> None:
    cancel = await client.patch(
        f"/api/v1/orders/{pending['id']}", json={"status": "cancelled"}, headers=admin
    )
    assert cancel.status == 200
    body = event("payment.succeeded", pending["id"], payment_id="pay_late", amount="30.00")
    resp = await deliver(client, secret, body, "msg_late")

    assert resp.status == 200, await resp.text()
    assert (await resp.json())["outcome"] == "conflict"
    assert await order_status(client, admin, pending["id"]) == "cancelled"
    assert await stock_of(client, pending["item_id"]) == 10
    events = await feed(client, admin, subject=f"orders/{pending['id']}")
    assert short_types(events) == ["order.placed", "order.cancelled", "order.payment_conflict"]
    assert events[2]["data"]["status"] == "cancelled"
    assert events[2]["data"]["payment"] == {
        "webhook_id": "msg_late",
        "payment_id": "pay_late",
        "amount": "30.00",
    }
    repeat = await deliver(client, secret, body, "msg_late")
    assert (await repeat.json())["duplicate"] is True
    assert len(await order_events(client, admin, pending["id"])) == 3


async def test_failure_never_undoes_a_payment(client, admin, secret, pending) -> None:
    await deliver(client, secret, event("payment.succeeded", pending["id"]))
    resp = await deliver(client, secret, event("payment.failed", pending["id"]))

    assert (await resp.json())["outcome"] == "ignored"
    assert await order_status(client, admin, pending["id"]) == "paid"
    assert await order_events(client, admin, pending["id"]) == ["order.placed", "order.paid"]


async def test_unknown_order_is_recorded_and_answered(client, admin, secret) -> None:
    resp = await deliver(client, secret, event("payment.succeeded", 987654))

    assert resp.status == 200, await resp.text()
    assert (await resp.json())["outcome"] == "unknown_order"
    assert await inbox_rows(client) == 1
    assert await feed(client, admin) == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "payment.refunded", "data": {"order_id": 1, "payment_id": "p"}}',
        b'{"type": "payment.succeeded", "data": {"order_id": "1", "payment_id": "p"}}',
        b'{"type": "payment.succeeded", "data": {"order_id": 1, "payment_id": ""}}',
        b'{"type": "payment.succeeded", "data": {"order_id": 1, "payment_id": "p", "amount": 1}}',
        b'{"type": "payment.succeeded"}',
    ],
)
async def test_signed_but_invalid_is_422(client, secret, body: bytes) -> None:
    resp = await deliver(client, secret, body)

    assert resp.status == 422, await resp.text()
    assert await inbox_rows(client) == 0


async def test_unconfigured_payments_are_503(aiohttp_client, database_url, secret) -> None:
    from marketsvc.app import create_app

    client = await aiohttp_client(create_app(Settings(database_url=database_url)))
    body = event("payment.succeeded", 1)
    resp = await client.post(ROUTE, data=body, headers=signed(secret, body))

    assert resp.status == 503
    assert "payments not configured" in (await resp.json())["detail"]
