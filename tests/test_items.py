"""The catalogue over HTTP: exact money, validation, public reads."""

from __future__ import annotations

import pytest

from tests.api import created


async def test_create_then_read_item(client, admin) -> None:
    body = {"name": "Kettle", "description": "Boils", "price": "10.50", "stock": 3}
    resp = await client.post("/api/v1/items", json=body, headers=admin)
    item = await created(client, {}, resp, "/api/v1/items")  # read back without a token: public
    assert item == {
        "id": item["id"],
        "name": "Kettle",
        "description": "Boils",
        "price": "10.50",
        "stock": 3,
        "seller_id": 1,  # the default seller: an admin named none
    }


@pytest.mark.parametrize(
    ("given", "stored"), [("7", "7.00"), ("0.1", "0.10"), ("12345.99", "12345.99")]
)
async def test_money_is_normalised_to_two_decimals(client, admin, given, stored) -> None:
    resp = await client.post(
        "/api/v1/items", json={"name": "x", "price": given, "stock": 0}, headers=admin
    )
    assert (await resp.json())["price"] == stored


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "price": 10.5, "stock": 1}, "price"),
        ({"name": "x", "price": "10.555", "stock": 1}, "price"),
        ({"name": "x", "price": "-1.00", "stock": 1}, "price"),
        ({"name": "x", "price": "NaN", "stock": 1}, "price"),
        ({"name": "x", "price": "1.00", "stock": -1}, "stock"),
        ({"name": "x", "price": "1.00", "stock": 1.5}, "stock"),
        ({"name": "x", "price": "1.00", "stock": True}, "stock"),
        ({"name": "", "price": "1.00", "stock": 1}, "name"),
        ({"name": "   ", "price": "1.00", "stock": 1}, "name"),
        ({"price": "1.00", "stock": 1}, "name"),
        ({"name": "x", "price": "1.00", "stock": 1, "id": 5}, "id"),
    ],
)
async def test_invalid_items_are_422_naming_the_field(client, admin, body, field) -> None:
    resp = await client.post("/api/v1/items", json=body, headers=admin)
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    assert f"body.{field}" in (await resp.json())["errors"]


async def test_patch_changes_only_given_fields(client, admin, new_item) -> None:
    item = await new_item(price="1.00", stock=5)
    resp = await client.patch(f"/api/v1/items/{item['id']}", json={"price": "2.50"}, headers=admin)
    assert resp.status == 200
    assert await resp.json() == item | {"price": "2.50"}


async def test_patch_unknown_item_is_404(client, admin) -> None:
    resp = await client.patch("/api/v1/items/999", json={"stock": 1}, headers=admin)
    assert resp.status == 404


async def test_items_stream_in_id_order_with_paging(client, new_item) -> None:
    ids = [(await new_item(name=f"item {n}"))["id"] for n in range(5)]
    everything = await (await client.get("/api/v1/items")).json()
    assert [i["id"] for i in everything] == ids
    page = await (await client.get(f"/api/v1/items?after_id={ids[1]}&limit=2")).json()
    assert [i["id"] for i in page] == ids[2:4]


async def test_nul_in_a_description_is_422_not_a_database_error(client, admin, new_item) -> None:
    """Found by probing for the fuzzer: PostgreSQL cannot store NUL, and it answered 500."""
    body = {"name": "x", "description": "a\x00b", "price": "1.00", "stock": 1}
    created = await client.post("/api/v1/items", json=body, headers=admin)
    assert created.status == 422
    assert "body.description" in (await created.json())["errors"]
    item = await new_item()
    changed = await client.patch(
        f"/api/v1/items/{item['id']}", json={"description": "\x00"}, headers=admin
    )
    assert changed.status == 422
    kept = await client.patch(
        f"/api/v1/items/{item['id']}", json={"description": "two\nlines\tand é"}, headers=admin
    )
    assert (await kept.json())["description"] == "two\nlines\tand é"
