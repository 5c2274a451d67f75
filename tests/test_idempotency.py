"""Idempotency-Key on every POST, PATCH and DELETE: a retry replays the first answer; one key
never makes two changes."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import func, select, update

from marketsvc.services.idempotency import PURGE_EVERY
from marketsvc.settings import Settings
from marketsvc.store.models import IdempotencyKey, utcnow
from marketsvc.web.auth import TokenCodec
from marketsvc.web.keys import DATABASE
from marketsvc.web.openapi import build_document
from tests.conftest import TEST_SECRET
from tests.live import live_server
from tests.ordering import order_body, place, stock_of


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
    assert "header.Idempotency-Key" in (await other.json())["errors"]
    assert await stock_of(client, item["id"]) == 9


async def test_the_same_json_is_the_same_request_and_other_lines_are_not(
    client, admin, new_customer, new_item
) -> None:
    """A body is compared by its JSON value: key order and spacing do not matter, lines do."""
    customer, a, b = await new_customer(), await new_item(stock=10), await new_item(stock=10)
    body = order_body(customer["id"], (a["id"], 1), (b["id"], 1))
    first, first_body = await _post(client, keyed(admin, "k"), body)
    respelled = json.dumps(dict(reversed(body.items())), indent=2)
    headers = keyed(admin, "k") | {"Content-Type": "application/json"}
    again = await client.post("/api/v1/orders", data=respelled, headers=headers)
    assert (first.status, again.status) == (201, 201)
    assert await again.read() == first_body
    reordered = order_body(customer["id"], (b["id"], 1), (a["id"], 1))
    other, _ = await _post(client, keyed(admin, "k"), reordered)
    assert other.status == 422


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
        assert "header.Idempotency-Key" in (await resp.json())["errors"]
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
    async with database.change() as session:
        for key, age in (("old", timedelta(hours=25)), ("day-old", timedelta(hours=23))):
            await session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == key)
                .values(created_at=utcnow() - age)
            )
    for n in range(PURGE_EVERY):  # enough new keys that one of them purges
        await _post(client, keyed(admin, f"new-{n}"), body)
    async with database.load() as session:
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


async def test_a_cancel_retried_after_a_lost_answer_replays_and_moves_stock_once(
    client, admin, new_customer, new_item
) -> None:
    """The issue's case: the cancel committed, its answer was lost; the retry is not a 409."""
    customer, item = await new_customer(), await new_item(stock=10)
    order = await place(client, admin, customer["id"], (item["id"], 4))
    path, cancel = f"/api/v1/orders/{order['id']}", {"status": "cancelled"}
    first = await client.patch(path, json=cancel, headers=keyed(admin, "cancel-1"))
    again = await client.patch(path, json=cancel, headers=keyed(admin, "cancel-1"))
    assert (first.status, again.status) == (200, 200)
    assert await again.read() == await first.read()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert await stock_of(client, item["id"]) == 10
    unkeyed = await client.patch(path, json=cancel, headers=admin)
    assert unkeyed.status == 409


async def test_twenty_concurrent_cancels_with_one_key_return_stock_once(
    client, admin, new_customer, new_item
) -> None:
    customer, item = await new_customer(), await new_item(stock=10)
    order = await place(client, admin, customer["id"], (item["id"], 3))
    path, cancel = f"/api/v1/orders/{order['id']}", {"status": "cancelled"}

    async def attempt() -> tuple[int, bytes]:
        resp = await client.patch(path, json=cancel, headers=keyed(admin, "c"))
        return resp.status, await resp.read()

    results = await asyncio.gather(*(attempt() for _ in range(20)))
    assert {status for status, _ in results} <= {200, 409}
    answered = {body for status, body in results if status == 200}
    assert len(answered) == 1
    assert await stock_of(client, item["id"]) == 10


async def test_a_create_is_replayed_with_its_location(client, admin) -> None:
    body = {"name": "Uma", "pets": [{"name": "Rex"}]}
    first = await client.post("/api/v1/users", json=body, headers=keyed(admin, "u"))
    again = await client.post("/api/v1/users", json=body, headers=keyed(admin, "u"))
    assert (first.status, again.status) == (201, 201)
    assert again.headers["Location"] == first.headers["Location"]
    assert await again.read() == await first.read()
    users = await (await client.get("/api/v1/users", headers=admin)).json()
    assert len(users) == 1


