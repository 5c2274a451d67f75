"""The order lifecycle: legal moves only, cancelling puts stock back exactly once. Past paid an
order moves only through its seller orders (tests/test_seller_orders.py): asking is a 409."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from marketsvc.store.models import ALL_ORDER_STATUSES, ORDER_STATUSES
from tests.ordering import place, stock_of
from tests.sellers_kit import moved

# how to reach each status from pending: the order's own moves, then its one part's
PATHS = {
    "pending": ([], []),
    "paid": (["paid"], []),
    "shipped": (["paid"], ["accepted", "shipped"]),
    "delivered": (["paid"], ["accepted", "shipped", "delivered"]),
    "cancelled": (["cancelled"], []),
}
LEGAL = {
    ("pending", "paid"),
    ("pending", "cancelled"),
    ("paid", "cancelled"),
}


async def _move(client, headers, order_id: int, status: str):
    return await client.patch(
        f"/api/v1/orders/{order_id}", json={"status": status}, headers=headers
    )


async def _order_in(client, admin, customer_id: int, item_id: int, status: str) -> dict:
    order = await place(client, admin, customer_id, (item_id, 1))
    own_moves, part_moves = PATHS[status]
    for step in own_moves:
        resp = await _move(client, admin, order["id"], step)
        assert resp.status == 200, await resp.text()
    for step in part_moves:
        await moved(client, admin, order["seller_orders"][0]["id"], step)
    return order


async def test_the_happy_path(client, admin, new_customer, new_item) -> None:
    customer, item = await new_customer(), await new_item(stock=5)
    order = await place(client, admin, customer["id"], (item["id"], 2))
    resp = await _move(client, admin, order["id"], "paid")
    assert resp.status == 200
    [part] = order["seller_orders"]
    assert await resp.json() == order | {
        "status": "paid",
        "seller_orders": [part | {"status": "awaiting_acceptance"}],
    }
    await moved(client, admin, part["id"], "accepted")
    shipment = {"carrier": "DHL", "tracking_number": "T1"}
    for status in ("shipped", "delivered"):
        await moved(client, admin, part["id"], status, **(shipment if status == "shipped" else {}))
        got = await (await client.get(f"/api/v1/orders/{order['id']}", headers=admin)).json()
        assert got == order | {
            "status": status,
            "seller_orders": [part | {"status": status} | shipment],
        }
    assert await stock_of(client, item["id"]) == 3


@pytest.mark.parametrize(
    ("current", "target"),
    [m for m in itertools.product(ORDER_STATUSES, ALL_ORDER_STATUSES) if m not in LEGAL],
)
async def test_every_illegal_move_is_409(
    client, admin, new_customer, new_item, current, target
) -> None:
    customer, item = await new_customer(), await new_item(stock=5)
    order = await _order_in(client, admin, customer["id"], item["id"], current)
    stock = await stock_of(client, item["id"])
    resp = await _move(client, admin, order["id"], target)
    assert resp.status == 409, await resp.text()
    assert resp.content_type == "application/problem+json"
    got = await (await client.get(f"/api/v1/orders/{order['id']}", headers=admin)).json()
    assert got["status"] == current
    assert await stock_of(client, item["id"]) == stock


@pytest.mark.parametrize("current", ["pending", "paid"])
async def test_cancelling_puts_stock_back(client, admin, new_customer, new_item, current) -> None:
    customer = await new_customer()
    kettle, lamp = await new_item(stock=10), await new_item(stock=4, name="Lamp")
    order = await place(client, admin, customer["id"], (lamp["id"], 4), (kettle["id"], 3))
    if current == "paid":
        assert (await _move(client, admin, order["id"], "paid")).status == 200
    resp = await _move(client, admin, order["id"], "cancelled")
    assert resp.status == 200
    assert (await resp.json())["status"] == "cancelled"
    assert [await stock_of(client, i["id"]) for i in (kettle, lamp)] == [10, 4]


async def test_two_racing_cancels_restore_stock_once(client, admin, new_customer, new_item) -> None:
    customer, item = await new_customer(), await new_item(stock=10)
    for _ in range(5):
        order = await place(client, admin, customer["id"], (item["id"], 4))
        resps = await asyncio.gather(
            *(_move(client, admin, order["id"], "cancelled") for _ in range(2))
        )
        assert sorted(r.status for r in resps) == [200, 409]
        assert await stock_of(client, item["id"]) == 10


async def test_bad_status_is_422_and_unknown_order_404(client, admin) -> None:
    for body in ({"status": "lost"}, {}, {"status": "paid", "customer_id": 2}):
        resp = await client.patch("/api/v1/orders/1", json=body, headers=admin)
        assert resp.status == 422
    assert (await _move(client, admin, 999, "paid")).status == 404
    assert (await _move(client, admin, 999, "pending")).status == 404


async def test_a_customer_may_only_cancel_its_own_pending_orders(
    client, admin, as_customer, new_customer, new_item
) -> None:
    me, other, item = await new_customer(), await new_customer(), await new_item(stock=10)
    headers = as_customer(me["id"])
    pending = await place(client, headers, me["id"], (item["id"], 1))
    paid = await _order_in(client, admin, me["id"], item["id"], "paid")
    delivered = await _order_in(client, admin, me["id"], item["id"], "delivered")
    theirs = await place(client, admin, other["id"], (item["id"], 1))
    assert (await _move(client, headers, pending["id"], "paid")).status == 403
    assert (await _move(client, headers, paid["id"], "cancelled")).status == 403
    assert (await _move(client, headers, delivered["id"], "cancelled")).status == 409
    assert (await _move(client, headers, theirs["id"], "cancelled")).status == 404
    assert (await _move(client, headers, theirs["id"], "paid")).status == 404
    resp = await _move(client, headers, pending["id"], "cancelled")
    assert resp.status == 200
    assert await stock_of(client, item["id"]) == 10 - 3


async def test_a_customer_orders_only_for_itself(
    client, as_customer, new_customer, new_item
) -> None:
    me, other, item = await new_customer(), await new_customer(), await new_item(stock=10)
    body = {"customer_id": other["id"], "lines": [{"item_id": item["id"], "quantity": 1}]}
    resp = await client.post("/api/v1/orders", json=body, headers=as_customer(me["id"]))
    assert resp.status == 403
    body["customer_id"] = 999  # no such customer: still 403, nothing revealed
    resp = await client.post("/api/v1/orders", json=body, headers=as_customer(me["id"]))
    assert resp.status == 403
    assert await stock_of(client, item["id"]) == 10
