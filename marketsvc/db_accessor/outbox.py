"""The transactional outbox, which is also the feed.

An event row is inserted by the transaction that makes its change, so it exists if and only if
the change committed. A relay delivering events elsewhere follows the same feed (below) with a
cursor of its own; its delivery state belongs in tables of its own, keyed by ``events.id``.

**Feed position, and why a reader can never skip an event.** On PostgreSQL a row id is taken at
INSERT but becomes visible at COMMIT, so ids do not become visible in order: a reader that
returned id 101 while id 100 was uncommitted would pass 100 forever. Here each row also has a
``txid``: the id of the transaction that inserted it (the column's default,
``pg_current_xact_id()``), or the ``txid`` of the subject's previous event if that is greater
(``_next_sequence``: a subject's events then appear in their order). The feed is ordered by
``(txid, id)``, and a read returns only rows whose ``txid`` is below the ``xmin`` of the read's
own snapshot (``pg_snapshot_xmin(pg_current_snapshot())``): every transaction below ``xmin``
has ended, so the rows below it are final; every transaction still running, or yet to start,
has an id at or above ``xmin``, so its events' ``txid`` are too: above every cursor ever
handed out. The price: a transaction that stays open (in any database of the server: ``xmin``
is server-wide) holds the feed back until it ends; it never makes a reader lose an event.

On SQLite writers are serial (``BEGIN IMMEDIATE``), so ids are assigned in commit order, and
AUTOINCREMENT never reuses one; ``txid`` is 0 and the position is the id.

A cursor is ``"<txid>-<id>"`` of the last event read.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVarTuple

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    Select,
    Text,
    and_,
    cast,
    delete,
    func,
    insert,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite

from marketsvc.db_accessor.core import Executor, dialect_name, execute
from marketsvc.events import tracking
from marketsvc.events.types import NewEvent
from marketsvc.store.models import Event, EventPurge, EventSequence, utcnow

Position = tuple[int, int]  # (txid, id)
START: Position = (0, 0)
PURGE_BATCH = 500

Ts = TypeVarTuple("Ts")


def cursor_of(position: Position) -> str:
    return f"{position[0]}-{position[1]}"


async def record(db: Executor, event: NewEvent) -> str:
    """Insert ``event`` in the caller's transaction; its CloudEvents id."""
    if event.kind.creates:
        row = creation_row(event)
    else:
        sequence, txid = await _next_sequence(db, event.subject)
        row = _row(event, sequence) | ({"txid": txid} if txid else {})
    await insert_row(db, row)
    return str(row["event_id"])


def creation_row(event: NewEvent) -> dict[str, Any]:
    """The row of an event that creates its subject (sequence 1; its position comes from its
    transaction), built without a statement, so that a caller may insert it inside one of its
    own (``orders.place_order`` on PostgreSQL). Columns: ``EVENT_COLUMNS``."""
    assert event.kind.creates, event.name
    return _row(event, 1)


async def insert_row(db: Executor, row: dict[str, Any]) -> None:
    await execute(db, _INSERT_EVENT, row)


EVENT_COLUMNS = ("event_id", "type", "subject", "sequence", "customer_id", "time", "data")
_INSERT_EVENT = insert(Event)


def _row(event: NewEvent, sequence: int) -> dict[str, Any]:
    """The event's row; noted for the request's log line and metrics (reported only if the
    request succeeds, that is if the row committed)."""
    event_id = str(uuid.uuid4())
    tracking.note(event_id, event.kind.type)
    return {
        "event_id": event_id,
        "type": event.kind.type,
        "subject": event.subject,
        "sequence": sequence,
        "customer_id": event.customer_id,
        "time": utcnow(),
        "data": orjson.dumps(event.data).decode(),
    }


async def _next_sequence(db: Executor, subject: str) -> tuple[int, int]:
    """One more than the subject's last sequence number (2 after its creating event's 1), and
    on PostgreSQL the event's feed position (its ``txid``); 0 on SQLite.

    The upsert locks the subject's row, so two transactions about one subject number in turn.
    A transaction can have taken its id before the one it waited for (a placement inserts its
    order, then waits for an item's lock), so the position is the greater of its own id and
    the subject's last event's: the feed then shows a subject's events in their order. It
    still never passes an event: a position is at least its writer's id, so every event still
    to commit sorts above the horizon, hence above every cursor handed out.
    """
    if dialect_name(db) != "postgresql":
        stmt = (
            sqlite.insert(EventSequence)
            .values(subject=subject, last=2, txid=0)
            .on_conflict_do_update(
                index_elements=["subject"], set_={"last": EventSequence.last + 1}
            )
            .returning(EventSequence.last, EventSequence.txid)
        )
        last, txid = (await execute(db, stmt)).one()
        return int(last), int(txid)
    own = cast(cast(func.pg_current_xact_id(), Text), BigInteger)
    creation = select(func.coalesce(func.max(Event.txid), 0)).where(Event.subject == subject)
    stmt = (
        postgresql.insert(EventSequence)
        .values(subject=subject, last=2, txid=func.greatest(own, creation.scalar_subquery()))
        .on_conflict_do_update(
            index_elements=["subject"],
            set_={"last": EventSequence.last + 1, "txid": func.greatest(EventSequence.txid, own)},
        )
        .returning(EventSequence.last, EventSequence.txid)
    )
    last, txid = (await execute(db, stmt)).one()
    return int(last), int(txid)


@dataclass(frozen=True)
class FeedFilter:
    """Which events a reader gets; ``scope`` is the only customer a customer reader may see."""

    type: str | None = None
    subject: str | None = None
    scope: int | None = None


