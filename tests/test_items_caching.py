"""The public catalogue is cacheable: strong ETags and Cache-Control, 304 on a matching
If-None-Match, and If-Match on PATCH as optimistic concurrency (412, checked under the lock)."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

STRONG = re.compile(r'^"[0-9a-f]{32}"$')
NDJSON = {"Accept": "application/x-ndjson"}


async def test_an_item_has_a_strong_etag_that_follows_its_content(client, admin, new_item) -> None:
    item = await new_item(price="3.00", stock=2)
    first = await client.get(f"/api/v1/items/{item['id']}")
    etag = first.headers["ETag"]
    assert STRONG.match(etag)
    assert first.headers["Cache-Control"] == "public, max-age=5"
    assert (await client.get(f"/api/v1/items/{item['id']}")).headers["ETag"] == etag
    other = await new_item(price="3.00", stock=2)
    assert (await client.get(f"/api/v1/items/{other['id']}")).headers["ETag"] != etag
    keyed = admin | {"Idempotency-Key": "stock-3"}
    patched = await client.patch(f"/api/v1/items/{item['id']}", json={"stock": 3}, headers=keyed)
    new_etag = (await client.get(f"/api/v1/items/{item['id']}")).headers["ETag"]
    assert new_etag != etag
    assert patched.headers["ETag"] == new_etag
    replayed = await client.patch(f"/api/v1/items/{item['id']}", json={"stock": 3}, headers=keyed)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.headers["ETag"] == new_etag


async def test_a_current_if_none_match_is_304_without_a_body(client, new_item) -> None:
    item = await new_item()
    path = f"/api/v1/items/{item['id']}"
    etag = (await client.get(path)).headers["ETag"]
    for header in (etag, f"W/{etag}", f'"0000", {etag}', "*"):
        resp = await client.get(path, headers={"If-None-Match": header})
        assert resp.status == 304, header
        assert await resp.read() == b""
        assert resp.headers["ETag"] == etag
        assert "Content-Type" not in resp.headers
    stale = await client.get(path, headers={"If-None-Match": '"0123456789abcdef0123456789abcdef"'})
    assert stale.status == 200
    assert await stale.json() == item


async def test_pages_carry_an_etag_per_representation_and_revalidate(client, new_item) -> None:
    for _ in range(3):
        await new_item()
    path = "/api/v1/items?limit=2"
    page = await client.get(path)
    as_lines = await client.get(path, headers=NDJSON)
    etag = page.headers["ETag"]
    assert STRONG.match(etag)
    assert as_lines.headers["ETag"] != etag
    assert page.headers["Cache-Control"] == "public, max-age=5"
    assert "next" in page.headers["Link"]
    again = await client.get(path, headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    assert again.headers["Link"] == page.headers["Link"]
    assert (await client.get(path, headers=NDJSON | {"If-None-Match": etag})).status == 200
    full = await client.get("/api/v1/items")
    assert full.headers["Cache-Control"] == "public, max-age=5"
    assert len(await full.json()) == 3


async def test_patch_with_a_stale_if_match_is_412_and_changes_nothing(
    client, admin, new_item
) -> None:
    item = await new_item(price="5.00")
    path = f"/api/v1/items/{item['id']}"
    etag = (await client.get(path)).headers["ETag"]
    await client.patch(path, json={"stock": 9}, headers=admin)
    current = await (await client.get(path)).json()
    stale = await client.patch(path, json={"price": "1.00"}, headers=admin | {"If-Match": etag})
    assert stale.status == 412
    assert list((await stale.json())["errors"]) == ["header.If-Match"]
    assert await (await client.get(path)).json() == current
    fresh = (await client.get(path)).headers["ETag"]
    for if_match in (fresh, "*"):
        ok = await client.patch(
            path, json={"price": "1.00"}, headers=admin | {"If-Match": if_match}
        )
        assert ok.status == 200, if_match
    missing = await client.patch(
        "/api/v1/items/999999", json={"stock": 1}, headers=admin | {"If-Match": "*"}
    )
    assert missing.status == 404


EDITORS = 8  # within the test app's pool (5 + 5 overflow), so all wait on the row, not the pool


async def test_concurrent_edits_with_one_etag_let_exactly_one_through(
    client, admin, new_item, backend, database_url
) -> None:
    """On PostgreSQL the test holds the item's row lock while every edit arrives, so that all
    of them read the row before any writes it: only the lock taken with the read (FOR UPDATE)
    lets exactly one through. SQLite runs writers one at a time."""
    item = await new_item(price="5.00")
    path = f"/api/v1/items/{item['id']}"
    etag = (await client.get(path)).headers["ETag"]

    async def edit(n: int) -> tuple[int, str]:
        body = {"price": f"{n}.00"}
        resp = await client.patch(path, json=body, headers=admin | {"If-Match": etag})
        return resp.status, body["price"]

    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as holder, holder.begin():
            if backend == "postgresql":
                lock = text("SELECT id FROM items WHERE id = :id FOR UPDATE")
                await holder.execute(lock, {"id": item["id"]})
            edits = asyncio.gather(*(edit(n) for n in range(10, 10 + EDITORS)))
            if backend == "postgresql":
                await _until_waiting(engine, EDITORS)
        results = await edits
    finally:
        await engine.dispose()
    assert Counter(status for status, _ in results) == {200: 1, 412: EDITORS - 1}
    [winner] = [price for status, price in results if status == 200]
    assert (await (await client.get(path)).json())["price"] == winner


async def _until_waiting(engine, count: int) -> None:
    """Polled from a connection of its own: a transaction sees one snapshot of the statistics."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(1500):
        async with engine.connect() as conn:
            if (await conn.execute(waiting)).scalar_one() >= count:
                return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} edits waited on the row lock")
