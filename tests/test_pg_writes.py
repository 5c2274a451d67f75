"""On PostgreSQL a write given to ``Database.change_with`` runs whole in one greenlet
(store/pg_writes.py): placements take that path, it spawns one greenlet however many statements
the write runs, a failed write rolls back, and a write that awaits something else is refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import greenlet
import pytest
from sqlalchemy import func, insert, select

from marketsvc.db_accessor.core import execute
from marketsvc.store.engine import Database
from marketsvc.store.models import Customer, Order
from marketsvc.store.write_work import WriteSuspended
from marketsvc.web.keys import DATABASE


def only_postgresql(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL's writes: SQLite's run in the writer thread")


@contextmanager
def greenlets_entered() -> Iterator[list[greenlet.greenlet]]:
    """Every greenlet other than the main one that is switched into while the block runs."""
    entered: list[greenlet.greenlet] = []  # held: a dead greenlet's id may be reused

    def trace(event: str, args: tuple[greenlet.greenlet, greenlet.greenlet]) -> None:
        target = args[1]
        if event in ("switch", "throw") and target.parent is not None and target not in entered:
            entered.append(target)

    previous = greenlet.settrace(trace)
    try:
        yield entered
    finally:
        greenlet.settrace(previous)


async def names(conn) -> list[str]:
    return list((await execute(conn, select(Customer.name).order_by(Customer.id))).scalars())


async def add_two(conn, first: str, second: str) -> int:
    for name in (first, second):
        await execute(conn, insert(Customer).values(name=name, email=f"{name}@example.com"))
    return len(await names(conn))


async def test_a_placement_takes_the_one_greenlet_path(
    backend, client, admin, new_customer, new_item
) -> None:
    only_postgresql(backend)
    customer, item = await new_customer(), await new_item(stock=3)
    writes = client.app[DATABASE].pg_writes
    before = writes.ran
    body = {"customer_id": customer["id"], "lines": [{"item_id": item["id"], "quantity": 2}]}
    resp = await client.post("/api/v1/orders", json=body, headers=admin)
    assert resp.status == 201, await resp.text()
    assert writes.ran == before + 1
    async with client.app[DATABASE].scan() as conn:
        assert (await conn.execute(select(func.count()).select_from(Order))).scalar_one() == 1


@pytest.fixture
async def database(backend, settings) -> AsyncIterator[Database]:
    only_postgresql(backend)
    database = Database(settings)
    yield database
    await database.dispose()


async def test_a_write_of_many_statements_spawns_one_greenlet(database: Database) -> None:
    await database.change_with(names)  # the pool's first connection, made outside the count
    with greenlets_entered() as entered:
        assert await database.change_with(add_two, "Ada", "Grace") == 2  # three statements
    assert len(entered) == 1
    assert await database.change_with(names) == ["Ada", "Grace"]  # committed


async def test_a_write_that_raises_is_rolled_back(database: Database) -> None:
    async def fails(conn) -> None:
        await add_two(conn, "Ada", "Grace")
        raise LookupError("the work's own error")

    with pytest.raises(LookupError, match="own error"):
        await database.change_with(fails)
    assert await database.change_with(names) == []


async def test_work_that_suspends_is_refused_and_rolled_back(database: Database) -> None:
    async def suspends(conn) -> None:
        await execute(conn, insert(Customer).values(name="Ada", email="ada@example.com"))
        await asyncio.sleep(0)  # a real await, outside the connection: refused

    with pytest.raises(WriteSuspended, match="suspends"):
        await database.change_with(suspends)
    assert await database.change_with(names) == []
