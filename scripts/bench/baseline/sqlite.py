"""SQLite through bare aiosqlite connections, with marketsvc's pragmas.

Reads take a connection from a pool of ``readers``; with one reader (the ``limit`` strategy)
the pool is skipped and every read queues on that connection's thread. Writes: with a
``ThreadWriter`` (``limit``) a whole placement runs as one call in the writer's own thread, on
a ``sqlite3`` connection, placements in turn (SQLite has one writer anyway); otherwise a pooled
aiosqlite connection, one thread hop per statement (``BEGIN IMMEDIATE`` waits in SQLite's busy
handler), as marketsvc does.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
import orjson

from baseline import sql
from baseline.errors import OutOfStock, UnknownCustomer, UnknownItems
from baseline.wire import parts_of, read_parts, split, sqlite_now, sqlite_timestamp

BUSY_TIMEOUT_S = 30
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}",
)
CUSTOMER, CUSTOMERS, ORDER, TOTAL = (
    sql.qmarks(q) for q in (sql.CUSTOMER, sql.CUSTOMERS, sql.ORDER, sql.TOTAL)
)
TOTALS, INSERT_ORDER, TAKE_STOCK, ITEM_EXISTS, INSERT_LINE, INSERT_PART = (
    sql.qmarks(q)
    for q in (
        sql.TOTALS_SQLITE,
        sql.INSERT_ORDER_SQLITE,
        sql.TAKE_STOCK,
        sql.ITEM_EXISTS,
        sql.INSERT_LINE_SQLITE,
        sql.INSERT_PART_SQLITE,
    )
)


class ThreadWriter:
    """One ``sqlite3`` connection in one thread of its own: each call runs whole in that thread."""

    def __init__(self, path: str) -> None:
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="baseline-writer")
        self.conn = self.executor.submit(_connect, path).result()

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, fn, self.conn, *args)

    async def close(self) -> None:
        await self.run(sqlite3.Connection.close)
        self.executor.shutdown()


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


class SqliteStore:
    def __init__(self, readers: list[aiosqlite.Connection], writer: ThreadWriter | None) -> None:
        self.readers = readers
        self.idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for conn in readers:
            self.idle.put_nowait(conn)
        self.only_reader = readers[0] if len(readers) == 1 else None
        self.writer = writer

    @classmethod
    async def open(cls, url: str, readers: int, thread_writer: bool) -> SqliteStore:
        path = url.split(":///", 1)[1]
        connections = []
        for _ in range(readers):
            conn = await aiosqlite.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            for pragma in PRAGMAS:
                await conn.execute(pragma)
            connections.append(conn)
        return cls(connections, ThreadWriter(path) if thread_writer else None)

    async def close(self) -> None:
        for conn in self.readers:
            await conn.close()
        if self.writer is not None:
            await self.writer.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[aiosqlite.Connection]:
        if self.only_reader is not None:
            yield self.only_reader
            return
        conn = await self.idle.get()
        try:
            yield conn
        finally:
            self.idle.put_nowait(conn)

    async def _fetch(self, query: str, params: tuple) -> list:
        if self.only_reader is not None:  # one hop to its thread, no pool
            return list(await self.only_reader.execute_fetchall(query, params))
        async with self.connection() as conn:
            return list(await conn.execute_fetchall(query, params))

    async def customer(self, customer_id: int) -> tuple | None:
        rows = await self._fetch(CUSTOMER, (customer_id,))
        return rows[0] if rows else None

    async def order(self, order_id: int) -> tuple | None:
        rows = await self._fetch(ORDER, (order_id,))
        if not rows:
            return None
        head = rows[0]
        lines = [r[4:] for r in rows if r[4] is not None]
        return head[0], head[1], head[2], sqlite_timestamp(head[3]), *read_parts(lines)

    async def order_total(self, order_id: int) -> int | None:
        rows = await self._fetch(TOTAL, (order_id,))
        return rows[0][1] if rows else None

    async def order_totals(self, order_ids: list[int]) -> dict[int, int]:
        return dict(await self._fetch(TOTALS, (orjson.dumps(order_ids).decode(),)))

    async def place_order(self, customer_id: int, lines: list[tuple[int, int]]) -> tuple:
        placed_at = sqlite_now()
        if self.writer is not None:
            order_id, taken, parts = await self.writer.run(
                _place_in_thread, customer_id, placed_at, lines
            )
            return order_id, customer_id, "pending", sqlite_timestamp(placed_at), taken, parts
        async with self.connection() as conn:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                taken = await _place(conn, customer_id, placed_at, lines)
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
        order_id, taken, parts = taken
        return order_id, customer_id, "pending", sqlite_timestamp(placed_at), taken, parts

    @asynccontextmanager
    async def customer_chunks(self, rows: int) -> AsyncIterator[AsyncIterator[list]]:
        async with self.connection() as conn, conn.execute(CUSTOMERS) as cursor:

            async def chunks() -> AsyncIterator[list]:
                while batch := await cursor.fetchmany(rows):
                    yield batch

            yield chunks()


async def _place(
    conn: aiosqlite.Connection, customer_id: int, placed_at: str, lines: list[tuple[int, int]]
) -> tuple[int, list[tuple], list[dict]]:
    try:
        rows = await conn.execute_fetchall(INSERT_ORDER, (customer_id, placed_at))
    except sqlite3.IntegrityError:
        raise UnknownCustomer() from None
    order_id = next(iter(rows))[0]
    taken, sellers, short = [], [], []
    for item_id, quantity in lines:
        found = list(await conn.execute_fetchall(TAKE_STOCK, (item_id, quantity)))
        if found:
            taken.append((item_id, found[0][0], found[0][1], quantity))
            sellers.append((found[0][2], found[0][3]))
        else:
            short.append(item_id)
    if short:
        unknown = [i for i in short if not await conn.execute_fetchall(ITEM_EXISTS, (i,))]
        raise UnknownItems(unknown) if unknown else OutOfStock(short)
    seller_ids, extra = split(taken, sellers)
    part_ids = {
        s: next(iter(await conn.execute_fetchall(INSERT_PART, (order_id, s, placed_at))))[0]
        for s in seller_ids
    }
    await conn.executemany(INSERT_LINE, _line_rows(order_id, taken, extra, part_ids))
    return order_id, taken, parts_of(part_ids, taken, sellers)


def _line_rows(
    order_id: int, taken: list[tuple], extra: list[tuple], part_ids: dict[int, int]
) -> list[tuple]:
    return [
        (order_id, *line, part_ids[seller_id], bps, commission)
        for line, (seller_id, bps, commission) in zip(taken, extra, strict=True)
    ]


def _place_in_thread(
    conn: sqlite3.Connection, customer_id: int, placed_at: str, lines: list[tuple[int, int]]
) -> tuple[int, list[tuple], list[dict]]:
    """``_place`` as one call in the writer's thread, in one ``BEGIN IMMEDIATE`` transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        try:
            order_id = conn.execute(INSERT_ORDER, (customer_id, placed_at)).fetchall()[0][0]
        except sqlite3.IntegrityError:
            raise UnknownCustomer() from None
        taken, sellers, short = [], [], []
        for item_id, quantity in lines:
            found = next(iter(conn.execute(TAKE_STOCK, (item_id, quantity)).fetchall()), None)
            if found:
                taken.append((item_id, found[0], found[1], quantity))
                sellers.append((found[2], found[3]))
            else:
                short.append(item_id)
        if short:
            unknown = [i for i in short if not conn.execute(ITEM_EXISTS, (i,)).fetchone()]
            raise UnknownItems(unknown) if unknown else OutOfStock(short)
        seller_ids, extra = split(taken, sellers)
        part_ids = {
            s: conn.execute(INSERT_PART, (order_id, s, placed_at)).fetchall()[0][0]
            for s in seller_ids
        }
        conn.executemany(INSERT_LINE, _line_rows(order_id, taken, extra, part_ids))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return order_id, taken, parts_of(part_ids, taken, sellers)
