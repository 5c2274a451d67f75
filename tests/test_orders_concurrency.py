"""Many buyers, little stock: never oversold, never a 5xx, on one process or several."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest

from tests.conftest import TEST_SECRET
from tests.live import live_server
from tests.ordering import order_body, stock_of

BUYERS = 200
STOCK = 50


async def test_two_hundred_buyers_of_fifty_units(client, admin, new_customer, new_item) -> None:
    customer, item = await new_customer(), await new_item(stock=STOCK)
    body = order_body(customer["id"], (item["id"], 1))

    async def buy() -> int:
        resp = await client.post("/api/v1/orders", json=body, headers=admin)
        await resp.read()
        return resp.status

    statuses = Counter(await asyncio.gather(*(buy() for _ in range(BUYERS))))
    assert statuses == {201: STOCK, 409: BUYERS - STOCK}
    assert await stock_of(client, item["id"]) == 0
    orders = await (await client.get("/api/v1/orders", headers=admin)).json()
    assert len(orders) == STOCK


async def test_orders_over_shared_items_never_deadlock(
    client, admin, new_customer, new_item
) -> None:
    """Orders taking the same items listed in opposite orders, and cancels, all at once."""
    customer = await new_customer()
    items = [await new_item(stock=60) for _ in range(3)]
    forward = order_body(customer["id"], *[(i["id"], 1) for i in items])
    backward = order_body(customer["id"], *[(i["id"], 1) for i in reversed(items)])

    async def buy_and_maybe_cancel(n: int) -> list[int]:
        body = forward if n % 2 else backward
        resp = await client.post("/api/v1/orders", json=body, headers=admin)
        order = await resp.json()
        if resp.status != 201 or n % 3:
            return [resp.status]
        cancel = await client.patch(
            f"/api/v1/orders/{order['id']}", json={"status": "cancelled"}, headers=admin
        )
        return [resp.status, cancel.status]

    results = await asyncio.gather(*(buy_and_maybe_cancel(n) for n in range(90)))
    assert {s for r in results for s in r} <= {201, 200, 409}
    placed = sum(r[0] == 201 for r in results)
    cancelled = sum(len(r) == 2 and r[1] == 200 for r in results)
    assert [await stock_of(client, i["id"]) for i in items] == [60 - placed + cancelled] * 3


@pytest.mark.slow
def test_two_gunicorn_workers_never_oversell(database_url, tmp_path) -> None:
    """Two processes writing at once: on SQLite they share one file lock, never 'locked'."""
    with live_server(database_url, tmp_path, workers=2, jwt_secret=TEST_SECRET) as server:
        statuses, stock = asyncio.run(_storm(server.url))
        log = server.log()
    assert statuses == {201: STOCK, 409: BUYERS - STOCK}, log[-3000:]
    assert stock == 0
    assert "database is locked" not in log
    assert "Traceback" not in log


async def _storm(url: str) -> tuple[Counter[int], int]:
    from marketsvc.settings import Settings
    from marketsvc.web.auth import TokenCodec

    token = TokenCodec(Settings(jwt_secret=TEST_SECRET)).issue("admin", "admin")
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=BUYERS, force_close=True)
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as http:
        customer = await _created(http, "/api/v1/customers", _customer())
        item = await _created(
            http, "/api/v1/items", {"name": "Last one", "price": "1.00", "stock": STOCK}
        )
        body = order_body(customer["id"], (item["id"], 1))

        async def buy() -> int:
            async with http.post("/api/v1/orders", json=body) as resp:
                await resp.read()
                return resp.status

        statuses = Counter(await asyncio.gather(*(buy() for _ in range(BUYERS))))
        async with http.get(f"/api/v1/items/{item['id']}") as resp:
            stock = (await resp.json())["stock"]
    return statuses, stock


async def _created(http: aiohttp.ClientSession, path: str, body: dict) -> dict:
    async with http.post(path, json=body) as resp:
        assert resp.status == 201, await resp.text()
        return await resp.json()


def _customer() -> dict:
    address = {"street": "1 Main Street", "city": "Leeds", "post_code": "LS1", "country": "GB"}
    return {"name": "Buyer", "email": "buyer@example.com", "address": address}
