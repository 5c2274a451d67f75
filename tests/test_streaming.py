"""Lists stream: chunked as rows arrive, JSON or NDJSON, and let go of the database at once."""

from __future__ import annotations

import asyncio
import json

from marketsvc.store.seed import SeedPlan
from marketsvc.web.keys import DATABASE


def customers_only(customers: int) -> SeedPlan:
    return SeedPlan(customers=customers, items=0, orders=0, users=0)


async def test_ndjson_when_asked(client, admin, new_customer) -> None:
    made = [await new_customer() for _ in range(3)]
    resp = await client.get("/api/v1/customers", headers=admin | {"Accept": "application/x-ndjson"})
    assert resp.content_type == "application/x-ndjson"
    lines = (await resp.text()).splitlines()
    assert [json.loads(line) for line in lines] == made


async def test_empty_collection_is_an_empty_array(client, admin) -> None:
    resp = await client.get("/api/v1/customers", headers=admin)
    assert await resp.text() == "[]"
    nd = await client.get("/api/v1/customers", headers=admin | {"Accept": "application/x-ndjson"})
    assert await nd.text() == ""


async def test_first_bytes_leave_while_the_query_is_still_open(seeded_client, admin) -> None:
    app, client = await seeded_client(customers_only(5000), 100)
    pool = app[DATABASE].engine.pool
    resp = await client.get("/api/v1/customers", headers=admin)
    first = await resp.content.readany()
    assert first.startswith(b'[{"id":1,')
    assert pool.checkedout() == 1  # the cursor is still open: the query has not finished
    rest = await resp.read()
    assert len(json.loads(first + rest)) == 5000
    assert pool.checkedout() == 0


async def test_paging_walks_the_whole_collection(seeded_client, admin) -> None:
    _, client = await seeded_client(customers_only(250))
    seen, after = [], 0
    while page := await (
        await client.get(f"/api/v1/customers?after_id={after}&limit=100", headers=admin)
    ).json():
        seen += [c["id"] for c in page]
        after = page[-1]["id"]
    assert seen == list(range(1, 251))


async def test_client_that_disconnects_releases_its_connection(seeded_client, admin) -> None:
    app, client = await seeded_client(customers_only(30_000), 200)
    pool = app[DATABASE].engine.pool
    resp = await client.get("/api/v1/customers", headers=admin)
    await resp.content.readany()
    assert pool.checkedout() == 1
    resp.close()  # drop the connection mid-stream
    for _ in range(100):
        if pool.checkedout() == 0:
            break
        await asyncio.sleep(0.05)
    assert pool.checkedout() == 0


async def test_head_on_a_stream_sends_headers_only_and_keeps_the_connection(
    client, admin, new_customer
) -> None:
    """Found probing for the fuzzer: HEAD wrote the rows, and the next response was garbage."""
    made = [await new_customer() for _ in range(2)]
    head = await client.head("/api/v1/customers", headers=admin)
    assert head.status == 200
    assert head.content_type == "application/json"
    assert await head.read() == b""
    after = await client.get("/api/v1/customers", headers=admin)  # same keep-alive connection
    assert await after.json() == made
