"""Orders: placement that can never oversell, reads with their lines, totals, the lifecycle."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Executable,
    Result,
    Select,
    Update,
    any_,
    bindparam,
    case,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from marketsvc.db_accessor import outbox, sellers
from marketsvc.db_accessor.core import Executor, dialect_name, execute
from marketsvc.db_accessor.customers import customer_exists
from marketsvc.db_accessor.paging import DEFAULT_CHUNK_ROWS, ChunkStream, page, stream_chunks
from marketsvc.errors import (
    CustomerNotFound,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    OrderNotFound,
    OutOfStock,
)
from marketsvc.schemas.orders import LineRequest
from marketsvc.store.models import Item, Order, OrderLine, line_total_of, order_total_of, utcnow

# target status -> the statuses it may be reached from
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": (),
    "paid": ("pending",),
    "shipped": ("paid",),
    "delivered": ("shipped",),
    "cancelled": ("pending", "paid"),
}
CUSTOMER_MAY_CANCEL = ("pending",)


@dataclass(frozen=True)
class OrderFilter:
    """Which orders a list shows; ``scope`` is the only customer a customer caller may see."""

    customer_id: int | None = None
    status: str | None = None
    placed_after: datetime | None = None
    placed_before: datetime | None = None
    scope: int | None = None


Announce = Callable[["OrderView"], dict[str, Any]]


async def place_order(
    db: Executor, customer_id: int, lines: Sequence[LineRequest], announce: Announce | None = None
) -> OrderView:
    """Write the order, take the stock, write the lines: three statements, whatever the lines.

    ``announce``: the row of the event that tells of the order (``outbox.creation_row``),
    written with the lines: on PostgreSQL in the same statement, so the event costs no round
    trip of its own.

    The stock of every line drops in one conditional UPDATE (``stock >= quantity`` per item), so
    two buyers can never both take the last unit; on PostgreSQL it first locks the items in id
    order, so two orders never wait on each other's rows (deadlock). A line short of stock (or
    an unknown customer or item) raises, and the caller's transaction rolls back whatever the
    other statements did.
    """
    placed_at = utcnow()
    values = {"customer_id": customer_id, "status": "pending", "placed_at": placed_at}
    try:
        order_id = (await execute(db, _INSERT_ORDER, values)).scalar_one()
    except IntegrityError as exc:
        if "foreign key" not in str(exc.orig).lower():
            raise
        unknown = {"body.customer_id": [f"Customer {customer_id} does not exist."]}
        raise InvalidInput(unknown) from None
    taken = {row.id: row for row in await execute(db, *_take_stock(lines))}
    if len(taken) < len(lines):
        short = [line for line in lines if line.item_id not in taken]
        await _raise_unknown_items(db, short)
        await sellers.raise_if_suspended(db, [line.item_id for line in short])
        raise OutOfStock(line.item_id for line in short)
    placed = [
        PlacedLine(line.item_id, taken[line.item_id].name, taken[line.item_id].price_cents,
                   line.quantity)
        for line in lines
    ]  # fmt: skip
    sold_out = tuple(item_id for item_id, row in taken.items() if row.stock == 0)
    order = OrderView(order_id, customer_id, "pending", placed_at, placed, sold_out)
    if announce is not None and dialect_name(db) == "postgresql":
        await execute(db, _LINES_AND_EVENT, _line_arrays(order_id, placed) | announce(order))
        return order
    await execute(db, _INSERT_LINES, [{"order_id": order_id, **line._asdict()} for line in placed])
    if announce is not None:
        await outbox.insert_row(db, announce(order))
    return order


def _line_arrays(order_id: int, placed: Sequence[PlacedLine]) -> dict[str, Any]:
    item_ids, names, prices, quantities = zip(*placed, strict=True)
    return {
        "order_id": order_id,
        "item_ids": list(item_ids),
        "names": list(names),
        "prices": list(prices),
        "quantities": list(quantities),
    }


# PostgreSQL: the lines (one row per array element) and the order's event, in one statement
_LINES_AND_EVENT = text(
    "WITH lines AS ("
    " INSERT INTO order_lines (order_id, item_id, name, unit_price_cents, quantity)"
    " SELECT :order_id, * FROM unnest(CAST(:item_ids AS BIGINT[]), CAST(:names AS VARCHAR[]),"
    " CAST(:prices AS BIGINT[]), CAST(:quantities AS INTEGER[])))"
    f" INSERT INTO events ({', '.join(outbox.EVENT_COLUMNS)})"
    f" VALUES ({', '.join(':' + c for c in outbox.EVENT_COLUMNS)})"
)


class PlacedLine(NamedTuple):
    item_id: int
    name: str
    unit_price_cents: int
    quantity: int

    @property
    def line_total_cents(self) -> int:
        return line_total_of(self)


_INSERT_ORDER = insert(Order).returning(Order.id)
_INSERT_LINES = insert(OrderLine)


def _take_stock(lines: Sequence[LineRequest]) -> tuple[Update, dict[str, int]]:
    params = {}
    for n, line in enumerate(lines):
        params[f"item_{n}"], params[f"quantity_{n}"] = line.item_id, line.quantity
    return _take_stock_statement(len(lines)), params


@cache  # one statement per line count (at most MAX_LINES), built and compiled once
def _take_stock_statement(count: int) -> Update:
    ids = [bindparam(f"item_{n}", type_=Item.id.type) for n in range(count)]
    quantities = [bindparam(f"quantity_{n}", type_=Item.stock.type) for n in range(count)]
    wanted = case(*zip(ids, quantities, strict=True), value=Item.id)
    in_lock_order = select(Item.id).where(Item.id.in_(ids)).order_by(Item.id).with_for_update()
    return (
        update(Item)
        .where(Item.id.in_(in_lock_order), Item.stock >= wanted, sellers.ITEM_SELLER_ACTIVE)
        .values(stock=Item.stock - wanted)
        .returning(Item.id, Item.name, Item.price_cents, Item.stock)
    )


async def _raise_unknown_items(db: Executor, short: Sequence[LineRequest]) -> None:
    ids = [line.item_id for line in short]
    known = set((await execute(db, select(Item.id).where(Item.id.in_(ids)))).scalars())
    unknown = {
        f"body.lines.{line.index}.item_id": [f"Item {line.item_id} does not exist."]
        for line in short
        if line.item_id not in known
    }
    if unknown:
        raise InvalidInput(unknown)


def _with_lines(stmt: Select[Order]) -> Select[Order]:
    return stmt.options(selectinload(Order.lines))


@dataclass(frozen=True)
class OrderView:
    """An order and its lines as read by one joined query: what a response needs, no entity."""

    id: int
    customer_id: int
    status: str
    placed_at: datetime
    lines: list[PlacedLine]
    stock_crossed: tuple[int, ...] = ()  # items whose stock this change took to 0, or from 0

    @property
    def total_cents(self) -> int:
        return order_total_of(self)


_ORDER_ROWS = (
    select(
        Order.id,
        Order.customer_id,
        Order.status,
        Order.placed_at,
        OrderLine.item_id,
        OrderLine.name,
        OrderLine.unit_price_cents,
        OrderLine.quantity,
    )
    .outerjoin(OrderLine, OrderLine.order_id == Order.id)
    .where(Order.id == bindparam("order_id"))
    .order_by(OrderLine.item_id)
)
_ORDER_ROWS_IN_SCOPE = _ORDER_ROWS.where(Order.customer_id == bindparam("scope"))


async def get_order(db: Executor, order_id: int, scope: int | None = None) -> OrderView:
    """The order with its lines; a customer caller (``scope``) sees only its own."""
    rows = (await _by_id(db, _ORDER_ROWS, _ORDER_ROWS_IN_SCOPE, order_id, scope)).all()
    if not rows:
        raise OrderNotFound(order_id)
    first = rows[0]
    lines = [
        PlacedLine(row.item_id, row.name, row.unit_price_cents, row.quantity)
        for row in rows
        if row.item_id is not None
    ]
    return OrderView(first.id, first.customer_id, first.status, first.placed_at, lines)


async def _by_id(
    db: Executor, stmt: Executable, in_scope: Executable, order_id: int, scope: int | None
) -> Result[*tuple[Any, ...]]:
    """``stmt`` for an admin; ``in_scope``, bound to the customer's id, for a customer."""
    if scope is None:
        return await execute(db, stmt, {"order_id": order_id})
    return await execute(db, in_scope, {"order_id": order_id, "scope": scope})


