"""On PostgreSQL a write given to ``Database.change_with`` runs whole in one greenlet
(store/pg_writes.py): placements take that path, it spawns one greenlet however many statements
the write runs, a failed write rolls back, and a write that awaits something else is refused.
A statement seen before runs compiled on the DBAPI cursor: a placement's four all do, with the
rows, types and errors SQLAlchemy's own path gives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import greenlet
import pytest
from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

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


async def test_a_placements_statements_run_compiled_and_fail_as_before(
    backend, client, admin, new_customer, new_item
) -> None:
    only_postgresql(backend)
    customer, item = await new_customer(), await new_item(stock=3)
    compiled = client.app[DATABASE].pg_writes.statements
    line = {"item_id": item["id"], "quantity": 1}
    body = {"customer_id": customer["id"], "lines": [line]}
    resp = await client.post("/api/v1/orders", json=body, headers=admin)  # statements seen once
    assert resp.status == 201, await resp.text()

    before = compiled.ran
    resp = await client.post("/api/v1/orders", json=body, headers=admin)
    assert resp.status == 201, await resp.text()
    # the order with its stock (one statement), the seller order, the lines with the event
    assert compiled.ran == before + 3
    order = await resp.json()
    assert order["lines"][0]["item_id"] == item["id"]
    assert order["placed_at"].endswith("Z")

    before = compiled.ran
    unknown = {"customer_id": customer["id"] + 1000, "lines": [line]}
    resp = await client.post("/api/v1/orders", json=unknown, headers=admin)
    assert resp.status == 422, await resp.text()  # the foreign key's IntegrityError, mapped
    assert "does not exist" in await resp.text()
    assert compiled.ran == before + 1

    short = {"customer_id": customer["id"], "lines": [{"item_id": item["id"], "quantity": 2}]}
    resp = await client.post("/api/v1/orders", json=short, headers=admin)
    assert resp.status == 409, await resp.text()  # one unit left
    short["customer_id"] += 1000
    resp = await client.post("/api/v1/orders", json=short, headers=admin)
    assert resp.status == 422, await resp.text()  # the unknown customer first, as before
    resp = await client.get(f"/api/v1/items/{item['id']}", headers=admin)
    assert (await resp.json())["stock"] == 1  # the failed placements took none
    async with client.app[DATABASE].scan() as conn:  # and left no order behind
        assert (await conn.execute(select(func.count()).select_from(Order))).scalar_one() == 2


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


_ADD_CUSTOMER = insert(Customer).returning(Customer.id, Customer.name)
_RENAME = update(Customer).where(Customer.email == bindparam("old")).values(name=bindparam("new"))
_PLACE = insert(Order).returning(Order.placed_at)
_COUNT = text("SELECT count(*) AS customers, min(name) AS first FROM customers")


async def test_compiled_statements_answer_as_sqlalchemys_path(database: Database) -> None:
    async def run(conn, n: int) -> tuple:
        added = (await execute(conn, _ADD_CUSTOMER, {"name": f"C{n}", "email": f"{n}@x.io"})).one()
        renamed = await execute(conn, _RENAME, {"old": f"{n}@x.io", "new": f"D{n}"})
        values = {"customer_id": added.id, "status": "pending", "placed_at": datetime.now(UTC)}
        placed = (await execute(conn, _PLACE, values)).scalar_one()
        counted = (await execute(conn, _COUNT)).one()
        return added._asdict(), renamed.rowcount, placed, counted._asdict()

    compiled = database.pg_writes.statements
    first = await database.change_with(run, 1)  # each statement seen once: SQLAlchemy's path
    before = compiled.ran
    second = await database.change_with(run, 2)
    assert compiled.ran == before + 4
    assert first[0].keys() == second[0].keys() == {"id", "name"}
    assert (first[0]["name"], second[0]["name"]) == ("C1", "C2")
    assert first[1] == second[1] == 1  # the UPDATE's rowcount
    assert first[2].tzinfo is second[2].tzinfo is UTC  # aware, as UTCDateTime gives it
    assert first[3] == {"customers": 1, "first": "D1"}
    assert second[3] == {"customers": 2, "first": "D1"}


async def test_a_compiled_statements_error_is_sqlalchemys(database: Database) -> None:
    async def add(conn, email: str) -> None:
        await execute(conn, _ADD_CUSTOMER, {"name": "Ada", "email": email})

    await database.change_with(add, "ada@example.com")
    compiled = database.pg_writes.statements
    before = compiled.ran
    with pytest.raises(IntegrityError) as raised:  # the unique email
        await database.change_with(add, "ada@example.com")
    assert compiled.ran == before + 1
    assert raised.value.orig.sqlstate == "23505"  # the adapter's error, with the server's code
    assert await database.change_with(add, "grace@example.com") is None  # the pool is sound
