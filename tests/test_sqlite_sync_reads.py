"""Core point reads run in the event-loop thread on SQLite (store/sqlite_sync_reads.py), fall back
to the async path when the database is locked, and see every write committed before them; the
same reads interleaved with writes are checked on both databases."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import bindparam, func, literal, select, text

from marketsvc.db_accessor import customers, orders
from marketsvc.services.background import BACKGROUND_DATABASE
from marketsvc.store.engine import Database
from marketsvc.store.models import Order
from marketsvc.web.keys import DATABASE
from tests.links import next_query

ADDRESS = {
    "street": "1 High St",
    "flat_number": None,
    "city": "Leeds",
    "post_code": "LS1 4AP",
    "country": "GB",
}


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call aiosqlite makes in its thread (the async path's one way there) for the
    requests: not the app's background tasks' (the webhook relay reads the feed on the async
    path whenever an event wakes it, at times the test does not choose)."""
    made: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self, fn, *args, **kwargs):
        if not _in_background_task():
            made.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return made


def _in_background_task() -> bool:
    """The current task runs a coroutine of ``marketsvc/services`` or ``marketsvc/ops`` (the
    relays, the webhook sender, metrics, retention), not a request."""
    task = asyncio.current_task()
    code = getattr(task.get_coro(), "cr_code", None) if task is not None else None
    where = Path(code.co_filename).parts if code is not None else ()
    return "marketsvc" in where and ("services" in where or "ops" in where)


