"""Order lists: streamed with their lines, filtered, scoped to the caller, without N+1 queries."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime

import pytest
from sqlalchemy import event

from marketsvc.app import create_app
from marketsvc.store.models import ORDER_STATUSES
from marketsvc.store.seed import SeedPlan, seed
from marketsvc.web.keys import DATABASE
from tests.ordering import place


@pytest.fixture
async def seeded(aiohttp_client, settings):
    """An app over 400 seeded orders (3 lines each), streaming 50 rows per chunk."""
    plan = SeedPlan(customers=8, items=12, orders=400, users=0, random_seed=7)
    await seed(settings, plan, progress=False)
    app = create_app(dataclasses.replace(settings, stream_chunk_rows=50))
    return app, await aiohttp_client(app)


async def _all(client, headers, query: str = "") -> list[dict]:
    resp = await client.get(f"/api/v1/orders{query}", headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_seed_makes_orders_in_every_status(seeded, admin) -> None:
    _, client = seeded
    orders = await _all(client, admin)
    assert len(orders) == 400
    assert {o["status"] for o in orders} == set(ORDER_STATUSES)
    assert all(len(o["lines"]) == 3 for o in orders)
    assert [o["id"] for o in orders] == sorted(o["id"] for o in orders)


async def test_lines_come_in_a_bounded_number_of_queries(seeded, admin) -> None:
    app, client = seeded
    statements: list[str] = []
    engine = app[DATABASE].engine.sync_engine
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    orders = await _all(client, admin)
    chunks = math.ceil(len(orders) / 50)
    line_queries = [s for s in statements if "FROM order_lines" in s]
    assert len(line_queries) == chunks
    assert len(statements) <= 2 * chunks + 2  # orders cursor, a lines query per chunk, BEGIN


async def test_ndjson_and_paging(seeded, admin) -> None:
    _, client = seeded
    everything = await _all(client, admin)
    resp = await client.get(
        "/api/v1/orders?after_id=100&limit=20", headers=admin | {"Accept": "application/x-ndjson"}
    )
    page = [json.loads(line) for line in (await resp.text()).splitlines()]
    assert page == [o for o in everything if o["id"] > 100][:20]


async def test_filters_select_what_they_say(seeded, admin) -> None:
    _, client = seeded
    everything = await _all(client, admin)
    after, before = "2026-03-01T00:00:00Z", "2026-06-01T00:00:00+00:00"
    placed = [(o, datetime.fromisoformat(o["placed_at"])) for o in everything]
    low, high = datetime.fromisoformat(after), datetime.fromisoformat(before)
    query = f"?customer_id=3&status=paid&placed_after={after}&placed_before=2026-06-01T00:00:00"
    expected = [
        o
        for o, at in placed
        if o["customer_id"] == 3 and o["status"] == "paid" and low <= at < high
    ]
    assert expected
    assert await _all(client, admin, query) == expected
    assert await _all(client, admin, "?status=cancelled") == [
        o for o in everything if o["status"] == "cancelled"
    ]


async def test_placed_after_is_inclusive_and_placed_before_exclusive(
    client, admin, new_customer, new_item
) -> None:
    customer, item = await new_customer(), await new_item()
    order = await place(client, admin, customer["id"], (item["id"], 1))
    at = order["placed_at"]
    assert [o["id"] for o in await _all(client, admin, f"?placed_after={at}")] == [order["id"]]
    assert await _all(client, admin, f"?placed_before={at}") == []


async def test_customer_orders_path_streams_that_customers_orders(seeded, admin) -> None:
    _, client = seeded
    everything = await _all(client, admin)
    resp = await client.get("/api/v1/customers/2/orders?status=shipped", headers=admin)
    assert await resp.json() == [
        o for o in everything if o["customer_id"] == 2 and o["status"] == "shipped"
    ]
    assert (await client.get("/api/v1/customers/999/orders", headers=admin)).status == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?status=lost", "status"),
        ("?placed_after=yesterday", "placed_after"),
        ("?placed_before=2026-13-01", "placed_before"),
        ("?customer_id=abc", "customer_id"),
        ("?customer_id=0", "customer_id"),
        ("?limit=0", "limit"),
        ("?after_id=-1", "after_id"),
        ("?status=paid&status=shipped", "status"),
        ("?colour=red", "colour"),
        ("?placed_after=9999-12-31T23:59:59-01:00", "placed_after"),
    ],
)
async def test_malformed_filter_is_422(client, admin, query, field) -> None:
    resp = await client.get(f"/api/v1/orders{query}", headers=admin)
    assert resp.status == 422
    assert f"query.{field}" in (await resp.json())["errors"]
    resp = await client.get(f"/api/v1/customers/1/orders{query}", headers=admin)
    assert resp.status == 422


async def test_a_customer_sees_only_its_own_orders(seeded, admin, as_customer) -> None:
    _, client = seeded
    everything = await _all(client, admin)
    mine = [o for o in everything if o["customer_id"] == 4]
    theirs = next(o for o in everything if o["customer_id"] != 4)
    me = as_customer(4)
    assert await _all(client, me) == mine
    assert await _all(client, me, "?customer_id=4") == mine
    assert await _all(client, me, f"?customer_id={theirs['customer_id']}") == []
    assert await (await client.get("/api/v1/customers/4/orders", headers=me)).json() == mine
    other = await client.get(f"/api/v1/customers/{theirs['customer_id']}/orders", headers=me)
    assert other.status == 404
    assert (await client.get(f"/api/v1/orders/{mine[0]['id']}", headers=me)).status == 200
    for path in (f"/api/v1/orders/{theirs['id']}", f"/api/v1/orders/{theirs['id']}/total"):
        assert (await client.get(path, headers=me)).status == 404


async def test_extreme_but_valid_dates_filter(client, admin, new_customer, new_item) -> None:
    customer, item = await new_customer(), await new_item()
    order = await place(client, admin, customer["id"], (item["id"], 1))
    early, late = "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"
    assert await _all(client, admin, f"?placed_after={late}") == []
    assert await _all(client, admin, f"?placed_before={early}") == []
    assert await _all(client, admin, f"?placed_after={early}&placed_before={late}") == [order]


async def test_get_order_unpacks_rows_by_position() -> None:
    """``orders.get_order`` reads each row by position, in ``_ORDER_ROWS``'s column order (a
    ``Row``'s attribute reads cost some 4 % of a GET order): plain tuples, which have no named
    fields, are all it needs, and a column moved in the statement shows up here."""
    from datetime import UTC, datetime

    from marketsvc.db_accessor import orders

    names = [column.key for column in orders._ORDER_ROWS.selected_columns]
    assert names == [
        "id", "customer_id", "status", "placed_at", "item_id", "name", "unit_price_cents",
        "quantity", "seller_order_id", "commission_bps", "commission_cents", "seller_id",
        "part_status", "carrier", "tracking_number",
    ]  # fmt: skip
    placed_at = datetime(2026, 1, 2, tzinfo=UTC)
    rows = [
        (7, 3, "paid", placed_at, 2, "Lamp", 150, 2, 11, 500, 15, 5, "accepted", None, None),
        (7, 3, "paid", placed_at, 4, "Pan", 300, 1, 12, 800, 24, 6, "shipped", "DHL", "T1"),
        (7, 3, "paid", placed_at, 9, "Mug", 100, 3, 11, 500, 15, 5, "accepted", None, None),
    ]

    class Result:
        def all(self) -> list[tuple]:
            return rows

    class Executor:
        async def execute(self, stmt, params=None) -> Result:
            assert stmt is orders._ORDER_ROWS
            assert params == {"order_id": 7}
            return Result()

    view = await orders.get_order(Executor(), 7)
    assert (view.id, view.customer_id, view.status, view.placed_at) == (7, 3, "paid", placed_at)
    assert view.lines == [
        orders.PlacedLine(2, "Lamp", 150, 2, 11, 500, 15),
        orders.PlacedLine(4, "Pan", 300, 1, 12, 800, 24),
        orders.PlacedLine(9, "Mug", 100, 3, 11, 500, 15),
    ]
    assert view.seller_orders == [
        orders.SellerOrderRow(11, 5, "accepted", None, None),
        orders.SellerOrderRow(12, 6, "shipped", "DHL", "T1"),
    ]
    assert view.total_cents == 150 * 2 + 300 + 100 * 3
