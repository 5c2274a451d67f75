"""Sellers over HTTP: admins manage them; a seller adds and edits its own items only; a
suspended seller's token reads but does not change, and its items cannot be ordered."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from marketsvc.web.auth import Principal
from tests.api import created
from tests.links import next_query

Headers = dict[str, str]


@pytest.fixture
def as_seller(tokens) -> Callable[[int], Headers]:
    def headers(seller_id: int) -> Headers:
        return {"Authorization": f"Bearer {tokens.issue(str(seller_id), 'seller')}"}

    return headers


@pytest.fixture
def new_seller(client, admin) -> Callable[..., Any]:
    async def make(name: str = "Shop", commission_bps: int = 1000, **extra: Any) -> int:
        body = {"name": name, "commission_bps": commission_bps} | extra
        resp = await client.post("/api/v1/sellers", json=body, headers=admin)
        assert resp.status == 201, await resp.text()
        return (await resp.json())["id"]

    return make


async def add_item(client, headers: Headers, **fields: Any) -> dict[str, Any]:
    body = {"name": "Kettle", "price": "10.00", "stock": 10} | fields
    resp = await client.post("/api/v1/items", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


def test_a_seller_is_never_taken_for_a_customer() -> None:
    seller = Principal(subject="3", role="seller")
    assert (seller.seller_id, seller.customer_id, seller.is_admin) == (3, None, False)
    assert Principal(subject="3", role="customer").seller_id is None
    assert Principal(subject="admin", role="admin").seller_id is None


async def test_admin_creates_reads_lists_and_changes_sellers(client, admin) -> None:
    resp = await client.post(
        "/api/v1/sellers", json={"name": " Hopper Kettles ", "commission_bps": 1250}, headers=admin
    )
    seller = await created(client, admin, resp, "/api/v1/sellers")
    assert seller["name"] == "Hopper Kettles"
    assert (seller["status"], seller["commission_bps"]) == ("active", 1250)
    assert seller["created_at"].endswith("Z")
    second = await client.post(
        "/api/v1/sellers",
        json={"name": "Quiet", "commission_bps": 0, "status": "suspended"},
        headers=admin,
    )
    quiet = await second.json()

    listed = await (await client.get("/api/v1/sellers", headers=admin)).json()
    assert [s["id"] for s in listed] == [1, seller["id"], quiet["id"]]  # 1: the default seller
    assert listed[0]["name"] == "Marketplace"
    suspended = await client.get("/api/v1/sellers?status=suspended", headers=admin)
    assert [s["id"] for s in await suspended.json()] == [quiet["id"]]
    paged, query = [], "limit=1"
    while query is not None:
        page = await client.get(f"/api/v1/sellers?{query}", headers=admin)
        paged += [s["id"] for s in await page.json()]
        query = next_query(page, "/api/v1/sellers")
    assert paged == [1, seller["id"], quiet["id"]]

    change = {"commission_bps": 900, "status": "suspended", "name": "Hopper & Co"}
    resp = await client.patch(f"/api/v1/sellers/{seller['id']}", json=change, headers=admin)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == seller | {"commission_bps": 900, "status": "suspended"} | {
        "name": "Hopper & Co"
    }
    missing = await client.patch("/api/v1/sellers/999", json={"status": "active"}, headers=admin)
    assert missing.status == 404
    assert (await client.get("/api/v1/sellers/999", headers=admin)).status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "commission_bps": 10_001}, "commission_bps"),
        ({"name": "x", "commission_bps": -1}, "commission_bps"),
        ({"name": "x", "commission_bps": 1.5}, "commission_bps"),
        ({"name": "x"}, "commission_bps"),
        ({"name": " ", "commission_bps": 1}, "name"),
        ({"name": "x", "commission_bps": 1, "status": "closed"}, "status"),
    ],
)
async def test_bad_sellers_are_422(client, admin, body, field) -> None:
    resp = await client.post("/api/v1/sellers", json=body, headers=admin)
    assert resp.status == 422
    assert f"body.{field}" in (await resp.json())["errors"]


async def test_a_seller_reads_itself_and_no_other(client, admin, as_seller, new_seller) -> None:
    mine, theirs = await new_seller("Mine"), await new_seller("Theirs")
    own = await client.get(f"/api/v1/sellers/{mine}", headers=as_seller(mine))
    assert (own.status, (await own.json())["name"]) == (200, "Mine")
    other = await client.get(f"/api/v1/sellers/{theirs}", headers=as_seller(mine))
    assert other.status == 404
    assert (await client.get("/api/v1/sellers", headers=as_seller(mine))).status == 403
    change = await client.patch(
        f"/api/v1/sellers/{mine}", json={"commission_bps": 0}, headers=as_seller(mine)
    )
    assert change.status == 403


async def test_a_seller_adds_items_to_its_own_catalogue(
    client, admin, as_seller, new_seller
) -> None:
    mine, theirs = await new_seller(), await new_seller()
    item = await add_item(client, as_seller(mine))
    assert item["seller_id"] == mine
    assert (await add_item(client, as_seller(mine), seller_id=mine))["seller_id"] == mine
    foreign = await client.post(
        "/api/v1/items",
        json={"name": "Lamp", "price": "1.00", "stock": 1, "seller_id": theirs},
        headers=as_seller(mine),
    )
    assert foreign.status == 403
    assert "body.seller_id" in (await foreign.json())["errors"]
    ghost = await client.post(
        "/api/v1/items", json={"name": "Lamp", "price": "1.00", "stock": 1}, headers=as_seller(999)
    )
    assert ghost.status == 403
    assert (await ghost.json())["detail"] == "seller 999, whom this token names, does not exist"
    assert (await add_item(client, admin))["seller_id"] == 1  # an admin's default
    assert (await add_item(client, admin, seller_id=theirs))["seller_id"] == theirs
    unknown = await client.post(
        "/api/v1/items",
        json={"name": "Lamp", "price": "1.00", "stock": 1, "seller_id": 999},
        headers=admin,
    )
    assert unknown.status == 422
    assert (await unknown.json())["errors"] == {"body.seller_id": ["Seller 999 does not exist."]}
    ours = await (await client.get(f"/api/v1/items?seller_id={mine}")).json()
    assert [i["id"] for i in ours] == [item["id"], item["id"] + 1]


async def test_a_seller_edits_its_own_items_price_stock_and_description(
    client, admin, as_seller, new_seller
) -> None:
    mine, theirs = await new_seller(), await new_seller()
    item = await add_item(client, as_seller(mine))
    other = await add_item(client, as_seller(theirs))
    change = {"price": "12.50", "stock": 3, "description": "Boils fast"}
    resp = await client.patch(f"/api/v1/items/{item['id']}", json=change, headers=as_seller(mine))
    assert resp.status == 200, await resp.text()
    assert await resp.json() == item | change
    assert "ETag" in resp.headers

    rename = await client.patch(
        f"/api/v1/items/{item['id']}", json={"name": "Pot", "stock": 1}, headers=as_seller(mine)
    )
    assert rename.status == 403
    assert (await rename.json())["errors"] == {"body.name": ["Only an admin changes this."]}
    foreign = await client.patch(
        f"/api/v1/items/{other['id']}", json={"stock": 0}, headers=as_seller(mine)
    )
    assert foreign.status == 404
    assert (await foreign.json())["detail"] == f"item {other['id']} does not exist"
    unchanged = await client.get(f"/api/v1/items/{other['id']}")
    assert await unchanged.json() == other
    assert (await (await client.get(f"/api/v1/items/{item['id']}")).json())["name"] == "Kettle"
    by_admin = await client.patch(
        f"/api/v1/items/{other['id']}", json={"name": "Pot"}, headers=admin
    )
    assert (await by_admin.json())["name"] == "Pot"


async def test_a_suspended_sellers_token_reads_but_does_not_change(
    client, admin, as_seller, new_seller
) -> None:
    seller = await new_seller()
    item = await add_item(client, as_seller(seller))
    suspend = await client.patch(
        f"/api/v1/sellers/{seller}", json={"status": "suspended"}, headers=admin
    )
    assert suspend.status == 200
    itself = await client.get(f"/api/v1/sellers/{seller}", headers=as_seller(seller))
    assert (await itself.json())["status"] == "suspended"
    adding = await client.post(
        "/api/v1/items",
        json={"name": "Lamp", "price": "1.00", "stock": 1},
        headers=as_seller(seller),
    )
    editing = await client.patch(
        f"/api/v1/items/{item['id']}", json={"stock": 0}, headers=as_seller(seller)
    )
    for refused in (adding, editing):
        assert refused.status == 403
        assert refused.content_type == "application/problem+json"
        assert "suspended" in (await refused.json())["detail"]
    assert await (await client.get(f"/api/v1/items/{item['id']}")).json() == item
    listed = await (await client.get(f"/api/v1/items?seller_id={seller}")).json()
    assert listed == [item]
    await client.patch(f"/api/v1/sellers/{seller}", json={"status": "active"}, headers=admin)
    again = await client.patch(
        f"/api/v1/items/{item['id']}", json={"stock": 0}, headers=as_seller(seller)
    )
    assert again.status == 200


async def test_a_suspended_sellers_items_cannot_be_ordered(
    client, admin, as_seller, new_seller, new_customer
) -> None:
    open_shop, closed_shop = await new_seller(), await new_seller()
    kept = await add_item(client, as_seller(open_shop), stock=5)
    closed = [await add_item(client, as_seller(closed_shop), stock=5) for _ in range(2)]
    customer = (await new_customer())["id"]
    await client.patch(
        f"/api/v1/sellers/{closed_shop}", json={"status": "suspended"}, headers=admin
    )
    lines = [{"item_id": i["id"], "quantity": 2} for i in (kept, *closed)]
    order = {"customer_id": customer, "lines": lines}
    refused = await client.post("/api/v1/orders", json=order, headers=admin)
    assert refused.status == 409
    problem = await refused.json()
    ids = [closed[0]["id"], closed[1]["id"]]
    assert problem["detail"] == f"the seller of items {ids[0]}, {ids[1]} is suspended"
    assert problem["errors"] == {"body.lines": [f"Item {i}: its seller is suspended." for i in ids]}
    for item in (kept, *closed):  # nothing taken, nothing placed
        assert (await (await client.get(f"/api/v1/items/{item['id']}")).json())["stock"] == 5
    assert await (await client.get("/api/v1/orders", headers=admin)).json() == []

    alone = {"customer_id": customer, "lines": lines[:1]}
    assert (await client.post("/api/v1/orders", json=alone, headers=admin)).status == 201
    await client.patch(f"/api/v1/sellers/{closed_shop}", json={"status": "active"}, headers=admin)
    placed = await client.post("/api/v1/orders", json=order, headers=admin)
    assert placed.status == 201, await placed.text()


async def test_items_filter_by_seller_with_search_sorts_and_cursors(
    client, admin, new_seller
) -> None:
    first, second = await new_seller(), await new_seller()
    prices = ["5.00", "3.00", "9.00", "1.00", "7.00", "2.00"]
    made = [
        await add_item(client, admin, name=f"Blue kettle {n}", price=price, seller_id=seller)
        for n, (price, seller) in enumerate(zip(prices, [first, second] * 3, strict=True))
    ]
    mine = [i for i in made if i["seller_id"] == first]
    everything = await (await client.get(f"/api/v1/items?seller_id={first}")).json()
    assert everything == mine
    for extra, expected in [
        ("&sort=price", sorted(mine, key=lambda i: float(i["price"]))),
        ("&q=kettle&sort=-price", sorted(mine, key=lambda i: -float(i["price"]))),
        ("&q=kettle", None),  # relevance: every one of the seller's, in some order
        ("&after_id=0", mine),
    ]:
        paged, query = [], f"seller_id={first}&limit=1{extra}"
        while query is not None:
            page = await client.get(f"/api/v1/items?{query}")
            assert page.status == 200, await page.text()
            paged += await page.json()
            query = next_query(page)
        if expected is None:
            assert sorted(i["id"] for i in paged) == [i["id"] for i in mine]
        else:
            assert paged == expected
    page = await client.get(f"/api/v1/items?seller_id={first}&limit=1")
    cursor = next_query(page).split("cursor=")[1]
    crossed = await client.get(f"/api/v1/items?seller_id={second}&limit=1&cursor={cursor}")
    assert crossed.status == 400  # a cursor is bound to its seller
    assert await (await client.get("/api/v1/items?seller_id=999")).json() == []


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", str(2**63), ""])
async def test_a_bad_seller_filter_is_422(client, value) -> None:
    resp = await client.get(f"/api/v1/items?seller_id={value}")
    assert resp.status == 422
    assert "query.seller_id" in (await resp.json())["errors"]


async def test_a_suspension_racing_placements_leaves_stock_and_orders_in_step(
    client, admin, as_seller, new_seller, new_customer
) -> None:
    """Eight buyers keep ordering one seller's item while an admin suspends the seller: each
    placement is placed (its stock taken) or refused with nothing taken, and every placement
    sent after the suspension has answered is refused."""
    seller = await new_seller()
    item = await add_item(client, as_seller(seller), stock=1000)
    customer = (await new_customer())["id"]
    order = {"customer_id": customer, "lines": [{"item_id": item["id"], "quantity": 2}]}
    placed_some, suspended = asyncio.Event(), asyncio.Event()
    results: list[tuple[bool, int]] = []  # (sent after the suspension answered, status)

    async def buyer() -> None:
        for _ in range(60):
            after = suspended.is_set()
            resp = await client.post("/api/v1/orders", json=order, headers=admin)
            await resp.read()
            results.append((after, resp.status))
            if resp.status == 201 and sum(s == 201 for _, s in results) >= 10:
                placed_some.set()
            if after:
                return

    async def suspend() -> None:
        await placed_some.wait()
        resp = await client.patch(
            f"/api/v1/sellers/{seller}", json={"status": "suspended"}, headers=admin
        )
        assert resp.status == 200
        suspended.set()

    await asyncio.gather(*(buyer() for _ in range(8)), suspend())
    counted = Counter(status for _, status in results)
    assert set(counted) == {201, 409}, counted
    assert {status for after, status in results if after} == {409}
    stock = (await (await client.get(f"/api/v1/items/{item['id']}")).json())["stock"]
    orders = await (await client.get("/api/v1/orders", headers=admin)).json()
    assert len(orders) == counted[201]
    assert stock == 1000 - 2 * counted[201]