async def test_a_delete_retried_is_204_again_not_404(client, admin) -> None:
    user = await (await client.post("/api/v1/users", json={"name": "Ann"}, headers=admin)).json()
    path = f"/api/v1/users/{user['id']}"
    first = await client.delete(path, headers=keyed(admin, "d"))
    again = await client.delete(path, headers=keyed(admin, "d"))
    assert (first.status, again.status) == (204, 204)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await client.delete(path, headers=admin)).status == 404


async def test_a_refusal_is_replayed_and_rolls_back_its_work(client, admin) -> None:
    """A 422 from the handler (unknown owner) is stored and replayed; nothing was made."""
    body = {"name": "Tom", "user_id": 999_999}
    first = await client.post("/api/v1/pets", json=body, headers=keyed(admin, "p"))
    again = await client.post("/api/v1/pets", json=body, headers=keyed(admin, "p"))
    assert (first.status, again.status) == (422, 422)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content_type == "application/problem+json"
    assert await again.read() == await first.read()
    assert await (await client.get("/api/v1/pets", headers=admin)).json() == []


async def test_an_invalid_body_keeps_no_key(client, admin) -> None:
    """Validation runs before anything changes: the key stays free for the corrected body."""
    bad = await client.post("/api/v1/users", json={"name": ""}, headers=keyed(admin, "v"))
    assert bad.status == 422
    good = await client.post("/api/v1/users", json={"name": "Val"}, headers=keyed(admin, "v"))
    assert good.status == 201
    assert "Idempotent-Replayed" not in good.headers


async def test_one_key_on_another_route_is_422(client, admin) -> None:
    first = await client.post("/api/v1/users", json={"name": "A"}, headers=keyed(admin, "x"))
    other = await client.post("/api/v1/pets", json={"name": "A"}, headers=keyed(admin, "x"))
    assert (first.status, other.status) == (201, 422)
    assert "header.Idempotency-Key" in (await other.json())["errors"]


def test_every_unsafe_operation_documents_the_key(client) -> None:
    document = build_document(client.app)
    keyed_ops = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in ("post", "patch", "delete"):
                continue
            names = {p.get("name") for p in operation["parameters"] if isinstance(p, dict)}
            success = next(r for s, r in operation["responses"].items() if s.startswith("2"))
            documented = "Idempotency-Key" in names
            # totals: a read in a POST; payments: the inbox applies each webhook-id once
            unkeyed = path in ("/api/v1/orders/totals", "/api/v1/payments/events")
            assert documented == (not unkeyed), (method, path)
            if documented:
                keyed_ops += 1
                assert "Idempotent-Replayed" in success["headers"], (method, path)
                assert {"409", "422"} <= operation["responses"].keys(), (method, path)
    assert keyed_ops >= 10


@pytest.mark.slow
def test_a_key_outlives_the_server_that_stored_it(database_url, tmp_path) -> None:
    token = TokenCodec(Settings(jwt_secret=TEST_SECRET)).issue("admin", "admin")
    admin = {"Authorization": f"Bearer {token}"}

    async def setup(url: str) -> dict:
        async with aiohttp.ClientSession(url, headers=admin) as http:
            customer = await _made(http, "/api/v1/customers", CUSTOMER)
            item = await _made(http, "/api/v1/items", {"name": "Mug", "price": "3.00", "stock": 5})
        return order_body(customer["id"], (item["id"], 2))

    async def post(url: str, body: dict) -> tuple[int, str | None, bytes]:
        async with (
            aiohttp.ClientSession(url, headers=admin | {"Idempotency-Key": "k"}) as http,
            http.post("/api/v1/orders", json=body) as resp,
        ):
            return resp.status, resp.headers.get("Idempotent-Replayed"), await resp.read()

    with live_server(database_url, tmp_path, workers=2, jwt_secret=TEST_SECRET) as server:
        body = asyncio.run(setup(server.url))
        first = asyncio.run(post(server.url, body))
    with live_server(database_url, tmp_path, workers=2, jwt_secret=TEST_SECRET) as server:
        again = asyncio.run(post(server.url, body))
    assert first[:2] == (201, None)
    assert again == (201, "true", first[2])


async def _made(http: aiohttp.ClientSession, path: str, body: dict) -> dict:
    async with http.post(path, json=body) as resp:
        assert resp.status == 201, await resp.text()
        return await resp.json()


CUSTOMER = {
    "name": "Buyer",
    "email": "buyer@example.com",
    "address": {"street": "1 Main Street", "city": "Leeds", "post_code": "LS1", "country": "GB"},
}
