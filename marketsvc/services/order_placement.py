"""Placing an order: the order, its seller orders and lines, the stock it takes and the events
that tell of it, in one write transaction (on SQLite, run whole in the writer thread)."""

from __future__ import annotations

from collections.abc import Sequence

from marketsvc.db_accessor import orders
from marketsvc.db_accessor.core import Executor
from marketsvc.db_accessor.orders import OrderView
from marketsvc.events import record
from marketsvc.schemas.orders import LineRequest
from marketsvc.store.engine import Database


async def place_order(
    database: Database, customer_id: int, lines: Sequence[LineRequest]
) -> OrderView:
    return await database.change_with(_place, customer_id, lines)


async def _place(conn: Executor, customer_id: int, lines: Sequence[LineRequest]) -> OrderView:
    order = await orders.place_order(conn, customer_id, lines, announce=record.order_placed)
    await record.sold_out(conn, order)
    return order
