"""Placing and reading orders over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api import created
from tests.ordering import order_body, place, stock_of


async def test_place_order_snapshots_prices_and_takes_stock(
    client, admin, new_customer, new_item
) -> None:
    customer = await new_customer()
    kettle, lamp = await new_item(price="12.50", stock=10), await new_item("0.99", 5, "Lamp")
    body = order_body(customer["id"], (kettle["id"], 2), (lamp["id"], 3))
    resp = await client.post("/api/v1/orders", json=body, headers=admin)
    order = await created(client, admin, resp, "/api/v1/orders")
    assert order["customer_id"] == customer["id"]
    assert order["status"] == "pending"
    assert order["placed_at"].endswith("Z")
    assert order["lines"] == [
        {
            "item_id": kettle["id"],
            "name": "Kettle",
            "unit_price": "12.50",
            "quantity": 2,
            "line_total": "25.00",
        },
        {
            "item_id": lamp["id"],
            "name": "Lamp",
            "unit_price": "0.99",
            "quantity": 3,
            "line_total": "2.97",
        },
    ]
    assert order["total"] == "27.97"
    assert await stock_of(client, kettle["id"]) == 8
    assert await stock_of(client, lamp["id"]) == 2


async def test_lines_naming_the_same_item_merge(client, admin, new_customer, new_item) -> None:
    customer, item = await new_customer(), await new_item(price="1.00", stock=10)
    order = await place(client, admin, customer["id"], (item["id"], 2), (item["id"], 3))
    assert [(line["item_id"], line["quantity"]) for line in order["lines"]] == [(item["id"], 5)]
    assert order["total"] == "5.00"
    assert await stock_of(client, item["id"]) == 5


async def test_merged_quantity_over_the_limit_is_422(client, admin, new_customer, new_item) -> None:
    customer, item = await new_customer(), await new_item(stock=30_000)
    body = order_body(customer["id"], (item["id"], 6000), (item["id"], 5000))
    resp = await client.post("/api/v1/orders", json=body, headers=admin)
    assert resp.status == 422
    assert list((await resp.json())["errors"]) == ["body.lines.1.quantity"]
    assert await stock_of(client, item["id"]) == 30_000


async def test_short_stock_on_any_line_is_409_and_moves_no_stock(
    client, admin, new_customer, new_item
) -> None:
    customer = await new_customer()
    plenty, scarce, none = (
        await new_item(stock=10),
        await new_item(stock=1),
        await new_item(stock=0),
    )
    body = order_body(customer["id"], (plenty["id"], 5), (scarce["id"], 2), (none["id"], 1))
    resp = await client.post("/api/v1/orders", json=body, headers=admin)
    assert resp.status == 409
    problem = await resp.json()
    assert resp.content_type == "application/problem+json"
    assert problem["detail"] == f"not enough stock for items {scarce['id']}, {none['id']}"
    assert problem["errors"] == {
        "body.lines": [f"Not enough stock for item {i['id']}." for i in (scarce, none)]
    }
    assert [await stock_of(client, i["id"]) for i in (plenty, scarce, none)] == [10, 1, 0]
    orders = await (await client.get("/api/v1/orders", headers=admin)).json()
    assert orders == []


async def test_exactly_the_remaining_stock_can_be_bought(
    client, admin, new_customer, new_item
) -> None:
    customer, item = await new_customer(), await new_item(stock=3)
    await place(client, admin, customer["id"], (item["id"], 3))
    assert await stock_of(client, item["id"]) == 0


async def test_unknown_customer_and_item_are_422_naming_the_field(
    client, admin, new_customer, new_item
) -> None:
    customer, item = await new_customer(), await new_item(stock=5)
    body = order_body(customer["id"] + 1000, (item["id"], 1))
    resp = await client.post("/api/v1/orders", json=body, headers=admin)
    assert resp.status == 422
    assert list((await resp.json())["errors"]) == ["body.customer_id"]
    body = order_body(customer["id"], (item["id"], 1), (item["id"] + 1000, 1))
    resp = await client.post("/api/v1/orders", json=body, headers=admin)
    assert resp.status == 422
    assert list((await resp.json())["errors"]) == ["body.lines.1.item_id"]
    assert await stock_of(client, item["id"]) == 5


def _lines(n: int) -> list[dict[str, Any]]:
    return [{"item_id": i + 1, "quantity": 1} for i in range(n)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lines": _lines(1)}, "customer_id"),
        ({"customer_id": 1}, "lines"),
        ({"customer_id": 1, "lines": []}, "lines"),
        ({"customer_id": 1, "lines": _lines(101)}, "lines"),
        ({"customer_id": 1, "lines": [{"item_id": 1, "quantity": 0}]}, "lines.0.quantity"),
        ({"customer_id": 1, "lines": [{"item_id": 1, "quantity": 10_001}]}, "lines.0.quantity"),
        ({"customer_id": 1, "lines": [{"item_id": 1, "quantity": 1.5}]}, "lines.0.quantity"),
        ({"customer_id": 1, "lines": [{"item_id": 1, "quantity": "2"}]}, "lines.0.quantity"),
        ({"customer_id": 1, "lines": [*_lines(1), {"item_id": 0, "quantity": 1}]},
         "lines.1.item_id"),
        ({"customer_id": 1, "lines": [{"quantity": 1}]}, "lines.0.item_id"),
        ({"customer_id": True, "lines": _lines(1)}, "customer_id"),
        ({"customer_id": 2**63, "lines": _lines(1)}, "customer_id"),
        ({"customer_id": 1, "lines": _lines(1), "status": "paid"}, "status"),
        ({"customer_id": 1, "lines": [{"item_id": 1, "quantity": 1, "unit_price": "1"}]},
         "lines.0.unit_price"),
        ({"customer_id": 1, "lines": {"item_id": 1}}, "lines"),
    ],
)  # fmt: skip
async def test_invalid_order_is_422_naming_the_field(client, admin, body, field) -> None:
    resp = await client.post("/api/v1/orders", json=body, headers=admin)
    assert resp.status == 422, await resp.text()
    assert f"body.{field}" in (await resp.json())["errors"]


async def test_hundred_lines_are_allowed(client, admin, new_customer, new_item) -> None:
    customer = await new_customer()
    items = [await new_item(price="0.01", stock=1) for _ in range(100)]
    order = await place(client, admin, customer["id"], *[(i["id"], 1) for i in items])
    assert len(order["lines"]) == 100
    assert order["total"] == "1.00"


async def test_price_change_leaves_placed_orders_alone(
    client, admin, new_customer, new_item
) -> None:
    customer, item = await new_customer(), await new_item(price="4.20", stock=10)
    order = await place(client, admin, customer["id"], (item["id"], 2))
    resp = await client.patch(
        f"/api/v1/items/{item['id']}", json={"price": "99.99", "name": "Renamed"}, headers=admin
    )
    assert resp.status == 200
    got = await (await client.get(f"/api/v1/orders/{order['id']}", headers=admin)).json()
    assert got == order
    assert got["lines"][0]["unit_price"] == "4.20"
    assert got["lines"][0]["name"] == "Kettle"
    total = await (await client.get(f"/api/v1/orders/{order['id']}/total", headers=admin)).json()
    assert total == {"order_id": order["id"], "total": "8.40"}
    newer = await place(client, admin, customer["id"], (item["id"], 1))
    assert newer["lines"][0]["unit_price"] == "99.99"


async def test_unknown_order_is_404(client, admin) -> None:
    for path in ("/api/v1/orders/999", "/api/v1/orders/0", "/api/v1/orders/x"):
        resp = await client.get(path, headers=admin)
        assert resp.status == 404
    assert (await client.get("/api/v1/orders/999/total", headers=admin)).status == 404


async def test_orders_need_a_token(client) -> None:
    resp = await client.post("/api/v1/orders", json=order_body(1, (1, 1)))
    assert resp.status == 401
    assert (await client.get("/api/v1/orders")).status == 401


async def test_other_methods_on_the_totals_route_are_405_not_an_order_lookup(client, admin) -> None:
    """Found by the fuzzer (unsupported_method): /orders/{id} took "totals" for an order id."""
    for method in ("GET", "PATCH", "DELETE"):
        resp = await client.request(method, "/api/v1/orders/totals", json={}, headers=admin)
        assert resp.status == 405, method
        assert resp.headers["Allow"] == "POST"
        assert resp.content_type == "application/problem+json"
