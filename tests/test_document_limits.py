"""What the document allows is accepted, and what it refuses names the rule: money a client
sends has at most 10 integer digits (its pattern and maxLength say so), and an integer may be
written as a whole-number float, as JSON Schema allows."""

from __future__ import annotations

import re

from marketsvc.app import create_app
from marketsvc.settings import Settings
from marketsvc.web.openapi import build_document

ITEM = {"name": "Anvil", "stock": 5}


def request_money_schema() -> dict:
    document = build_document(create_app(Settings()))
    return document["components"]["schemas"]["ItemCreate"]["properties"]["price"]


def test_request_money_is_documented_with_its_limit() -> None:
    schema = request_money_schema()
    pattern = re.compile(schema["pattern"])
    assert schema["maxLength"] == 13
    for money in ("0", "0.5", "10.50", "9999999999.99"):
        assert pattern.search(money), money
    for too_much in ("12345678901", "10000000000.00", "1.234"):
        assert not pattern.search(too_much), too_much


async def test_the_largest_documented_price_is_accepted_and_read_back(client, admin) -> None:
    resp = await client.post("/api/v1/items", json=ITEM | {"price": "9999999999.99"}, headers=admin)
    assert resp.status == 201
    item = await resp.json()
    assert item["price"] == "9999999999.99"
    assert (await (await client.get(f"/api/v1/items/{item['id']}")).json()) == item


async def test_each_refused_price_names_the_rule_it_broke(client, admin) -> None:
    rules = {
        "12345678901": "Money has at most 10 digits before the decimal point.",
        "1.234": "Money has at most two decimals.",
        "1e3": "no exponent",
        "-1": "no sign",
    }
    for price, rule in rules.items():
        resp = await client.post("/api/v1/items", json=ITEM | {"price": price}, headers=admin)
        assert resp.status == 422, price
        [message] = (await resp.json())["errors"]["body.price"]
        assert rule in message, (price, message)
    query = await client.get("/api/v1/items?min_price=12345678901")
    assert (await query.json())["errors"] == {
        "query.min_price": ["Money has at most 10 digits before the decimal point."]
    }


async def test_whole_number_floats_are_integers(client, admin, new_customer) -> None:
    customer = await new_customer()
    resp = await client.post(
        "/api/v1/items", json={"name": "Bolt", "price": "1.00", "stock": 4.0}, headers=admin
    )
    assert resp.status == 201
    item = await resp.json()
    assert item["stock"] == 4
    order = await client.post(
        "/api/v1/orders",
        json={
            "customer_id": float(customer["id"]),
            "lines": [{"item_id": float(item["id"]), "quantity": 3e0}],
        },
        headers=admin,
    )
    assert order.status == 201
    assert (await order.json())["lines"][0]["quantity"] == 3


async def test_fractions_and_inexact_floats_are_refused_naming_the_rule(client, admin) -> None:
    body = ITEM | {"price": "1", "stock": 1.5}
    fraction = await client.post("/api/v1/items", json=body, headers=admin)
    assert (await fraction.json())["errors"] == {"body.stock": ["Not a valid integer."]}
    huge = await client.post(
        "/api/v1/orders",
        json={"customer_id": 2.0**60, "lines": [{"item_id": 1, "quantity": 1}]},
        headers=admin,
    )
    assert huge.status == 422
    [message] = (await huge.json())["errors"]["body.customer_id"]
    assert "taken up to 9007199254740992" in message
