"""The domain's tables. The alembic migrations are the schema; these must agree with them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit BIGINT identity.
BigId = BigInteger().with_variant(Integer, "sqlite")

# Full-text search lives beside the models, in migration 0003 only: PostgreSQL's generated
# ``items.search_vector`` column and its GIN index, SQLite's ``items_fts`` table (and the shadow
# tables FTS5 keeps) with its triggers. Queries name them in ``db_accessor/fulltext.py``.
# Migration 0009 adds PostgreSQL's ``items.name_vector`` and its GIN index, migration 0011 the
# ``item_name_terms`` and ``item_bigrams`` tables (words and word pairs, each list in id order)
# with their triggers; migration 0012 adds every two words of a name to ``item_name_terms``.
SEARCH_OBJECTS = (
    "search_vector",
    "ix_items_search_vector",
    "items_fts",
    "name_vector",
    "ix_items_name_vector",
    "item_name_terms",
    "item_bigrams",
)

ORDER_STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")
SELLER_STATUSES = ("active", "suspended")
DEFAULT_SELLER_ID = 1  # "Marketplace", made by migration 0007: the items of before sellers
# past paid an order's status follows its seller orders (``seller_orders.follow_parts``)
DERIVED_ORDER_STATUSES = ("partially_shipped", "refused")
ALL_ORDER_STATUSES = (*ORDER_STATUSES, *DERIVED_ORDER_STATUSES)
SELLER_ORDER_STATUSES = (
    "pending",  # its order is not paid yet
    "awaiting_acceptance",
    "accepted",
    "shipped",
    "delivered",
    "refused",
    "cancelled",  # its order was cancelled
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python; naive UTC text on SQLite, timestamptz on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(AsyncAttrs, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    address: Mapped[Address] = relationship(
        back_populates="customer", lazy="raise_on_sql", uselist=False
    )


class Address(Base):
    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), unique=True
    )
    street: Mapped[str] = mapped_column(String(200))
    flat_number: Mapped[str | None] = mapped_column(String(20))
    city: Mapped[str] = mapped_column(String(100))
    post_code: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    customer: Mapped[Customer] = relationship(back_populates="address", lazy="raise_on_sql")


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_non_negative"),
        CheckConstraint("price_cents >= 0", name="price_non_negative"),
        Index("ix_items_price_cents_id", "price_cents", "id"),
        Index("ix_items_name_id", "name", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price_cents: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int] = mapped_column(Integer)
    seller_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sellers.id"), index=True)


class Seller(Base):
    __tablename__ = "sellers"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended')", name="status_known"),
        CheckConstraint(
            "commission_bps >= 0 AND commission_bps <= 10000", name="commission_bps_range"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    commission_bps: Mapped[int] = mapped_column(Integer)  # the platform's cut, 1/100 of a %
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def line_total_of(line: Any) -> int:
    """What an order line costs, in cents: the unit price it was placed at times its quantity."""
    return int(line.unit_price_cents * line.quantity)


def commission_of(unit_price_cents: int, quantity: int, bps: int) -> int:
    """The platform's commission on a line, in cents: price x quantity x bps / 10000, rounded
    half-even (to the even cent when exactly half). Migration 0008 computes the same in SQL."""
    quotient, remainder = divmod(unit_price_cents * quantity * bps, 10_000)
    return quotient + (remainder > 5_000 or (remainder == 5_000 and quotient % 2 == 1))


def order_total_of(order: Any) -> int:
    """What an order costs, in cents: the sum of its lines (``orders.order_total`` sums in SQL)."""
    return sum(map(line_total_of, order.lines))


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled',"
            " 'partially_shipped', 'refused')",
            name="status_known",
        ),
        Index("ix_orders_customer_id_id", "customer_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"))
    status: Mapped[str] = mapped_column(String(24), default="pending")
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", lazy="raise_on_sql", order_by="OrderLine.item_id"
    )
    seller_orders: Mapped[list[SellerOrder]] = relationship(
        lazy="raise_on_sql", order_by="SellerOrder.id", viewonly=True
    )

    @property
    def total_cents(self) -> int:
        return order_total_of(self)

    @property
    def parts(self) -> list[Any]:
        """Its seller orders, each with its lines' item ids and its subtotal."""
        return parts_of(self.seller_orders, self.lines)


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "item_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("items.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    seller_order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("seller_orders.id", ondelete="CASCADE"), index=True
    )
    # the seller's commission at placement, and what it comes to on this line (half-even cents)
    commission_bps: Mapped[int] = mapped_column(Integer)
    commission_cents: Mapped[int] = mapped_column(BigInteger)
    order: Mapped[Order] = relationship(back_populates="lines", lazy="raise_on_sql")

    @property
    def line_total_cents(self) -> int:
        return line_total_of(self)


