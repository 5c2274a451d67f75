"""Seller orders: one seller's part of an order. A part moves only with its order's row locked,
and the order's status past ``paid`` is derived from its parts in the same transaction.

Locking: every change to an order or its parts first locks the order's row (``lock_order``:
``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite writers run one at a time), then its parts,
then items in id order (stock). Two sellers shipping parts of one order, or an admin cancelling
while a seller accepts, take turns; each statement after the lock reads what the one before it
committed (READ COMMITTED), so the derived status always counts every part's latest status.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from marketsvc.db_accessor.core import Executor, execute
from marketsvc.db_accessor.paging import DEFAULT_CHUNK_ROWS, ChunkStream, page, stream_chunks
from marketsvc.errors import (
    IllegalPartTransition,
    InvalidInput,
    OrderNotFound,
    SellerOrderNotFound,
)
from marketsvc.store.models import Order, OrderLine, SellerOrder, line_total_of, utcnow

# target -> the statuses a seller (or an admin) may move a part to it from
PART_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "accepted": ("awaiting_acceptance",),
    "shipped": ("accepted",),
    "delivered": ("shipped",),
    "refused": ("awaiting_acceptance", "accepted"),
}
SHIPPED = ("shipped", "delivered")
# an admin may cancel a paid order only while no part of it is further than this
BEFORE_ACCEPTANCE = ("pending", "awaiting_acceptance", "refused")


@dataclass(frozen=True)
class SellerLine:
    item_id: int
    name: str
    unit_price_cents: int
    quantity: int
    commission_bps: int
    commission_cents: int

    @property
    def line_total_cents(self) -> int:
        return line_total_of(self)


@dataclass(frozen=True)
class SellerOrderView:
    """A seller order with its lines, as read by one joined query (or built from its order)."""

    id: int
    order_id: int
    seller_id: int
    customer_id: int
    status: str
    carrier: str | None
    tracking_number: str | None
    refund_cents: int
    placed_at: datetime
    lines: list[SellerLine]

    @property
    def subtotal_cents(self) -> int:
        return sum(map(line_total_of, self.lines))

    @property
    def commission_cents(self) -> int:
        return sum(line.commission_cents for line in self.lines)


def derived_status(parts: Iterable[str]) -> str:
    """The status of a paid order whose parts are ``parts``: ``refused`` when all are refused,
    else from the others: ``delivered`` when all are delivered, ``shipped`` when all have
    shipped, ``partially_shipped`` when some have, ``paid`` when none has."""
    live = [status for status in parts if status != "refused"]
    if not live:
        return "refused"
    if all(status == "delivered" for status in live):
        return "delivered"
    shipped = [status in SHIPPED for status in live]
    if all(shipped):
        return "shipped"
    return "partially_shipped" if any(shipped) else "paid"


async def lock_order(db: Executor, order_id: int, scope: int | None = None) -> str:
    """Lock the order's row for the rest of the transaction; its status. ``scope``: the only
    customer whose order it may be (another's: 404)."""
    stmt = select(Order.status).where(Order.id == order_id).with_for_update()
    if scope is not None:
        stmt = stmt.where(Order.customer_id == scope)
    status = (await execute(db, stmt)).scalar_one_or_none()
    if status is None:
        raise OrderNotFound(order_id)
    return str(status)


_LINES_OF_PART = (
    select(func.coalesce(func.sum(OrderLine.unit_price_cents * OrderLine.quantity), 0))
    .where(OrderLine.seller_order_id == SellerOrder.id)
    .scalar_subquery()
)


async def start_parts(db: Executor, order_id: int) -> None:
    """The order is paid: its pending parts await their sellers' acceptance."""
    await execute(
        db,
        update(SellerOrder)
        .where(SellerOrder.order_id == order_id, SellerOrder.status == "pending")
        .values(status="awaiting_acceptance", updated_at=utcnow()),
    )


async def cancel_parts(db: Executor, order_id: int, was_paid: bool) -> None:
    """The order is cancelled: each part not refused already is too, its subtotal owed back to
    the customer if the order was paid."""
    await execute(
        db,
        update(SellerOrder)
        .where(SellerOrder.order_id == order_id, SellerOrder.status != "refused")
        .values(
            status="cancelled", updated_at=utcnow(), refund_cents=_LINES_OF_PART if was_paid else 0
        ),
    )


async def parts_past_acceptance(db: Executor, order_id: int) -> list[tuple[int, str]]:
    """(id, status) of the order's parts a seller has accepted (or shipped, or delivered)."""
    stmt = (
        select(SellerOrder.id, SellerOrder.status)
        .where(SellerOrder.order_id == order_id, SellerOrder.status.not_in(BEFORE_ACCEPTANCE))
        .order_by(SellerOrder.id)
    )
    return [(row.id, row.status) for row in await execute(db, stmt)]


async def follow_parts(db: Executor, order_id: int, current: str) -> str | None:
    """Set the (locked) order's status to what its parts say; the new status, or ``None`` if
    it stays ``current``."""
    parts = await execute(db, select(SellerOrder.status).where(SellerOrder.order_id == order_id))
    status = derived_status(parts.scalars())
    if status == current:
        return None
    await execute(db, update(Order).where(Order.id == order_id).values(status=status))
    return status


@dataclass(frozen=True)
class PartMove:
    """What moving a part did: the part after, and its order's new status (``None``: same)."""

    part: SellerOrderView
    order_status: str | None


async def move_part(
    session: AsyncSession,
    part_id: int,
    target: str,
    scope: int | None,
    shipment: dict[str, str] | None = None,
) -> PartMove:
    """Move the part to ``target`` if its status allows it, its order's row locked first.
    ``scope``: the only seller whose part it may be (another's: 404); ``shipment``: carrier and
    tracking number, for ``shipped``. Refusing records the part's subtotal as owed back to the
    customer; its stock goes back (``orders.restore_stock``, by the caller)."""
    head = select(SellerOrder.order_id).where(SellerOrder.id == part_id)
    if scope is not None:
        head = head.where(SellerOrder.seller_id == scope)
    order_id = (await execute(session, head)).scalar_one_or_none()
    if order_id is None:
        raise SellerOrderNotFound(part_id)
    order_status = await lock_order(session, order_id)
    values: dict[str, Any] = {"status": target, "updated_at": utcnow()}
    if target == "shipped":
        if not shipment:
            raise InvalidInput(
                {f"body.{name}": ["Required to ship."] for name in ("carrier", "tracking_number")}
            )
        values |= shipment
    if target == "refused":
        values["refund_cents"] = _LINES_OF_PART
    moved = await execute(
        session,
        update(SellerOrder)
        .where(SellerOrder.id == part_id, SellerOrder.status.in_(PART_TRANSITIONS[target]))
        .values(values)
        .returning(SellerOrder.id),
    )
    if moved.first() is None:
        current = await session.scalar(select(SellerOrder.status).where(SellerOrder.id == part_id))
        raise IllegalPartTransition(part_id, str(current), target)
    new_status = await follow_parts(session, order_id, order_status)
    return PartMove(await get_seller_order(session, part_id), new_status)


_PART_ROWS = (
    select(
        SellerOrder.id,
        SellerOrder.order_id,
        SellerOrder.seller_id,
        Order.customer_id,
        SellerOrder.status,
        SellerOrder.carrier,
        SellerOrder.tracking_number,
        SellerOrder.refund_cents,
        SellerOrder.placed_at,
        OrderLine.item_id,
        OrderLine.name,
        OrderLine.unit_price_cents,
        OrderLine.quantity,
        OrderLine.commission_bps,
        OrderLine.commission_cents,
    )
    .join(Order, Order.id == SellerOrder.order_id)
    .join(OrderLine, OrderLine.seller_order_id == SellerOrder.id)
    .where(SellerOrder.id == bindparam("part_id"))
    .order_by(OrderLine.item_id)
)
_PART_ROWS_IN_SCOPE = _PART_ROWS.where(SellerOrder.seller_id == bindparam("scope"))


async def get_seller_order(db: Executor, part_id: int, scope: int | None = None) -> SellerOrderView:
    """The part with its lines, one query; a seller caller (``scope``) sees only its own."""
    if scope is None:
        result = await execute(db, _PART_ROWS, {"part_id": part_id})
    else:
        result = await execute(db, _PART_ROWS_IN_SCOPE, {"part_id": part_id, "scope": scope})
    rows = result.all()
    if not rows:
        raise SellerOrderNotFound(part_id)
    first = rows[0]
    lines = [
        SellerLine(row.item_id, row.name, row.unit_price_cents, row.quantity, row.commission_bps,
                   row.commission_cents)
        for row in rows
    ]  # fmt: skip
    return SellerOrderView(
        first.id, first.order_id, first.seller_id, first.customer_id, first.status, first.carrier,
        first.tracking_number, first.refund_cents, first.placed_at, lines,
    )  # fmt: skip


def parts_of_order(order: Any) -> list[SellerOrderView]:
    """An ``orders.OrderView``'s parts as seller orders, without a query (for their events)."""
    return [
        SellerOrderView(
            part.id, order.id, part.seller_id, order.customer_id, part.status, part.carrier,
            part.tracking_number, 0, order.placed_at,
            [
                SellerLine(line.item_id, line.name, line.unit_price_cents, line.quantity,
                           line.commission_bps, line.commission_cents)
                for line in order.lines
                if line.seller_order_id == part.id
            ],
        )
        for part in order.seller_orders
    ]  # fmt: skip


@dataclass(frozen=True)
class SellerOrderFilter:
    """Which parts a list shows; ``scope`` is the only seller a seller caller may see."""

    seller_id: int | None = None
    status: str | None = None
    placed_after: datetime | None = None
    placed_before: datetime | None = None
    scope: int | None = None


def seller_orders_query(
    where: SellerOrderFilter, after_id: int = 0, limit: int | None = None
) -> Select[Any]:
    stmt = select(SellerOrder)
    for seller_id in (where.seller_id, where.scope):  # another seller's id: no rows
        if seller_id is not None:
            stmt = stmt.where(SellerOrder.seller_id == seller_id)
    if where.status is not None:
        stmt = stmt.where(SellerOrder.status == where.status)
    if where.placed_after is not None:
        stmt = stmt.where(SellerOrder.placed_at >= where.placed_after)
    if where.placed_before is not None:
        stmt = stmt.where(SellerOrder.placed_at < where.placed_before)
    stmt = page(stmt, SellerOrder.id, after_id, limit)
    return stmt.options(selectinload(SellerOrder.lines))


async def stream_seller_orders(
    session: AsyncSession,
    *,
    after_id: int = 0,
    limit: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    **filters: Any,
) -> ChunkStream[SellerOrder]:
    """Parts matching ``filters`` (``SellerOrderFilter``'s fields) in id order, in chunks;
    selectinload fetches each chunk's lines in one more query."""
    stmt = seller_orders_query(SellerOrderFilter(**filters), after_id, limit)
    async with aclosing(stream_chunks(session, stmt, chunk_rows)) as chunks:
        async for chunk in chunks:
            yield chunk
