"""Placements on SQLite run in the writer thread, grouped in one transaction with a savepoint
each (store/sqlite_writer.py): each write still succeeds or fails alone, on both databases; the
write lock's wait is bounded; the WAL is checkpointed off the write path and kept short."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from marketsvc.db_accessor import orders
from marketsvc.db_accessor.core import execute, rowcount
from marketsvc.store import sqlite_writer
from marketsvc.store.engine import Database
from marketsvc.store.models import Customer, Event, Item, Order
from marketsvc.store.outages import Outage, classify
from marketsvc.store.write_work import WriteSuspended
from marketsvc.web.keys import DATABASE


def only_sqlite(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's writer thread: PostgreSQL writes go through the pool")


@asynccontextmanager
async def write_lock_held(database_url: str) -> AsyncIterator[None]:
    """Another connection holds SQLite's write lock until the block ends (writes queue)."""
    path = database_url.removeprefix("sqlite+aiosqlite:///")
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")


async def count(client, *where) -> int:
    async with client.app[DATABASE].scan() as conn:
        return int((await conn.execute(select(func.count()).select_from(*where))).scalar_one())


async def stock(client, item_id: int) -> int:
    async with client.app[DATABASE].scan() as conn:
        return int((await conn.execute(select(Item.stock).where(Item.id == item_id))).scalar_one())


def order(customer_id: int, *lines: tuple[int, int]) -> dict:
    return {
        "customer_id": customer_id,
        "lines": [{"item_id": item_id, "quantity": quantity} for item_id, quantity in lines],
    }


async def test_a_placement_runs_in_the_writer_thread(
    backend, client, admin, new_customer, new_item
) -> None:
    only_sqlite(backend)
    customer, item = await new_customer(), await new_item(stock=3)
    stats = client.app[DATABASE].sqlite_writer.stats
    before = stats.writes
    resp = await client.post("/api/v1/orders", json=order(customer["id"], (item["id"], 2)),
                             headers=admin)  # fmt: skip
    assert resp.status == 201, await resp.text()
    assert stats.writes == before + 1
    assert await stock(client, item["id"]) == 1


async def test_a_placement_runs_its_statements_on_sqlite3_itself(
    backend, client, admin, new_customer, new_item
) -> None:
    """store/writer_statements.py: after the first (which compiles them), a placement's
    statements skip SQLAlchemy's execution layer; the order reads back whole."""
    only_sqlite(backend)
    customer, item = await new_customer(), await new_item(stock=10)
    statements = client.app[DATABASE].sqlite_writer.statements
    body = order(customer["id"], (item["id"], 2))
    for _ in range(2):  # a statement object is compiled here at its second sighting
        assert (await client.post("/api/v1/orders", json=body, headers=admin)).status == 201
    before = statements.ran
    resp = await client.post("/api/v1/orders", json=body, headers=admin)
    assert resp.status == 201, await resp.text()
    placed = await resp.json()
    assert statements.ran - before >= 5  # the order, the stock, the part, the lines, the event
    got = await (await client.get(f"/api/v1/orders/{placed['id']}", headers=admin)).json()
    assert got == placed
    assert await stock(client, item["id"]) == 4


NEW_CUSTOMER = insert(Customer).returning(Customer.id, Customer.name)
NEW_ORDER = insert(Order).returning(Order.id, Order.status, Order.placed_at)
RENAME = (
    update(Customer)
    .where(Customer.name.in_([bindparam("old"), bindparam("new")]))
    .values(name=bindparam("new"))
)


async def test_statements_on_sqlite3_answer_and_fail_as_sqlalchemy_does(backend, settings) -> None:
    """Against SQLAlchemy's own path (each statement's first run): the same rows and values (an
    aware datetime through the result processors), rowcounts, and a constraint's failure as
    ``sqlalchemy.exc.IntegrityError``."""
    only_sqlite(backend)
    database = Database(settings)
    statements = database.sqlite_writer.statements
    when = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    try:

        async def both_paths(conn):
            ran = statements.ran
            ada = (await conn.execute(NEW_CUSTOMER, {"name": "Ada", "email": "a@x.org"})).one()
            ida = (await conn.execute(NEW_CUSTOMER, {"name": "Ida", "email": "i@x.org"})).one()
            placed = []
            for customer in (ada, ida):
                values = {"customer_id": customer.id, "status": "pending", "placed_at": when}
                placed.append((await conn.execute(NEW_ORDER, values)).one())
            renamed = [
                rowcount(await conn.execute(RENAME, {"old": "Ada", "new": "Eva"})) for _ in "ab"
            ]
            assert statements.ran == ran + 3  # each statement's second run
            return ada, ida, placed, renamed

        ada, ida, placed, renamed = await database.change_with(both_paths)
        assert (ida.id, ida.name) == (ada.id + 1, "Ida")
        assert [tuple(o)[1:] for o in placed] == [("pending", when)] * 2
        assert placed[1].id == placed[0].id + 1
        assert renamed == [1, 1]  # Ada, then Eva

        async def unknown_customer(conn):
            values = {"customer_id": 2**40, "status": "pending", "placed_at": when}
            for _ in range(2):
                with pytest.raises(IntegrityError, match="FOREIGN KEY"):
                    await conn.execute(orders._INSERT_ORDER, values)

        ran = statements.ran
        await database.change_with(unknown_customer)
        assert statements.ran == ran  # failures are not counted
    finally:
        await database.dispose()