class SellerOrder(Base):
    """One seller's part of an order: its lines (``order_lines.seller_order_id``), fulfilled
    and moved by that seller. ``refund_cents``: what is owed back to the customer for it
    (its subtotal once refused, or once its paid order is cancelled)."""

    __tablename__ = "seller_orders"
    __table_args__ = (
        UniqueConstraint("order_id", "seller_id"),
        CheckConstraint(
            "status IN ('pending', 'awaiting_acceptance', 'accepted', 'shipped', 'delivered',"
            " 'refused', 'cancelled')",
            name="status_known",
        ),
        Index("ix_seller_orders_seller_id_id", "seller_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("orders.id", ondelete="CASCADE"))
    seller_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sellers.id"))
    status: Mapped[str] = mapped_column(String(24))
    carrier: Mapped[str | None] = mapped_column(String(100))
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    refund_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)  # its order's
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lines: Mapped[list[OrderLine]] = relationship(
        lazy="raise_on_sql", order_by="OrderLine.item_id", viewonly=True
    )

    @property
    def subtotal_cents(self) -> int:
        return order_total_of(self)

    @property
    def commission_cents(self) -> int:
        return sum(line.commission_cents for line in self.lines)


@dataclass(frozen=True)
class Part:
    """A seller order as its order shows it."""

    id: int
    seller_id: int
    status: str
    carrier: str | None
    tracking_number: str | None
    item_ids: list[int]
    subtotal_cents: int


def parts_of(seller_orders: Sequence[Any], lines: Sequence[Any]) -> list[Part]:
    """``seller_orders`` (id order) with their share of ``lines`` (each has ``seller_order_id``)."""
    items: dict[int, list[int]] = {s.id: [] for s in seller_orders}
    subtotals = dict.fromkeys(items, 0)
    for line in lines:
        items[line.seller_order_id].append(line.item_id)
        subtotals[line.seller_order_id] += line_total_of(line)
    return [
        Part(s.id, s.seller_id, s.status, s.carrier, s.tracking_number, items[s.id],
             subtotals[s.id])
        for s in seller_orders
    ]  # fmt: skip


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("owner", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    pets: Mapped[list[Pet]] = relationship(
        back_populates="user", lazy="raise_on_sql", order_by="Pet.id", passive_deletes=True
    )


class Pet(Base):
    __tablename__ = "pets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    user: Mapped[User | None] = relationship(back_populates="pets", lazy="raise_on_sql")


class Event(Base):
    """The transactional outbox and the feed: one row per event, written in the transaction of
    the change it describes (see ``db_accessor.outbox`` for the feed position)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_txid_id", "txid", "id"),
        Index("ix_events_customer_id_txid_id", "customer_id", "txid", "id"),
        Index("ix_events_subject_txid_id", "subject", "txid", "id"),
        {"sqlite_autoincrement": True},  # ids never reused, even after the newest is purged
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # PostgreSQL: the feed position: the inserting transaction's id (a server default), or the
    # subject's previous event's if greater (see outbox._next_sequence); SQLite: 0
    txid: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(100))
    sequence: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int | None] = mapped_column(BigInteger)  # who besides admins may read
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[str] = mapped_column(Text)


class EventSequence(Base):
    """The last sequence number given to an event about ``subject``, past its first, and
    that event's feed position (``txid``; see ``db_accessor.outbox._next_sequence``)."""

    __tablename__ = "event_sequences"

    subject: Mapped[str] = mapped_column(String(100), primary_key=True)
    last: Mapped[int] = mapped_column(BigInteger)
    txid: Mapped[int] = mapped_column(BigInteger)  # the feed position of its last event


class EventPurge(Base):
    """One row: the feed position of the newest event retention has deleted."""

    __tablename__ = "event_purges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    txid: Mapped[int] = mapped_column(BigInteger)
    event_row: Mapped[int] = mapped_column(BigInteger)


class EventConsumer(Base):
    """A named follower of the feed: the position it has finished with, and the lease of the
    one process that follows it now (see ``db_accessor.consumers``)."""

    __tablename__ = "event_consumers"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    txid: Mapped[int] = mapped_column(BigInteger)  # with event_row: an outbox.Position
    event_row: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


WEBHOOK_SUBSCRIPTION_STATUSES = ("active", "paused", "disabled")
WEBHOOK_DELIVERY_STATUSES = ("pending", "delivered", "failed")
# partial indexes' predicates, on both databases
PENDING_ONLY: dict[str, Any] = {
    f"{d}_where": text("status = 'pending'") for d in ("postgresql", "sqlite")
}
# PostgreSQL: ``next_attempt_at IS NOT NULL`` is always true (the column is NOT NULL), but only
# a statement whose WHERE implies it (a ``next_attempt_at <= :now`` does) may use the index: so
# the claim's lookup of a subject's oldest pending delivery can use only the subject index.
# Young statistics rated both alike, and it read every pending delivery through this one, for
# each row. SQLite (3.40) does not infer IS NOT NULL from a comparison, and plans per statement.
PENDING_DUE_ONLY: dict[str, Any] = {
    "postgresql_where": text("status = 'pending' AND next_attempt_at IS NOT NULL"),
    "sqlite_where": text("status = 'pending'"),
}

# Pending deliveries that will build their CloudEvent from their event. ``body IS NULL`` also
# keeps the claim (which does not filter on it) from reading pending deliveries through this
# index and sorting them, as PostgreSQL planned it with ``status = 'pending'`` alone.
WAITING_FOR_EVENT: dict[str, Any] = {
    f"{d}_where": text("status = 'pending' AND body IS NULL") for d in ("postgresql", "sqlite")
}


class WebhookSubscription(Base):
    """Where events are POSTed, which types (``event_types`` a JSON list; NULL: all), and the
    signing secret (and, while a rotation runs, the previous one until ``previous_until``)."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'paused', 'disabled')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default="active")
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event for one subscription. The CloudEvent it sends is built from its event
    (``event_row``) when it is sent; ``body`` holds it only where there is no event to build it
    from: a ping, or a pending delivery whose event retention purged (``services.retention``
    writes it here first). Migration 0013 says why."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status_known"),
        # the pending few among every delivery ever made: what a sender's claim reads
        Index("ix_webhook_deliveries_pending_due", "next_attempt_at", "id", **PENDING_DUE_ONLY),
        Index(
            "ix_webhook_deliveries_pending_subject",
            "subscription_id",
            "subject",
            "id",
            **PENDING_ONLY,
        ),
        Index("ix_webhook_deliveries_subscription", "subscription_id", "id"),
        # what retention looks up before it purges an event (migration 0013)
        Index("ix_webhook_deliveries_pending_event", "event_row", **WAITING_FOR_EVENT),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    event_row: Mapped[int | None] = mapped_column(BigInteger)  # events.id (None: a ping)
    event_id: Mapped[str] = mapped_column(String(36))
    subject: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(100))
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """One POST of a delivery and what came of it."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery_id_id", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PaymentInbox(Base):
    """One row per payment event received, keyed by the sender's ``webhook-id``: a repeated
    delivery finds its row and changes nothing (``services.payments``). No foreign key to
    ``orders``: an event about an unknown order is recorded too."""

    __tablename__ = "payment_inbox"

    webhook_id: Mapped[str] = mapped_column(String(255), primary_key=True)  # the header
    type: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[int] = mapped_column(BigInteger, index=True)
    payment_id: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(32))