def orders_query(where: OrderFilter, after_id: int = 0, limit: int | None = None) -> Select[Any]:
    stmt = select(Order)
    for customer_id in (where.customer_id, where.scope):  # another customer's id: no rows
        if customer_id is not None:
            stmt = stmt.where(Order.customer_id == customer_id)
    if where.status is not None:
        stmt = stmt.where(Order.status == where.status)
    if where.placed_after is not None:
        stmt = stmt.where(Order.placed_at >= where.placed_after)
    if where.placed_before is not None:
        stmt = stmt.where(Order.placed_at < where.placed_before)
    return _with_lines(page(stmt, Order.id, after_id, limit))


async def stream_orders(
    session: AsyncSession,
    *,
    after_id: int = 0,
    limit: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    **filters: Any,
) -> ChunkStream[Order]:
    """Orders matching ``filters`` (``OrderFilter``'s fields) in chunks; selectinload fetches
    each chunk's lines in one more query."""
    stmt = orders_query(OrderFilter(**filters), after_id, limit)
    async for chunk in stream_chunks(session, stmt, chunk_rows):
        yield chunk


async def stream_customer_orders(
    session: AsyncSession, *, customer_id: int, **options: Any
) -> ChunkStream[Order]:
    """``customer_id``'s orders; raises ``CustomerNotFound`` before any row if there is none."""
    if not await customer_exists(session, customer_id):
        raise CustomerNotFound(customer_id)
    async for chunk in stream_orders(session, customer_id=customer_id, **options):
        yield chunk