async def place(client, headers, customer_id: int, item_id: int, quantity: int = 1) -> dict:
    body = {"customer_id": customer_id, "lines": [{"item_id": item_id, "quantity": quantity}]}
    resp = await client.post("/api/v1/orders", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_point_reads_take_the_loop_thread(
    backend, client, admin, new_customer, new_item, hops
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's trick: PostgreSQL reads go through the pool")
    customer = await new_customer()
    order = await place(client, admin, customer["id"], (await new_item())["id"], 2)
    stats = client.app[DATABASE].sync_reads.stats
    before = stats.in_loop
    hops.clear()
    answers = [
        await client.get(f"/api/v1/customers/{customer['id']}", headers=admin),
        await client.get(f"/api/v1/orders/{order['id']}", headers=admin),
        await client.get(f"/api/v1/orders/{order['id']}/total", headers=admin),
        await client.post(
            "/api/v1/orders/totals", json={"order_ids": [order["id"], 999]}, headers=admin
        ),
    ]
    assert [r.status for r in answers] == [200] * 4
    assert (await answers[0].json()) == customer
    assert (await answers[1].json()) == order
    assert (await answers[2].json())["total"] == order["total"]
    assert (await answers[3].json())["missing"] == [999]
    assert hops == []  # not one statement crossed to aiosqlite's thread
    assert stats.in_loop - before == 4
    assert stats.fell_back == 0


async def test_a_catalogue_page_takes_the_loop_thread(backend, client, new_item, hops) -> None:
    """A search page, its next page and a price-sorted page: all in the loop thread."""
    if backend != "sqlite":
        pytest.skip("SQLite's trick: PostgreSQL reads go through the pool")
    prices = ("3.00", "2.00", "1.00")
    made = [await new_item(price, name=f"Copper kettle {price}") for price in prices]
    stats = client.app[DATABASE].sync_reads.stats
    before = stats.in_loop
    hops.clear()
    first = await client.get("/api/v1/items?q=kettles&limit=2")
    assert first.status == 200, await first.text()
    follow = await client.get(f"/api/v1/items?{next_query(first)}")
    by_price = await client.get("/api/v1/items?max_price=2.50&sort=price&limit=5")
    found = [item["id"] for r in (first, follow) for item in await r.json()]
    assert found == [item["id"] for item in made]
    assert [item["price"] for item in await by_price.json()] == ["1.00", "2.00"]
    assert hops == []
    assert stats.in_loop - before == 3
    assert stats.fell_back == 0


async def test_a_read_past_its_budget_moves_off_the_loop(backend, client, hops) -> None:
    """A statement still running after ``LOOP_BUDGET_S`` is interrupted by SQLite's progress
    handler and runs again in aiosqlite's thread: the loop stays free while it counts."""
    if backend != "sqlite":
        pytest.skip("SQLite's trick")
    count = select(literal(1).label("n")).cte("count", recursive=True)
    count = count.union_all(select(count.c.n + 1).where(count.c.n < 2_000_000))
    stmt = select(func.max(count.c.n))
    reads = client.app[DATABASE].sync_reads
    before = (reads.stats.in_loop, reads.stats.over_budget)
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.01)
    hops.clear()
    started = time.perf_counter()
    assert (await reads.execute(stmt)).scalar() == 2_000_000
    took = time.perf_counter() - started
    ticking.cancel()
    assert (reads.stats.in_loop, reads.stats.over_budget) == (before[0], before[1] + 1)
    assert hops  # it ran in aiosqlite's thread
    # the loop turned all along: its longest pause is a small part of the statement's time
    assert max(gaps) < took / 4, (max(gaps), took)


async def exclusive(other: sqlite3.Connection, databases: tuple[Database, ...]) -> None:
    """Take the file's exclusive lock. An open WAL connection keeps a shared lock on the file,
    so the app's connections let go first: its own, and its background tasks' (which poll,
    and may open one again meanwhile: then try again)."""
    for _ in range(300):
        for database in databases:
            database.sync_reads.close()
            await database.engine.dispose()
        try:
            other.execute("BEGIN EXCLUSIVE")
            return
        except sqlite3.OperationalError:
            await asyncio.sleep(0.01)
    raise AssertionError("the app's connections kept the file")


async def test_a_locked_database_falls_back_to_the_async_path(
    backend, client, admin, new_customer, hops
) -> None:
    """Another connection in ``locking_mode=EXCLUSIVE`` holds the file: the loop-thread read
    fails at once (busy_timeout 0) and the read waits in aiosqlite's thread instead, never in
    the loop; when the lock goes, it answers."""
    if backend != "sqlite":
        pytest.skip("SQLite's trick")
    customer = await new_customer()
    database = client.app[DATABASE]
    path = database.engine.url.database
    hops.clear()
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("PRAGMA locking_mode = EXCLUSIVE")
        await exclusive(other, (database, client.app[BACKGROUND_DATABASE]))
        other.execute("UPDATE customers SET name = 'Renamed' WHERE id = ?", (customer["id"],))
        url = f"/api/v1/customers/{customer['id']}"
        read = asyncio.ensure_future(client.get(url, headers=admin))
        ticks = 0
        while not hops and ticks < 500:  # the loop is free while the read waits
            await asyncio.sleep(0.01)
            ticks += 1
        await asyncio.sleep(0.2)
        assert not read.done()
        assert database.sync_reads.stats.fell_back == 1
        other.execute("COMMIT")
    resp = await asyncio.wait_for(read, 10)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["name"] == "Renamed"
    in_loop = database.sync_reads.stats.in_loop
    again = await client.get(url, headers=admin)  # the lock is gone: back in the loop thread
    assert again.status == 200
    assert database.sync_reads.stats.in_loop == in_loop + 1


async def test_the_loop_thread_connection_never_waits_and_cannot_write(
    backend, client, new_customer
) -> None:
    """busy_timeout 0: a lock makes a loop-thread read fail at once (and run again off the loop),
    never wait in the loop; query_only: whatever it is handed, it cannot write."""
    if backend != "sqlite":
        pytest.skip("SQLite's trick")
    customer = await new_customer()
    conn = client.app[DATABASE].sync_reads.connection()
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (0,)
    assert conn.execute("PRAGMA query_only").fetchone() == (1,)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM customers WHERE id = ?", (customer["id"],))


async def test_rows_are_the_async_paths_rows(
    backend, client, admin, new_customer, new_item
) -> None:
    """Every point-read statement, on both paths: the same keys, values and types."""
    if backend != "sqlite":
        pytest.skip("SQLite's trick")
    customer = await new_customer(address={**ADDRESS, "flat_number": "2B"})
    cheap, dear = await new_item("0.10"), await new_item("12.34")
    order = await place(client, admin, customer["id"], cheap["id"], 3)
    await place(client, admin, customer["id"], dear["id"], 1)
    database = client.app[DATABASE]
    cases = [
        (customers._CUSTOMER_BY_ID, {"customer_id": customer["id"]}),
        (customers._CUSTOMER_BY_ID, {"customer_id": 999}),
        (orders._ORDER_ROWS, {"order_id": order["id"]}),
        (orders._ORDER_ROWS_IN_SCOPE, {"order_id": order["id"], "scope": customer["id"]}),
        (orders._ORDER_ROWS_IN_SCOPE, {"order_id": order["id"], "scope": 999}),
        (orders._TOTAL, {"order_id": order["id"]}),
        (orders._TOTAL_IN_SCOPE, {"order_id": order["id"], "scope": customer["id"]}),
        (orders._TOTALS[False, False], {"order_ids": [order["id"], order["id"] + 1, 999]}),
        (orders._TOTALS[False, True], {"order_ids": [order["id"]], "scope": customer["id"]}),
    ]
    before = database.sync_reads.stats.in_loop
    for stmt, params in cases:
        in_loop = (await database.sync_reads.execute(stmt, params)).all()
        async with database.scan() as conn:
            off_loop = (await conn.execute(stmt, params)).all()
        assert in_loop == off_loop
        assert [r._mapping for r in in_loop] == [r._mapping for r in off_loop]
        assert [list(map(type, r)) for r in in_loop] == [list(map(type, r)) for r in off_loop]
    assert database.sync_reads.stats.in_loop - before == len(cases)
    # what it does not run goes to the async path: text(), an empty IN list
    assert (await database.sync_reads.execute(text("SELECT 1 AS one"))).all() == [(1,)]
    empty = await database.sync_reads.execute(orders._TOTALS[False, False], {"order_ids": []})
    assert empty.all() == []
    assert database.sync_reads.stats.in_loop - before == len(cases)


async def test_reads_see_every_write_committed_before_them(
    client, admin, new_customer, new_item
) -> None:
    """Readers and writers at once (both databases): each order placed is read back at once,
    by its id and in a total, while other requests place and read orders of their own."""
    item = await new_item(stock=10_000)
    customers = [await new_customer() for _ in range(4)]

    async def shopper(customer: dict) -> None:
        for n in range(1, 11):
            placed = await place(client, admin, customer["id"], item["id"], n)
            read = await client.get(f"/api/v1/orders/{placed['id']}", headers=admin)
            assert read.status == 200
            assert await read.json() == placed
            renamed = await client.patch(
                f"/api/v1/customers/{customer['id']}", json={"name": f"Round {n}"}, headers=admin
            )
            assert renamed.status == 200
            seen = await client.get(f"/api/v1/customers/{customer['id']}", headers=admin)
            assert (await seen.json())["name"] == f"Round {n}"

    await asyncio.gather(*(shopper(c) for c in customers))
    stock = await client.get(f"/api/v1/items/{item['id']}")
    assert (await stock.json())["stock"] == 10_000 - 4 * sum(range(1, 11))


async def test_parameters_are_converted_as_on_the_async_path(
    backend, client, admin, new_customer, new_item
) -> None:
    """A datetime parameter reaches SQLite in the text form SQLAlchemy stores (the webhook
    sender's ``any_due`` asks with one after every delivery)."""
    if backend != "sqlite":
        pytest.skip("SQLite's trick")
    customer = await new_customer()
    placed = await place(client, admin, customer["id"], (await new_item())["id"])
    # in another zone: only the converter makes it the stored UTC text
    at = datetime.fromisoformat(placed["placed_at"]).astimezone(timezone(timedelta(hours=2)))
    stmt = select(Order.id).where(Order.placed_at <= bindparam("until", type_=Order.placed_at.type))
    database = client.app[DATABASE]
    stats = database.sync_reads.stats
    for until, expected in ((at, [placed["id"]]), (at - timedelta(microseconds=1), [])):
        before = (stats.in_loop, stats.fell_back)
        async with database.read() as conn:
            in_loop = list((await conn.execute(stmt, {"until": until})).scalars())
        assert (stats.in_loop, stats.fell_back) == (before[0] + 1, before[1])
        async with database.scan() as conn:
            assert list((await conn.execute(stmt, {"until": until})).scalars()) == in_loop
        assert in_loop == expected
