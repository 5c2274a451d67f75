"""Totals: exact decimals summed by the database, one order or a thousand at once."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from marketsvc.app import create_app
from marketsvc.store.seed import SeedPlan, seed
from marketsvc.web.keys import DATABASE
from tests.ordering import place


async def test_three_times_ten_cents_is_thirty_cents(client, admin, new_customer, new_item) -> None:
    customer, item = await new_customer(), await new_item(price="0.10", stock=10)
    order = await place(client, admin, customer["id"], (item["id"], 3))
    assert order["total"] == "0.30"
    resp = await client.get(f"/api/v1/orders/{order['id']}/total", headers=admin)
    assert await resp.json() == {"order_id": order["id"], "total": "0.30"}


async def test_large_totals_stay_exact(client, admin, new_customer, new_item) -> None:
    customer = await new_customer()
    dear, cheap = await new_item("9999999999.99", 10_000), await new_item("0.01", 10_000)
    order = await place(client, admin, customer["id"], (dear["id"], 10_000), (cheap["id"], 1))
    assert order["total"] == "99999999999900.01"
    resp = await client.get(f"/api/v1/orders/{order['id']}/total", headers=admin)
    assert (await resp.json())["total"] == "99999999999900.01"


async def test_a_thousand_totals_match_the_single_totals(aiohttp_client, settings, admin) -> None:
    await seed(settings, SeedPlan(customers=20, items=30, orders=1000, users=0), progress=False)
    app = create_app(settings)
    client = await aiohttp_client(app)
    statements: list[str] = []
    database = app[DATABASE]
    if database.sync_reads:  # SQLite's point reads run on a sqlite3 connection of their own
        database.sync_reads.connection().set_trace_callback(statements.append)
        event.listen(
            database.engine.sync_engine,
            "before_cursor_execute",
            lambda *a: statements.append(a[2]),
        )
    else:  # PostgreSQL: whatever asyncpg runs, from SQLAlchemy's cursor or read()'s compiled path
        event.listen(
            database.engine.sync_engine,
            "connect",
            lambda conn, _record: conn.driver_connection.add_query_logger(
                lambda logged: statements.append(logged.query)
            ),
        )
    ids = list(range(1000, 0, -1))
    resp = await client.post("/api/v1/orders/totals", json={"order_ids": ids}, headers=admin)
    assert resp.status == 200
    batch = await resp.json()
    assert len([s for s in statements if "order_lines" in s]) == 1
    assert batch["missing"] == []
    assert [t["order_id"] for t in batch["totals"]] == ids
    for total in batch["totals"][::37]:
        single = await client.get(f"/api/v1/orders/{total['order_id']}/total", headers=admin)
        assert await single.json() == total
    orders = await (await client.get("/api/v1/orders", headers=admin)).json()
    assert {t["order_id"]: t["total"] for t in batch["totals"]} == {
        o["id"]: o["total"] for o in orders
    }


async def test_totals_dedupe_and_report_missing(client, admin, new_customer, new_item) -> None:
    customer, item = await new_customer(), await new_item(price="2.50")
    first = await place(client, admin, customer["id"], (item["id"], 2))
    second = await place(client, admin, customer["id"], (item["id"], 1))
    body = {"order_ids": [second["id"], 999, first["id"], second["id"], 999]}
    resp = await client.post("/api/v1/orders/totals", json=body, headers=admin)
    assert await resp.json() == {
        "totals": [
            {"order_id": second["id"], "total": "2.50"},
            {"order_id": first["id"], "total": "5.00"},
        ],
        "missing": [999],
    }


async def test_others_orders_are_missing_for_a_customer(
    client, admin, as_customer, new_customer, new_item
) -> None:
    me, other, item = await new_customer(), await new_customer(), await new_item(price="1.00")
    mine = await place(client, admin, me["id"], (item["id"], 1))
    theirs = await place(client, admin, other["id"], (item["id"], 1))
    body = {"order_ids": [mine["id"], theirs["id"]]}
    resp = await client.post("/api/v1/orders/totals", json=body, headers=as_customer(me["id"]))
    assert await resp.json() == {
        "totals": [{"order_id": mine["id"], "total": "1.00"}],
        "missing": [theirs["id"]],
    }


@pytest.mark.parametrize(
    "body",
    [
        {"order_ids": []},
        {"order_ids": list(range(1, 1002))},
        {"order_ids": [0]},
        {"order_ids": ["1"]},
        {"order_ids": 1},
        {},
        {"order_ids": [1], "extra": True},
    ],
)
async def test_invalid_totals_request_is_422(client, admin, body) -> None:
    resp = await client.post("/api/v1/orders/totals", json=body, headers=admin)
    assert resp.status == 422