_LINE_TOTAL = func.coalesce(func.sum(OrderLine.unit_price_cents * OrderLine.quantity), 0)


def _totals_query(
    which: ColumnElement[bool], scope: ColumnElement[Any] | int | None
) -> Select[int, int]:
    stmt = (
        select(Order.id, _LINE_TOTAL)
        .outerjoin(OrderLine, OrderLine.order_id == Order.id)
        .where(which)
        .group_by(Order.id)
    )
    return stmt.where(Order.customer_id == scope) if scope is not None else stmt


_TOTAL = _totals_query(Order.id == bindparam("order_id"), None)
_TOTAL_IN_SCOPE = _totals_query(Order.id == bindparam("order_id"), bindparam("scope"))


class OrderTotal(NamedTuple):
    order_id: int
    total_cents: int


class Totals(NamedTuple):
    """The totals of the orders asked for that exist (in the order asked), and the rest's ids."""

    totals: list[OrderTotal]
    missing: list[int]


async def order_total(db: Executor, order_id: int, scope: int | None = None) -> OrderTotal:
    """The order's total in cents, summed by the database."""
    row = (await _by_id(db, _TOTAL, _TOTAL_IN_SCOPE, order_id, scope)).one_or_none()
    if row is None:
        raise OrderNotFound(order_id)
    return OrderTotal(order_id, int(row[1]))


async def order_totals(db: Executor, order_ids: Sequence[int], scope: int | None = None) -> Totals:
    """Totals in cents of those of ``order_ids`` that exist (and are in scope): one query."""
    stmt = _TOTALS[dialect_name(db) == "postgresql", scope is not None]
    params: dict[str, Any] = {"order_ids": list(order_ids), "scope": scope}
    found = {order_id: int(total) for order_id, total in (await execute(db, stmt, params)).all()}
    return Totals(
        [OrderTotal(i, found[i]) for i in order_ids if i in found],
        [i for i in order_ids if i not in found],
    )


def _totals_statement(postgresql: bool, scoped: bool) -> Select[int, int]:
    if postgresql:  # one array parameter, not a thousand placeholders to render, send and parse
        which = Order.id == any_(bindparam("order_ids", type_=ARRAY(BigInteger)))
    else:
        which = Order.id.in_(bindparam("order_ids", expanding=True))
    return _totals_query(which, bindparam("scope") if scoped else None)


# (on PostgreSQL, in scope) -> the statement, built once
_TOTALS = {
    (pg, scoped): _totals_statement(pg, scoped) for pg in (False, True) for scoped in (False, True)
}


async def change_status(
    session: AsyncSession, order_id: int, target: str, scope: int | None = None
) -> OrderView:
    """Move the order to ``target`` if its current status allows it, atomically.

    The status check is the UPDATE's WHERE clause, so of two racing moves only one matches; the
    loser sees the new status and gets 409. Cancelling puts the stock back in the same transaction.
    """
    if scope is None:
        allowed = TRANSITIONS[target]
    else:
        allowed = CUSTOMER_MAY_CANCEL if target == "cancelled" else ()
    if not await _move(session, order_id, target, allowed, scope):
        await _refuse_move(session, order_id, target, scope)
    restocked = await _restore_stock(session, order_id) if target == "cancelled" else ()
    order = await get_order(session, order_id)
    return replace(order, stock_crossed=restocked)


async def _move(
    session: AsyncSession, order_id: int, target: str, allowed: Sequence[str], scope: int | None
) -> bool:
    if not allowed:
        return False
    stmt = (
        update(Order)
        .where(Order.id == order_id, Order.status.in_(allowed))
        .values(status=target)
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    )
    if scope is not None:
        stmt = stmt.where(Order.customer_id == scope)
    return (await session.execute(stmt)).first() is not None


async def _refuse_move(
    session: AsyncSession, order_id: int, target: str, scope: int | None
) -> None:
    stmt = select(Order.status).where(Order.id == order_id)
    if scope is not None:
        stmt = stmt.where(Order.customer_id == scope)
    current = await session.scalar(stmt)
    if current is None:
        raise OrderNotFound(order_id)
    if scope is not None and (target != "cancelled" or current in TRANSITIONS[target]):
        raise Forbidden("a customer may only cancel its own pending orders")
    raise IllegalTransition(current, target)


async def _restore_stock(session: AsyncSession, order_id: int) -> tuple[int, ...]:
    """Give each line's quantity back, in item id order like placement, so neither deadlocks;
    the items that were out of stock."""
    stmt = (
        select(OrderLine.item_id, OrderLine.quantity)
        .where(OrderLine.order_id == order_id)
        .order_by(OrderLine.item_id)
    )
    restocked = []
    for item_id, quantity in (await session.execute(stmt)).all():
        stock = await session.scalar(
            update(Item)
            .where(Item.id == item_id)
            .values(stock=Item.stock + quantity)
            .returning(Item.stock)
            .execution_options(synchronize_session=False)
        )
        if stock == quantity:
            restocked.append(item_id)
    return tuple(restocked)