async def test_writes_queued_meanwhile_commit_in_one_transaction(
    backend, database_url, client, admin, new_customer, new_item
) -> None:
    only_sqlite(backend)
    customer, item = await new_customer(), await new_item(stock=100)
    stats = client.app[DATABASE].sqlite_writer.stats
    before_writes, before_transactions = stats.writes, stats.transactions
    body = order(customer["id"], (item["id"], 1))
    async with write_lock_held(database_url):
        placing = [
            asyncio.create_task(client.post("/api/v1/orders", json=body, headers=admin))
            for _ in range(12)
        ]
        await asyncio.sleep(0.3)  # the first waits for the lock, the others queue behind it
    statuses = [(await asyncio.wait_for(p, 10)).status for p in placing]
    assert statuses == [201] * 12
    assert stats.writes - before_writes >= 12  # and the background tasks' writes, if any
    assert stats.transactions - before_transactions < 12
    assert stats.largest_group >= 2
    assert await count(client, Order) == 12
    assert await stock(client, item["id"]) == 88


async def test_each_write_of_a_group_succeeds_or_fails_alone(
    backend, database_url, client, admin, new_customer, new_item
) -> None:
    """On SQLite the four share one transaction (a savepoint each); on PostgreSQL each has its
    own: either way the refused ones leave nothing behind."""
    customer = await new_customer()
    plenty, scarce = await new_item(stock=10), await new_item(stock=1)
    bodies = [
        order(customer["id"], (plenty["id"], 1)),
        order(customer["id"], (plenty["id"], 2), (scarce["id"], 5)),  # short: 409
        order(2**40, (plenty["id"], 1)),  # no such customer: 422 (its INSERT failed)
        order(customer["id"], (plenty["id"], 3)),
    ]
    events_before = await count(client, Event)

    async def place_all() -> list[int]:
        placing = [
            asyncio.create_task(client.post("/api/v1/orders", json=b, headers=admin))
            for b in bodies
        ]
        await asyncio.sleep(0.3)
        return placing

    if backend == "sqlite":
        async with write_lock_held(database_url):
            placing = await place_all()
    else:
        placing = await place_all()
    statuses = [(await asyncio.wait_for(p, 10)).status for p in placing]
    assert statuses == [201, 409, 422, 201]
    assert await count(client, Order) == 2
    assert await stock(client, plenty["id"]) == 6
    assert await stock(client, scarce["id"]) == 1
    assert await count(client, Event) - events_before == 2  # order.placed twice, nothing else


async def test_work_that_suspends_is_refused_and_rolled_back(backend, settings) -> None:
    only_sqlite(backend)
    database = Database(settings)

    async def suspends(conn, name: str) -> None:
        await execute(conn, insert(Customer).values(name=name, email=f"{name}@example.com"))
        await asyncio.sleep(0)  # a real await: a bug on the writer thread

    async def names(conn) -> list[str]:
        return list((await execute(conn, select(Customer.name))).scalars())

    try:
        with pytest.raises(WriteSuspended, match="suspends"):
            await database.change_with(suspends, "Ada")
        assert await database.change_with(names) == []  # its INSERT was rolled back
    finally:
        await database.dispose()


async def test_the_wait_for_the_write_lock_is_bounded(backend, database_url, settings) -> None:
    """Past ``pool_timeout`` a write is "database is locked" (a 503), and the writer goes on."""
    only_sqlite(backend)
    database = Database(replace(settings, pool_timeout=0.3))

    async def names(conn) -> list[str]:
        return list((await execute(conn, select(Customer.name))).scalars())

    try:
        async with write_lock_held(database_url):
            with pytest.raises(OperationalError, match="database is locked") as locked:
                await asyncio.wait_for(database.change_with(names), 5)
        assert classify(locked.value) is Outage.TIMEOUT
        assert await database.change_with(names) == []
        assert database.sqlite_writer.stats.lock_retries > 0
    finally:
        await database.dispose()


async def test_checkpoints_keep_the_wal_short(
    backend, client, admin, new_customer, new_item, monkeypatch
) -> None:
    only_sqlite(backend)
    monkeypatch.setattr(sqlite_writer, "CHECKPOINT_EVERY", 4)
    monkeypatch.setattr(sqlite_writer, "WAL_RESTART_FRAMES", 20)
    customer, item = await new_customer(), await new_item(stock=100)
    writer = client.app[DATABASE].sqlite_writer
    for _ in range(24):
        resp = await client.post("/api/v1/orders", json=order(customer["id"], (item["id"], 1)),
                                 headers=admin)  # fmt: skip
        assert resp.status == 201
    for _ in range(200):  # the checkpointer thread runs behind the writes
        if writer.stats.checkpoints >= 6 and writer.stats.restarts >= 1:
            break
        await asyncio.sleep(0.02)
    assert writer.stats.checkpoints >= 6  # one per four writes, in the checkpointer thread
    assert writer.stats.restarts >= 1  # a WAL of more than 20 frames copied and emptied
