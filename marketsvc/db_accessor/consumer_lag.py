"""How far each feed consumer is behind: events after its position, and the next one's time.

Both are range reads on the feed's ``(txid, id)`` index starting at the consumer's position:
their cost grows with the backlog (the count stops at ``COUNT_CAP``), never with the feed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, func, select

from marketsvc.db_accessor.core import Executor, dialect_name, execute
from marketsvc.db_accessor.outbox import Position, after_position
from marketsvc.store.models import Event, EventConsumer

FIRST_CAP = 1_000
COUNT_CAP = 100_000


@dataclass(frozen=True)
class Lag:
    events: int  # up to COUNT_CAP
    oldest: datetime | None  # the time of the next event to handle; None when there is none


async def consumer_positions(db: Executor) -> dict[str, Position]:
    stmt = select(EventConsumer.name, EventConsumer.txid, EventConsumer.event_row)
    return {row.name: (row.txid, row.event_row) for row in (await execute(db, stmt)).all()}


def _after(dialect: str, position: Position) -> ColumnElement[bool]:
    # The range of ``txid`` beside the row comparison: PostgreSQL estimates a row comparison
    # from no statistics, a ``txid >=`` from the column's. (The background pool, which measures
    # the backlog, plans each statement for its values: ``engine.BACKGROUND_SERVER_SETTINGS``.)
    return and_(Event.txid >= position[0], after_position(dialect, position))


def count_statement(dialect: str, position: Position, cap: int) -> Select[int]:
    """The events after ``position``, counted up to ``cap``, in feed order (a count needs none,
    but ordered and capped the planner can stop reading the feed index early)."""
    after = select(Event.id).where(_after(dialect, position)).order_by(Event.txid, Event.id)
    return select(func.count()).select_from(after.limit(cap).subquery())


async def lag_after(db: Executor, position: Position) -> Lag:
    # First up to FIRST_CAP, then (only a consumer that far behind) up to COUNT_CAP. With the
    # statistics of a young feed (until autovacuum comes round) PostgreSQL expects a fifth of the
    # feed after any position: for 100,000 rows it chose to scan and sort the whole feed (16-30
    # ms at 40,000-50,000 events, every 2 s in every worker), for 1,000 it walks the index.
    dialect = dialect_name(db)
    count = int((await execute(db, count_statement(dialect, position, FIRST_CAP))).scalar_one())
    if count == FIRST_CAP:
        count = int((await execute(db, count_statement(dialect, position, COUNT_CAP))).scalar_one())
    if count == 0:
        return Lag(0, None)
    oldest = (
        select(Event.time).where(_after(dialect, position)).order_by(Event.txid, Event.id).limit(1)
    )
    return Lag(count, (await execute(db, oldest)).scalar_one_or_none())
