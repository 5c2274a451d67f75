"""PostgreSQL through a bare asyncpg pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from baseline import sql
from baseline.errors import OutOfStock, UnknownCustomer, UnknownItems
from baseline.wire import parts_of, read_parts, split, timestamp


class PgStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, url: str, size: int, overflow: int, seconds: float) -> PgStore:
        dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        pool = await asyncpg.create_pool(
            dsn,
            min_size=size,
            max_size=size + overflow,
            timeout=seconds,
            command_timeout=seconds,
            server_settings={"application_name": "marketsvc-baseline"},
        )
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def customer(self, customer_id: int) -> tuple | None:
        return await self.pool.fetchrow(sql.CUSTOMER, customer_id)

    async def order(self, order_id: int) -> tuple | None:
        rows = await self.pool.fetch(sql.ORDER, order_id)
        if not rows:
            return None
        head = rows[0]
        lines = [tuple(r[4:]) for r in rows if r[4] is not None]
        return head[0], head[1], head[2], timestamp(head[3]), *read_parts(lines)

    async def order_total(self, order_id: int) -> int | None:
        row = await self.pool.fetchrow(sql.TOTAL, order_id)
        return None if row is None else row[1]

    async def order_totals(self, order_ids: list[int]) -> dict[int, int]:
        return dict(await self.pool.fetch(sql.TOTALS_PG, order_ids))

    async def place_order(self, customer_id: int, lines: list[tuple[int, int]]) -> tuple:
        """``lines`` are ``(item_id, quantity)`` sorted by item id, so locks come in one order."""
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                order_id, placed_at = await conn.fetchrow(sql.INSERT_ORDER_PG, customer_id)
            except asyncpg.ForeignKeyViolationError:
                raise UnknownCustomer() from None
            taken, sellers, short = [], [], []
            for item_id, quantity in lines:
                row = await conn.fetchrow(sql.TAKE_STOCK, item_id, quantity)
                if row is None:
                    short.append(item_id)
                else:
                    taken.append((item_id, row[0], row[1], quantity))
                    sellers.append((row[2], row[3]))
            if short:
                await _raise_short(conn, short)
            seller_ids, extra = split(taken, sellers)
            rows = await conn.fetch(sql.INSERT_PARTS_PG, order_id, placed_at, seller_ids)
            part_ids = {seller_id: part_id for part_id, seller_id in rows}
            columns = list(zip(*taken, strict=True))
            parts_column = [part_ids[seller_id] for seller_id, _, _ in extra]
            rates, commissions = [e[1] for e in extra], [e[2] for e in extra]
            await conn.execute(
                sql.INSERT_LINES_PG, order_id, *columns, parts_column, rates, commissions
            )
        parts = parts_of(part_ids, taken, sellers)
        return order_id, customer_id, "pending", timestamp(placed_at), taken, parts

    @asynccontextmanager
    async def customer_chunks(self, rows: int) -> AsyncIterator[AsyncIterator[list]]:
        async with self.pool.acquire() as conn, conn.transaction():
            cursor = await conn.cursor(sql.CUSTOMERS)

            async def chunks() -> AsyncIterator[list]:
                while batch := await cursor.fetch(rows):
                    yield batch

            yield chunks()


async def _raise_short(conn: asyncpg.Connection, short: list[int]) -> None:
    unknown = [i for i in short if await conn.fetchval(sql.ITEM_EXISTS, i) is None]
    if unknown:
        raise UnknownItems(unknown)
    raise OutOfStock(short)
