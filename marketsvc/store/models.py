"""The domain's tables. The alembic migrations are the schema; these must agree with them."""

from __future__ import annotations

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
# Migration 0004 adds PostgreSQL's ``items.name_vector`` and its GIN index.
SEARCH_OBJECTS = (
    "search_vector",
    "ix_items_search_vector",
    "items_fts",
    "name_vector",
    "ix_items_name_vector",
)

ORDER_STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")


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


def line_total_of(line: Any) -> int:
    """What an order line costs, in cents: the unit price it was placed at times its quantity."""
    return int(line.unit_price_cents * line.quantity)


def order_total_of(order: Any) -> int:
    """What an order costs, in cents: the sum of its lines (``orders.order_total`` sums in SQL)."""
    return sum(map(line_total_of, order.lines))


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')",
            name="status_known",
        ),
        Index("ix_orders_customer_id_id", "customer_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", lazy="raise_on_sql", order_by="OrderLine.item_id"
    )

    @property
    def total_cents(self) -> int:
        return order_total_of(self)


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
    order: Mapped[Order] = relationship(back_populates="lines", lazy="raise_on_sql")

    @property
    def line_total_cents(self) -> int:
        return line_total_of(self)


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
