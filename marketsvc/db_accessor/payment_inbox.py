"""The payments inbox: which payment events arrived, keyed by the sender's ``webhook-id``.

``claim`` is the first statement of the transaction that applies an event: of two deliveries
of one id only one inserts its row (PostgreSQL: the second waits on the first's uncommitted
key, then finds it; SQLite: writers run one at a time), so only one applies the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from marketsvc.db_accessor.core import dialect_name, execute
from marketsvc.store.models import Order, PaymentInbox, utcnow

PENDING = "pending"  # the outcome while the claiming transaction runs; never committed


@dataclass(frozen=True)
class InboxEntry:
    webhook_id: str
    type: str
    order_id: int
    payment_id: str
    received_at: datetime
    outcome: str
    duplicate: bool = False  # this delivery found the entry made by an earlier one


async def claim(
    session: AsyncSession, webhook_id: str, type_: str, order_id: int, payment_id: str
) -> bool:
    """Insert the event's row; ``False`` if a row with this id exists (a repeated delivery)."""
    dialect = postgresql if dialect_name(session) == "postgresql" else sqlite
    stmt = (
        dialect.insert(PaymentInbox)
        .values(
            webhook_id=webhook_id,
            type=type_,
            order_id=order_id,
            payment_id=payment_id,
            received_at=utcnow(),
            outcome=PENDING,
        )
        .on_conflict_do_nothing(index_elements=["webhook_id"])
        .returning(PaymentInbox.webhook_id)
    )
    return (await execute(session, stmt)).first() is not None


async def settle(session: AsyncSession, webhook_id: str, outcome: str) -> InboxEntry:
    """Record what the event did; the entry as stored."""
    stmt = (
        update(PaymentInbox)
        .where(PaymentInbox.webhook_id == webhook_id)
        .values(outcome=outcome)
        .returning(*_COLUMNS)
    )
    return InboxEntry(*(await execute(session, stmt)).one())


async def get(session: AsyncSession, webhook_id: str) -> InboxEntry:
    row = (
        await execute(session, select(*_COLUMNS).where(PaymentInbox.webhook_id == webhook_id))
    ).one()
    return InboxEntry(*row)


async def lock_order_status(session: AsyncSession, order_id: int) -> str | None:
    """The order's status, its row locked until the transaction ends (PostgreSQL; SQLite's
    writer holds the database); ``None`` if there is no such order."""
    stmt = select(Order.status).where(Order.id == order_id).with_for_update()
    status: str | None = (await execute(session, stmt)).scalar_one_or_none()
    return status


_COLUMNS = (
    PaymentInbox.webhook_id,
    PaymentInbox.type,
    PaymentInbox.order_id,
    PaymentInbox.payment_id,
    PaymentInbox.received_at,
    PaymentInbox.outcome,
)
