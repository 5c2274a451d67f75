"""Streams on the driver's own cursor (store.tuple_streams): the path is taken, it gives the rows
SQLAlchemy's path gives (values converted as SQLAlchemy would), each statement's own values
under one cached shape, and a driver error before the first row falls back to SQLAlchemy's
path, which raises SQLAlchemy's error."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import column, select, table
from sqlalchemy.exc import DBAPIError

from marketsvc.db_accessor import customers
from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from marketsvc.store.models import Order
from marketsvc.store.seed import SeedPlan
from marketsvc.store.tuple_streams import STATS, stream_tuples


async def _streamed(database: Database, stmt: Any, chunk_rows: int = 7) -> list[tuple[Any, ...]]:
    async with database.stream() as session:
        return [
            tuple(row) async for chunk in stream_tuples(session, stmt, chunk_rows) for row in chunk
        ]


async def _executed(database: Database, stmt: Any) -> list[tuple[Any, ...]]:
    async with database.stream() as session:
        return [tuple(row) for row in (await session.execute(stmt)).all()]


async def test_the_driver_path_gives_sqlalchemys_rows(seeded_client, settings: Settings) -> None:
    await seeded_client(SeedPlan(customers=40, items=10, orders=30, lines_per_order=2))
    database = Database(settings)
    try:
        before = STATS.driver
        for stmt in (
            customers.customers_query(),
            customers.customers_query(after_id=25),  # the same shape, its own value
            customers.customers_query(after_id=3, limit=5),
            select(Order.id, Order.placed_at, Order.status).order_by(Order.id),  # a datetime
        ):
            streamed = await _streamed(database, stmt)
            assert streamed == await _executed(database, stmt)
            assert streamed, "a statement with rows"
        assert STATS.driver == before + 4
        assert [row[0] for row in await _streamed(database, customers.customers_query(25))] == [
            *range(26, 41)
        ]
    finally:
        await database.dispose()


async def test_the_customer_list_takes_the_driver_path(seeded_client, admin) -> None:
    _, client = await seeded_client(SeedPlan(customers=30, items=5, orders=5, lines_per_order=1))
    before = STATS.driver
    resp = await client.get("/api/v1/customers", headers=admin)
    assert resp.status == 200
    assert [c["id"] for c in await resp.json()] == [*range(1, 31)]
    resp = await client.get("/api/v1/customers?limit=4&after_id=10", headers=admin)
    assert [c["id"] for c in await resp.json()] == [11, 12, 13, 14]
    assert STATS.driver == before + 2


async def test_a_driver_error_before_the_first_row_raises_sqlalchemys(
    settings: Settings,
) -> None:
    database = Database(settings)
    missing = select(column("x")).select_from(table("no_such_table"))
    try:
        before = STATS.fell_back
        with pytest.raises(DBAPIError):
            await _streamed(database, missing)
        assert STATS.fell_back == before + 1
    finally:
        await database.dispose()


async def test_a_stream_closed_early_ends_its_transaction(
    seeded_client, settings: Settings, backend: str
) -> None:
    """What a HEAD on the customer list does: the first chunk, then the stream closed. On
    PostgreSQL the stream's read-only transaction must end right then, before the session gives
    its connection back; a generator around the stream, closed, left it open until the garbage
    collector came round, and the next request on that connection got a 500 ("cannot use
    Connection.transaction() in a manually started transaction")."""
    if backend != "postgresql":
        pytest.skip("the driver's own transaction is PostgreSQL's: SQLite's is the session's")
    await seeded_client(SeedPlan(customers=40, items=10, orders=0))
    database = Database(settings)
    try:
        async with database.stream() as session:
            stream = customers.stream_customers(session, chunk_rows=7)
            assert await anext(stream)
            raw = await (await session.connection()).get_raw_connection()
            assert raw.driver_connection.is_in_transaction()
            await stream.aclose()
            assert not raw.driver_connection.is_in_transaction()
    finally:
        await database.dispose()


async def test_a_connection_given_back_in_a_transaction_is_not_handed_out(
    settings: Settings, backend: str
) -> None:
    """Whatever leaves a transaction open that SQLAlchemy did not start (and so does not roll
    back), the pool's checkout discards that connection: the next user gets one that is not in
    a transaction, not a 500 on its BEGIN (``engine._replace_connections_the_server_closed``)."""
    if backend != "postgresql":
        pytest.skip("asyncpg's connections: SQLite's are the writer's and the reader's own")
    database = Database(settings)
    try:
        async with database.stream() as session:
            raw = await (await session.connection()).get_raw_connection()
            left = raw.driver_connection
            await left.execute("BEGIN READ ONLY")  # as a stream's own transaction, left open
        async with database.stream() as session:
            assert (await session.execute(select(1))).scalar() == 1
            raw = await (await session.connection()).get_raw_connection()
            assert raw.driver_connection is not left
    finally:
        await database.dispose()
