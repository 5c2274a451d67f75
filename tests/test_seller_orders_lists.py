"""Seller order lists: a seller streams only its own parts, an admin any seller's; filters by
status and placement time; keyset pages; a customer's order lists show the parts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.links import next_link
from tests.ordering import place
from tests.sellers_kit import moved, new_seller, pay, seller_item


async def _world(client, admin, new_customer) -> dict:
    a, b = await new_seller(client, 500, "A"), await new_seller(client, 900, "B")
    item_a = await seller_item(client, admin, a, "1.00", 1000, "A's")
    item_b = await seller_item(client, admin, b, "2.00", 1000, "B's")
    customer = (await new_customer())["id"]
    orders = [await place(client, admin, customer, (item_a, 1), (item_b, n + 1)) for n in range(5)]
    for order in orders[:3]:
        await pay(client, admin, order["id"])
    parts = {
        seller: [p["id"] for o in orders for p in o["seller_orders"] if p["seller_id"] == seller]
        for seller in (a, b)
    }
    await moved(client, admin, parts[a][0], "accepted")
    return {"a": a, "b": b, "orders": orders, "parts": parts, "customer": customer}


async def _ids(client, headers, **params) -> list[int]:
    resp = await client.get("/api/v1/seller-orders", params=params, headers=headers)
    assert resp.status == 200, await resp.text()
    return [p["id"] for p in await resp.json()]


async def test_a_seller_sees_only_its_own_an_admin_any(
    client, admin, new_customer, as_seller
) -> None:
    w = await _world(client, admin, new_customer)
    a, b = w["a"], w["b"]
    assert await _ids(client, as_seller(a)) == w["parts"][a]
    assert await _ids(client, as_seller(b)) == w["parts"][b]
    assert await _ids(client, as_seller(a), seller_id=b) == []  # not another's
    assert await _ids(client, admin, seller_id=b) == w["parts"][b]
    assert sorted(await _ids(client, admin)) == sorted(w["parts"][a] + w["parts"][b])
    assert await _ids(client, as_seller(a), status="accepted") == w["parts"][a][:1]
    assert await _ids(client, as_seller(a), status="awaiting_acceptance") == w["parts"][a][1:3]
    assert await _ids(client, as_seller(b), status="pending") == w["parts"][b][3:]
    now = datetime.now(UTC)
    assert (
        await _ids(client, as_seller(a), placed_before=(now - timedelta(hours=1)).isoformat()) == []
    )
    assert (
        await _ids(client, as_seller(a), placed_after=(now - timedelta(hours=1)).isoformat())
        == (w["parts"][a])
    )
    resp = await client.get("/api/v1/seller-orders", headers=as_seller(a))
    [first, *_] = await resp.json()
    assert first["lines"][0]["commission_bps"] == 500


async def test_pages_follow_the_keyset(client, admin, new_customer, as_seller) -> None:
    w = await _world(client, admin, new_customer)
    seen, url = [], "/api/v1/seller-orders?limit=2"
    while url is not None:
        resp = await client.get(url, headers=as_seller(w["b"]))
        assert resp.status == 200
        seen += [p["id"] for p in await resp.json()]
        url = next_link(resp)
    assert seen == w["parts"][w["b"]]


async def test_a_customer_order_list_shows_the_parts(
    client, admin, new_customer, as_customer
) -> None:
    w = await _world(client, admin, new_customer)
    resp = await client.get(
        f"/api/v1/customers/{w['customer']}/orders", headers=as_customer(w["customer"])
    )
    listed = await resp.json()
    assert [o["seller_orders"] for o in listed] == [
        (await (await client.get(f"/api/v1/orders/{o['id']}", headers=admin)).json())[
            "seller_orders"
        ]
        for o in w["orders"]
    ]
    assert {len(o["seller_orders"]) for o in listed} == {2}
