"""Customers and their addresses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Select, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from marketsvc.db_accessor.core import Executor, execute
from marketsvc.db_accessor.paging import DEFAULT_CHUNK_ROWS, ChunkStream, page
from marketsvc.errors import CustomerNotFound, EmailTaken
from marketsvc.schemas.customers import CustomerOut
from marketsvc.schemas.dumping import row_columns
from marketsvc.store.models import Address, Customer
from marketsvc.store.tuple_streams import stream_tuples


async def get_customer(session: AsyncSession, customer_id: int, lock: bool = False) -> Customer:
    """``lock``: the customer's row stays locked until the transaction ends."""
    stmt = select(Customer).options(joinedload(Customer.address)).where(Customer.id == customer_id)
    if lock:
        stmt = stmt.with_for_update(of=Customer)
    customer = (await session.execute(stmt)).scalar_one_or_none()
    if customer is None:
        raise CustomerNotFound(customer_id)
    return customer


async def get_customer_row(db: Executor, customer_id: int) -> Row[*tuple[Any, ...]]:
    """The customer and its address as one plain row (``schemas.customers.dump_customer_row``)."""
    row = (await execute(db, _CUSTOMER_BY_ID, {"customer_id": customer_id})).one_or_none()
    if row is None:
        raise CustomerNotFound(customer_id)
    return row


_CUSTOMER_ID = select(Customer.id).where(Customer.id == bindparam("customer_id"))


async def customer_exists(session: AsyncSession, customer_id: int) -> bool:
    return (await execute(session, _CUSTOMER_ID, {"customer_id": customer_id})).first() is not None


async def create_customer(session: AsyncSession, data: dict[str, Any]) -> Customer:
    await _ensure_email_free(session, data["email"])
    customer = Customer(name=data["name"], email=data["email"], address=Address(**data["address"]))
    session.add(customer)
    await _flush(session, data["email"])
    return customer


async def update_customer(
    session: AsyncSession, customer_id: int, changes: dict[str, Any]
) -> Customer:
    customer = await get_customer(session, customer_id, lock=True)  # its event shows the result
    if "email" in changes and changes["email"] != customer.email:
        await _ensure_email_free(session, changes["email"])
    for field in ("name", "email"):
        if field in changes:
            setattr(customer, field, changes[field])
    for field, value in changes.get("address", {}).items():
        setattr(customer.address, field, value)
    await _flush(session, changes.get("email", ""))
    return customer


# a customer and its address as one row, in the order schemas.customers.dump_customer_row reads
CUSTOMER_COLUMNS = row_columns(CustomerOut, Customer, address=Address)
_CUSTOMER_ROWS = select(*CUSTOMER_COLUMNS).join(Address, Address.customer_id == Customer.id)
_CUSTOMER_BY_ID = _CUSTOMER_ROWS.where(Customer.id == bindparam("customer_id"))


def customers_query(after_id: int = 0, limit: int | None = None) -> Select[*tuple[Any, ...]]:
    return page(_CUSTOMER_ROWS, Customer.id, after_id, limit)


def stream_customers(
    session: AsyncSession,
    after_id: int = 0,
    limit: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ChunkStream[Sequence[Any]]:
    """Customers as flat rows in ``CUSTOMER_COLUMNS``' order, on the driver's own cursor
    (``store.tuple_streams``). The stream itself, not a generator around it: closing a
    generator does not close one it iterates, and this one holds a transaction of its own
    (``tests/test_tuple_streams.py``)."""
    return stream_tuples(session, customers_query(after_id, limit), chunk_rows)


async def _ensure_email_free(session: AsyncSession, email: str) -> None:
    if await session.scalar(select(Customer.id).where(Customer.email == email)) is not None:
        raise EmailTaken(email)


async def _flush(session: AsyncSession, email: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        if "email" in str(exc.orig):
            raise EmailTaken(email) from None
        raise
