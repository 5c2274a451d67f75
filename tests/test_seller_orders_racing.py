"""Racing moves of the parts of one order, over the HTTP API, many rounds: the order's status
always ends as its parts say, and stock comes back exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

from marketsvc.db_accessor.seller_orders import derived_status
from tests.ordering import place, stock_of
from tests.sellers_kit import (
    get_order,
    move_part,
    moved,
    new_seller,
    pay,
    seller_item,
)

ROUNDS = 12
SELLERS = 3


async def _world(client, admin, new_customer) -> dict[str, Any]:
    sellers = [await new_seller(client, 1000 + 250 * n, f"S{n}") for n in range(SELLERS)]
    items = [await seller_item(client, admin, s, "2.50", 10_000, f"Item {s}") for s in sellers]
    return {"sellers": sellers, "items": items, "customer": (await new_customer())["id"]}


async def _paid_order(client, admin, w: dict[str, Any]) -> dict[str, Any]:
    order = await place(client, admin, w["customer"], *[(i, 2) for i in w["items"]])
    await pay(client, admin, order["id"])
    return order


def _consistent(order: dict[str, Any]) -> None:
    parts = [p["status"] for p in order["seller_orders"]]
    if order["status"] == "cancelled":
        assert set(parts) <= {"cancelled", "refused"}, order
    else:
        assert order["status"] == derived_status(parts), order


async def test_sellers_shipping_and_delivering_at_once_leave_the_order_in_step(
    client, admin, new_customer, as_seller
) -> None:
    w = await _world(client, admin, new_customer)
    for _ in range(ROUNDS):
        order = await _paid_order(client, admin, w)
        parts = [(as_seller(p["seller_id"]), p["id"]) for p in order["seller_orders"]]
        for headers, part in parts:
            await moved(client, headers, part, "accepted")
        # all ship at once, except the last, which refuses at the same time
        resps = await asyncio.gather(
            *(move_part(client, h, p, "shipped") for h, p in parts[:-1]),
            move_part(client, parts[-1][0], parts[-1][1], "refused"),
        )
        assert [r.status for r in resps] == [200] * SELLERS
        after = await get_order(client, admin, order["id"])
        _consistent(after)
        assert after["status"] == "shipped"
        resps = await asyncio.gather(*(move_part(client, h, p, "delivered") for h, p in parts[:-1]))
        assert [r.status for r in resps] == [200] * (SELLERS - 1)
        after = await get_order(client, admin, order["id"])
        _consistent(after)
        assert after["status"] == "delivered"
    refused_units = ROUNDS * 2
    sold = ROUNDS * 2
    assert [await stock_of(client, i) for i in w["items"]] == (
        [10_000 - sold] * (SELLERS - 1) + [10_000 - sold + refused_units]
    )


async def test_an_admin_cancelling_while_sellers_accept_or_refuse(
    client, admin, new_customer, as_seller
) -> None:
    w = await _world(client, admin, new_customer)
    outcomes = set()
    for n in range(ROUNDS):
        order = await _paid_order(client, admin, w)
        parts = [(as_seller(p["seller_id"]), p["id"]) for p in order["seller_orders"]]
        targets = ["refused" if (k + n) % 2 else "accepted" for k in range(len(parts))]
        moves = [move_part(client, h, p, t) for (h, p), t in zip(parts, targets, strict=True)]
        cancel = client.patch(
            f"/api/v1/orders/{order['id']}", json={"status": "cancelled"}, headers=admin
        )
        *part_resps, cancel_resp = await asyncio.gather(*moves, cancel)
        assert {r.status for r in part_resps} <= {200, 409}
        assert cancel_resp.status in (200, 409), await cancel_resp.text()
        after = await get_order(client, admin, order["id"])
        _consistent(after)
        accepted = [p for p in after["seller_orders"] if p["status"] == "accepted"]
        acceptances = [
            r.status for r, t in zip(part_resps, targets, strict=True) if t == "accepted"
        ]
        if cancel_resp.status == 200:
            assert after["status"] == "cancelled"
            assert not accepted
            assert 200 not in acceptances  # no seller was told "accepted" of a cancelled part
        else:
            assert accepted, after  # refused only because a seller had accepted first
        outcomes.add(cancel_resp.status)
    # every unit of every order not cancelled nor refused is still out of stock, no more
    expected = {i: 10_000 for i in w["items"]}
    orders = await (await client.get("/api/v1/orders", headers=admin)).json()
    for order in orders:
        quantities = {line["item_id"]: line["quantity"] for line in order["lines"]}
        for part in order["seller_orders"]:
            if part["status"] not in ("cancelled", "refused"):
                for item_id in part["item_ids"]:
                    expected[item_id] -= quantities[item_id]
    assert {i: await stock_of(client, i) for i in w["items"]} == expected
    assert outcomes  # (which wins each round is the race's business)
