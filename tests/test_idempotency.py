"""Idempotency-Key: a retry replays the first answer; one key can never make two orders."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from sqlalchemy import func, select, update

from marketsvc.handlers.placement import PURGE_EVERY
from marketsvc.keys import DATABASE
from marketsvc.models import IdempotencyKey, utcnow
from tests.ordering import order_body, stock_of


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return headers | {"Idempotency-Key": key}


async def _post(client, headers, body):
    resp = await client.post("/api/v1/orders", json=body, headers=headers)
    return resp, await resp.read()


async def _orders(client, admin) -> list[dict]:
    return await (await client.get("/api/v1/orders", headers=admin)).json()


async def test_retry_replays_the_first_response(client, admin, new_customer, new_item) -> None:
    customer, item = await new_customer(), await new_item(stock=10)
    body = order_body(customer["id"], (item["id"], 2))
    first, first_body = await _post(client, keyed(admin, "k-1"), body)
    assert first.status == 201
    assert "Idempotent-Replayed" not in first.headers
    again, again_body = await _post(client, keyed(admin, "k-1"), body)
    assert again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert again_body == first_body
    assert len(await _orders(client, admin)) == 1
    assert await stock_of(client, item["id"]) == 8


async def test_same_key_with_another_body_is_422(client, admin, new_customer, new_item) -> None:
    customer, item = await new_customer(), await new_item(stock=10)
    first, _ = await _post(client, keyed(admin, "k"), order_body(customer["id"], (item["id"], 1)))
    assert first.status == 201
    other, _ = await _post(client, keyed(admin, "k"), order_body(customer["id"], (item["id"], 2)))
    assert other.status == 422
    assert "Idempotency-Key" in (await other.json())["errors"]
    assert await stock_of(client, item["id"]) == 9


async def test_merged_and_reordered_lines_are_the_same_request(
    client, admin, new_customer, new_item
) -> None:
    customer, a, b = await new_customer(), await new_item(stock=10), await new_item(stock=10)
    body = order_body(customer["id"], (a["id"], 1), (b["id"], 1), (a["id"], 1))
    first, first_body = await _post(client, keyed(admin, "k"), body)
    same = order_body(customer["id"], (b["id"], 1), (a["id"], 2))
    again, again_body = await _post(client, keyed(admin, "k"), same)
    assert (first.status, again.status) == (201, 201)
    assert again_body == first_body


async def test_out_of_stock_answer_is_replayed_too(client, admin, new_customer, new_item) -> None:
    customer, item = await new_customer(), await new_item(stock=1)
    body = order_body(customer["id"], (item["id"], 2))
    first, first_body = await _post(client, keyed(admin, "k"), body)
    assert first.status == 409
    patch = await client.patch(f"/api/v1/items/{item['id']}", json={"stock": 5}, headers=admin)
    assert patch.status == 200
    again, again_body = await _post(client, keyed(admin, "k"), body)
    assert again.status == 409
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content_type == "application/problem+json"
    assert again_body == first_body
    assert await stock_of(client, item["id"]) == 5
    fresh, _ = await _post(client, keyed(admin, "k2"), body)
    assert fresh.status == 201


async def test_keys_belong_to_their_caller(
    client, admin, as_customer, new_customer, new_item
) -> None:
    customer, item = await new_customer(), await new_item(stock=10)
    body = order_body(customer["id"], (item["id"], 1))
    by_admin, _ = await _post(client, keyed(admin, "shared"), body)
    by_customer, _ = await _post(client, keyed(as_customer(customer["id"]), "shared"), body)
    assert (by_admin.status, by_customer.status) == (201, 201)
    assert "Idempotent-Replayed" not in by_customer.headers
    assert len(await _orders(client, admin)) == 2


async def test_key_length_is_checked(client, admin, new_customer, new_item) -> None:
    customer, item = await new_customer(), await new_item(stock=10)
    body = order_body(customer["id"], (item["id"], 1))
    for key in ("", "x" * 256):
        resp, _ = await _post(client, keyed(admin, key), body)
        assert resp.status == 422
        assert "Idempotency-Key" in (await resp.json())["errors"]
    resp, _ = await _post(client, keyed(admin, "x" * 255), body)
    assert resp.status == 201
    assert await stock_of(client, item["id"]) == 9


async def test_fifty_concurrent_requests_with_one_key_make_one_order(
    client, admin, new_customer, new_item
) -> None:
    customer, item = await new_customer(), await new_item(stock=100)
    body = order_body(customer["id"], (item["id"], 3))
    results = await asyncio.gather(*(_post(client, keyed(admin, "once"), body) for _ in range(50)))
    created = [raw for resp, raw in results if resp.status == 201]
    assert {resp.status for resp, _ in results} <= {201, 409}
    assert created
    assert all(raw == created[0] for raw in created)
    assert len(await _orders(client, admin)) == 1
    assert await stock_of(client, item["id"]) == 97


async def test_keys_outlive_a_day_and_expired_ones_are_purged(
    client, admin, new_customer, new_item
) -> None:
    database = client.app[DATABASE]
    customer, item = await new_customer(), await new_item(stock=1000)
    body = order_body(customer["id"], (item["id"], 1))
    await _post(client, keyed(admin, "old"), body)
    await _post(client, keyed(admin, "day-old"), body)
    async with database.write.begin() as session:
        for key, age in (("old", timedelta(hours=25)), ("day-old", timedelta(hours=23))):
            await session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == key)
                .values(created_at=utcnow() - age)
            )
    for n in range(PURGE_EVERY):  # enough new keys that one of them purges
        await _post(client, keyed(admin, f"new-{n}"), body)
    async with database.read() as session:
        keys = set((await session.scalars(select(IdempotencyKey.key))).all())
        unanswered = await session.scalar(
            select(func.count()).where(IdempotencyKey.response_status.is_(None))
        )
    assert "old" not in keys
    assert "day-old" in keys
    assert unanswered == 0


async def test_key_that_is_not_utf8_is_422(client, admin, new_customer, new_item) -> None:
    customer, item = await new_customer(), await new_item(stock=10)
    body = json.dumps(order_body(customer["id"], (item["id"], 1))).encode()
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        b"POST /api/v1/orders HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
        + f"Authorization: {admin['Authorization']}\r\n".encode()
        + b"Content-Type: application/json\r\nIdempotency-Key: \xff\xfe-key\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    response = await reader.read()
    writer.close()
    assert response.startswith(b"HTTP/1.1 422")
    assert await stock_of(client, item["id"]) == 10
