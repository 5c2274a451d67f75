"""Small HTTP helpers shared by the user and pet tests."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient


async def make_user(
    client: TestClient, admin: dict[str, str], name: str = "Ada", pets: tuple[str, ...] = ()
) -> dict[str, Any]:
    body = {"name": name, "pets": [{"name": p} for p in pets]}
    resp = await client.post("/api/v1/users", json=body, headers=admin)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def make_pet(
    client: TestClient, admin: dict[str, str], name: str = "Rex", user_id: int | None = None
) -> dict[str, Any]:
    resp = await client.post("/api/v1/pets", json={"name": name, "user_id": user_id}, headers=admin)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def get_json(client: TestClient, admin: dict[str, str], path: str) -> Any:
    resp = await client.get(path, headers=admin)
    assert resp.status == 200, await resp.text()
    return await resp.json()
