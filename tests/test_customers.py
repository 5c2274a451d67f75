"""Customers with addresses over HTTP."""

from __future__ import annotations

import pytest

from tests.api import created


async def test_create_customer_returns_it_with_location(client, admin) -> None:
    body = {
        "name": "Zoë Østergaard",
        "email": "Zoe@Example.com",
        "address": {
            "street": "1 Rue de Rivoli",
            "flat_number": "4B",
            "city": "Paris",
            "post_code": "01000",
            "country": "fr",
        },
    }
    resp = await client.post("/api/v1/customers", json=body, headers=admin)
    customer = await created(client, admin, resp, "/api/v1/customers")
    assert customer["name"] == "Zoë Østergaard"
    assert customer["email"] == "zoe@example.com"
    assert customer["address"] == body["address"] | {"country": "FR"}


async def test_post_code_keeps_leading_zeros_and_letters(new_customer) -> None:
    address = {
        "street": "a",
        "flat_number": None,
        "city": "b",
        "post_code": "00501",
        "country": "US",
    }
    customer = await new_customer(address=address)
    assert customer["address"]["post_code"] == "00501"


async def test_email_is_unique(client, admin, new_customer) -> None:
    first = await new_customer()
    body = {"name": "Other", "email": first["email"].upper(), "address": first["address"]}
    resp = await client.post("/api/v1/customers", json=body, headers=admin)
    assert resp.status == 409
    assert "body.email" in (await resp.json())["errors"]


async def test_patch_changes_name_and_part_of_address(client, admin, new_customer) -> None:
    customer = await new_customer()
    change = {"name": "Renamed", "address": {"city": "York"}}
    resp = await client.patch(f"/api/v1/customers/{customer['id']}", json=change, headers=admin)
    assert resp.status == 200
    expected = customer | {"name": "Renamed", "address": customer["address"] | {"city": "York"}}
    assert await resp.json() == expected


async def test_patch_to_a_taken_email_is_409(client, admin, new_customer) -> None:
    first, second = await new_customer(), await new_customer()
    resp = await client.patch(
        f"/api/v1/customers/{second['id']}", json={"email": first["email"]}, headers=admin
    )
    assert resp.status == 409


@pytest.mark.parametrize(
    ("address", "field"),
    [
        ({"street": "a", "city": "b", "post_code": "1", "country": "XX"}, "address.country"),
        ({"street": "a", "city": "b", "post_code": "1", "country": "GBR"}, "address.country"),
        ({"street": "a", "city": "b", "post_code": 12345, "country": "GB"}, "address.post_code"),
        ({"street": "a", "city": "b", "country": "GB"}, "address.post_code"),
        ({"street": "a", "city": "b", "post_code": "1", "country": "GB", "x": 1}, "address.x"),
    ],
)
async def test_invalid_address_is_422_with_field_path(client, admin, address, field) -> None:
    body = {"name": "n", "email": "n@example.com", "address": address}
    resp = await client.post("/api/v1/customers", json=body, headers=admin)
    assert resp.status == 422
    assert f"body.{field}" in (await resp.json())["errors"]


async def test_invalid_email_is_422(client, admin) -> None:
    body = {
        "name": "n",
        "email": "not-an-email",
        "address": {"street": "a", "city": "b", "post_code": "1", "country": "GB"},
    }
    resp = await client.post("/api/v1/customers", json=body, headers=admin)
    assert resp.status == 422
    assert "body.email" in (await resp.json())["errors"]


async def test_customers_stream_as_json_array(client, admin, new_customer) -> None:
    made = [await new_customer() for _ in range(3)]
    resp = await client.get("/api/v1/customers", headers=admin)
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    assert await resp.json() == made


async def test_nul_in_a_flat_number_is_422_not_a_database_error(client, admin) -> None:
    """Found by probing for the fuzzer: PostgreSQL cannot store NUL, and it answered 500."""
    address = {
        "street": "a",
        "flat_number": "3\x00",
        "city": "b",
        "post_code": "1",
        "country": "GB",
    }
    body = {"name": "n", "email": "n@example.com", "address": address}
    resp = await client.post("/api/v1/customers", json=body, headers=admin)
    assert resp.status == 422
    assert "body.address.flat_number" in (await resp.json())["errors"]
