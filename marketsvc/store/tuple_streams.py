"""Streams of plain tuples on the driver's own cursor, for lists dumped by position.

Why: a stream through SQLAlchemy's result (``AsyncConnection.stream``, then ``partitions()``)
builds a ``Row`` for every row and runs the result's machinery around it. In-process, streaming
100,000 customers and dumping them (``schemas.dumping.row_dumper``) cost 2.8-3.8 us of CPU a
row on SQLite and 3.1-3.3 on PostgreSQL that way; on the driver's cursor, 2.0-2.2 and 1.65-1.8.

The statement is compiled once per shape, found by SQLAlchemy's cache key (the accessors build
a new statement object per request), and run with this statement's values. Rows are the
driver's (tuples; asyncpg's ``Record``s), with SQLAlchemy's result processors applied when a
column has one. SQLite: aiosqlite's cursor, inside the session's transaction. PostgreSQL: an
asyncpg cursor in a read-only transaction on the session's connection (a cursor needs one).

Whoever iterates a stream closes it (``aclosing``): closing a generator does not close one it
iterates, and a PostgreSQL stream left open holds its read-only transaction on a connection the
session has already given back (a HEAD on the customer list, then the next request on that
connection: "cannot use Connection.transaction() in a manually started transaction", a 500).

A driver error before the first chunk runs the stream again on SQLAlchemy's path, which raises
as it always has (an outage is a 503); after it, the stream is cut as any other would be. The
slow-query log gets the time to the first chunk (``round_trip_ms``).
``tests/test_tuple_streams.py`` checks that the path is taken and gives SQLAlchemy's rows.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from typing import Any

import asyncpg
from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler

from marketsvc.store.compiled_select import CompiledSelect, Unsupported
from marketsvc.store.slow_queries import log_slow_query, threshold_of

DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, sqlite3.Error, OSError)
MAX_SHAPES = 256

Shape = tuple[SQLCompiler, CompiledSelect]


class TupleStreamStats:
    """How often each path ran (tests assert the driver's cursor is used)."""

    __slots__ = ("driver", "fell_back", "sqlalchemy")

    def __init__(self) -> None:
        self.driver = 0
        self.sqlalchemy = 0  # a statement that cannot be compiled here
        self.fell_back = 0  # the driver failed before the first chunk


STATS = TupleStreamStats()
_shapes: dict[tuple[str, Any], Shape | None] = {}


def _compiled(stmt: Select[Any], dialect: Dialect) -> tuple[CompiledSelect, list[Any]] | None:
    """The statement's shape compiled for ``dialect`` (once) and its SQL values here."""
    key = stmt._generate_cache_key()
    if key is None:
        return None
    entry_key = (dialect.name, key.key)
    if entry_key not in _shapes:
        if len(_shapes) >= MAX_SHAPES:
            _shapes.clear()
        # compiled with its cache key, for the values of later statements of the same shape
        compiled = stmt._compiler(dialect, cache_key=key)
        assert isinstance(compiled, SQLCompiler)  # a Select's, always
        try:
            _shapes[entry_key] = (compiled, CompiledSelect(stmt, dialect, compiled))
        except Unsupported:
            _shapes[entry_key] = None
    if (entry := _shapes[entry_key]) is None:
        return None
    compiled, shape = entry
    params = compiled.construct_params(extracted_parameters=key.bindparams, escape_names=False)
    try:
        return shape, shape.query(dict(params))[1]
    except Unsupported:
        return None


async def stream_tuples(
    session: AsyncSession, stmt: Select[Any], chunk_rows: int
) -> AsyncGenerator[Sequence[Sequence[Any]], None]:
    """Chunks of ``stmt``'s rows, each a sequence in the statement's column order."""
    conn = await session.connection()
    found = _compiled(stmt, conn.dialect)
    if found is None:
        STATS.sqlalchemy += 1
        async with aclosing(sqlalchemy_rows(session, stmt, chunk_rows)) as rows:
            async for chunk in rows:
                yield chunk
        return
    shape, values = found
    driver = (await conn.get_raw_connection()).driver_connection
    if conn.dialect.name == "sqlite":
        chunks = _sqlite(driver, shape, values, chunk_rows)
    else:
        chunks = _postgresql(driver, shape, values, chunk_rows)
    try:
        started = time.perf_counter()
        try:
            first = await anext(chunks, None)
        except TimeoutError:  # an outage already (outages.classify)
            raise
        except DRIVER_ERRORS:
            STATS.fell_back += 1
            await chunks.aclose()
            async with aclosing(sqlalchemy_rows(session, stmt, chunk_rows)) as rows:
                async for chunk in rows:
                    yield chunk
            return
        if (elapsed := time.perf_counter() - started) > threshold_of(conn.dialect):
            log_slow_query("round_trip_ms", elapsed, shape.sql)
        STATS.driver += 1
        if first is not None:
            yield first
            async for chunk in chunks:
                yield chunk
    finally:
        await chunks.aclose()


async def _sqlite(
    driver: Any, shape: CompiledSelect, values: list[Any], size: int
) -> AsyncGenerator[list[Any], None]:
    async with driver.execute(shape.sql, values) as cursor:
        while rows := await cursor.fetchmany(size):
            yield shape.rows(rows)


async def _postgresql(
    driver: Any, shape: CompiledSelect, values: list[Any], size: int
) -> AsyncGenerator[list[Any], None]:
    async with driver.transaction(readonly=True):
        if not shape.described:  # once per statement: the columns' types
            prepared = await driver.prepare(shape.sql)
            shape.know_column_types([a.type.oid for a in prepared.get_attributes()])
        cursor = await driver.cursor(shape.sql, *values)
        while rows := await cursor.fetch(size):
            yield shape.rows(rows)


async def sqlalchemy_rows(
    session: AsyncSession, stmt: Select[Any], chunk_rows: int
) -> AsyncGenerator[Sequence[Any], None]:
    """Chunks of SQLAlchemy ``Row``s from a server-side cursor on the session's connection."""
    result = await (await session.connection()).stream(stmt.execution_options(yield_per=chunk_rows))
    try:
        async for chunk in result.partitions():
            yield chunk
    finally:
        await result.close()
