"""Helpers for the seller order tests: sellers (straight into the table), their items, their
tokens, and the moves of a part over HTTP."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import insert

from marketsvc.store.models import Seller, utcnow
from marketsvc.web.keys import DATABASE


async def new_seller(client: TestClient, commission_bps: int, name: str = "Shop") -> int:
    row = {"name": name, "status": "active", "commission_bps": commission_bps,
           "created_at": utcnow()}  # fmt: skip
    async with client.server.app[DATABASE].change_rows() as conn:
        return int((await conn.execute(insert(Seller).returning(Seller.id), row)).scalar_one())


async def seller_item(
    client: TestClient,
    admin: dict[str, str],
    seller_id: int,
    price: str = "10.00",
    stock: int = 100,
    name: str = "Thing",
) -> int:
    body = {"name": name, "price": price, "stock": stock, "seller_id": seller_id}
    resp = await client.post("/api/v1/items", json=body, headers=admin)
    assert resp.status == 201, await resp.text()
    return int((await resp.json())["id"])


async def move_part(
    client: TestClient, headers: dict[str, str], part_id: int, status: str, **shipment: str
) -> Any:
    if status == "shipped" and not shipment:
        shipment = {"carrier": "DHL", "tracking_number": f"TRACK-{part_id}"}
    return await client.patch(
        f"/api/v1/seller-orders/{part_id}", json={"status": status, **shipment}, headers=headers
    )


async def moved(
    client: TestClient, headers: dict[str, str], part_id: int, status: str, **shipment: str
) -> dict[str, Any]:
    resp = await move_part(client, headers, part_id, status, **shipment)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def get_order(client: TestClient, admin: dict[str, str], order_id: int) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/orders/{order_id}", headers=admin)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def pay(client: TestClient, admin: dict[str, str], order_id: int) -> dict[str, Any]:
    resp = await client.patch(f"/api/v1/orders/{order_id}", json={"status": "paid"}, headers=admin)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def part_of(order: dict[str, Any], seller_id: int) -> dict[str, Any]:
    [part] = [p for p in order["seller_orders"] if p["seller_id"] == seller_id]
    return part
