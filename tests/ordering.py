"""Helpers shared by the order tests: place an order, read an item's stock."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient


def order_body(customer_id: int, *lines: tuple[int, int]) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "lines": [{"item_id": item_id, "quantity": quantity} for item_id, quantity in lines],
    }


async def place(
    client: TestClient, headers: dict[str, str], customer_id: int, *lines: tuple[int, int]
) -> dict[str, Any]:
    """Place an order that must succeed; its body."""
    resp = await client.post(
        "/api/v1/orders", json=order_body(customer_id, *lines), headers=headers
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def stock_of(client: TestClient, item_id: int) -> int:
    resp = await client.get(f"/api/v1/items/{item_id}")
    assert resp.status == 200
    return (await resp.json())["stock"]