FEED_COLUMNS = (
    Event.txid,
    Event.id,
    Event.event_id,
    Event.type,
    Event.subject,
    Event.sequence,
    Event.time,
    Event.data,
)


def after_position(dialect: str, position: Position) -> ColumnElement[bool]:
    """The events after ``position`` in feed order, as a range of the feed index's.

    SQLite seeks a row-value range on its first column only: ``(txid, id) > (0, n)`` read the
    index from the start of the feed and filtered (EXPLAIN QUERY PLAN: ``txid>?``), so every
    poll of a relay cost more as the feed grew: 5 ms at 42,000 events, and placement with a
    webhook subscription slowed run after run (711 -> 533 -> 487 req/s). Every SQLite event's
    ``txid`` is 0 and a position's is never negative, so ``txid = t AND id > n`` finds the same
    events, seeking both columns (``tests/test_outbox_plans.py``)."""
    if dialect == "postgresql":
        return tuple_(Event.txid, Event.id) > tuple_(*position)
    return and_(Event.txid == position[0], Event.id > position[1])


def _horizon() -> ColumnElement[Any]:
    """PostgreSQL: the oldest transaction still running as this statement's snapshot sees it
    (a scalar subquery: computed once per statement, not per row)."""
    xmin = func.pg_snapshot_xmin(func.pg_current_snapshot())
    return select(cast(cast(xmin, Text), BigInteger)).scalar_subquery()


def _settled(stmt: Select[*Ts], db: Executor) -> Select[*Ts]:
    return stmt.where(Event.txid < _horizon()) if dialect_name(db) == "postgresql" else stmt


@dataclass(frozen=True)
class FeedPage:
    """Events in feed order; ``held_back``: committed events after them wait for an older
    transaction to end (PostgreSQL), so a reader should look again soon."""

    rows: Sequence[Row[Any]]
    held_back: bool = False


async def read_feed(db: Executor, after: Position, where: FeedFilter, limit: int) -> FeedPage:
    """Up to ``limit`` events after ``after``, in feed order, that no later commit can precede.

    One statement: on PostgreSQL the rows come with whether each is below the horizon, and
    the settled ones are a prefix (the order is by txid, and the horizon is a txid).
    """
    dialect = dialect_name(db)
    rows = (await execute(db, feed_statement(dialect, after, where, limit))).all()
    if dialect != "postgresql":
        return FeedPage(rows)
    settled = 0
    while settled < len(rows) and rows[settled].settled:
        settled += 1
    return FeedPage(rows[:settled], held_back=settled < len(rows))


def feed_statement(
    dialect: str, after: Position, where: FeedFilter, limit: int
) -> Select[*tuple[Any, ...]]:
    """:func:`read_feed`'s statement (PostgreSQL's rows also say whether they are settled)."""
    columns = (
        (*FEED_COLUMNS, (Event.txid < _horizon()).label("settled"))
        if dialect == "postgresql"
        else FEED_COLUMNS
    )
    stmt = select(*columns).where(after_position(dialect, after))
    if where.scope is not None:
        stmt = stmt.where(Event.customer_id == where.scope)
    if where.subject is not None:
        stmt = stmt.where(Event.subject == where.subject)
    if where.type is not None:
        stmt = stmt.where(Event.type == where.type)
    return stmt.order_by(Event.txid, Event.id).limit(limit)


async def purged_through(db: Executor) -> Position:
    """The position of the newest event retention deleted (``START`` if none)."""
    row = (await execute(db, select(EventPurge.txid, EventPurge.event_row))).first()
    return START if row is None else (row.txid, row.event_row)


async def purgeable(db: Executor, cutoff: datetime, batch: int = PURGE_BATCH) -> list[Row[Any]]:
    """Up to ``batch`` of the oldest events (in feed order) older than ``cutoff``, their
    ``txid``, ``id`` and ``time``: what ``purge`` may delete next.

    Only a prefix of the feed goes, and only below the horizon (an event of a transaction still
    open is never passed), so every cursor before the newest deleted event is exactly the set
    of cursors that lost something: those get 410 (see ``purged_through``).
    """
    oldest = _settled(
        select(Event.txid, Event.id, Event.time).order_by(Event.txid, Event.id).limit(batch), db
    )
    prefix = []
    for row in (await execute(db, oldest)).all():
        if row.time >= cutoff:
            break
        prefix.append(row)
    return prefix


async def purge(db: Executor, prefix: Sequence[Row[Any]]) -> None:
    """Delete ``prefix`` (from ``purgeable``, in the same transaction)."""
    if prefix:
        await execute(db, delete(Event).where(Event.id.in_([row.id for row in prefix])))
        await _mark_purged(db, (prefix[-1].txid, prefix[-1].id))


async def events_by_row(db: Executor, rows: Sequence[int]) -> dict[int, Row[Any]]:
    """The kept events among ``rows`` (``events.id``), by id, with ``FEED_COLUMNS``."""
    stmt = select(*FEED_COLUMNS).where(Event.id.in_(rows))
    return {event.id: event for event in (await execute(db, stmt)).all()}


async def _mark_purged(db: Executor, position: Position) -> None:
    dialect = postgresql if dialect_name(db) == "postgresql" else sqlite
    insert = dialect.insert(EventPurge).values(id=1, txid=position[0], event_row=position[1])
    newer = tuple_(EventPurge.txid, EventPurge.event_row) < tuple_(*position)
    stmt = insert.on_conflict_do_update(
        index_elements=["id"],
        set_={"txid": position[0], "event_row": position[1]},
        where=newer,
    )
    await execute(db, stmt)
