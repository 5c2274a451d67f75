"""How far each feed consumer is behind: events after its position, and the next one's time.

Both are range reads on the feed's ``(txid, id)`` index starting at the consumer's position:
their cost grows with the backlog (the count stops at ``COUNT_CAP``), never with the feed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, tuple_

from marketsvc.db_accessor.core import Executor, execute
from marketsvc.db_accessor.outbox import Position
from marketsvc.store.models import Event, EventConsumer

COUNT_CAP = 100_000


@dataclass(frozen=True)
class Lag:
    events: int  # up to COUNT_CAP
    oldest: datetime | None  # the time of the next event to handle; None when there is none


async def consumer_positions(db: Executor) -> dict[str, Position]:
    stmt = select(EventConsumer.name, EventConsumer.txid, EventConsumer.event_row)
    return {row.name: (row.txid, row.event_row) for row in (await execute(db, stmt)).all()}


async def lag_after(db: Executor, position: Position) -> Lag:
    after = tuple_(Event.txid, Event.id) > tuple_(*position)
    capped = select(Event.id).where(after).limit(COUNT_CAP).subquery()
    count = int((await execute(db, select(func.count()).select_from(capped))).scalar_one())
    if count == 0:
        return Lag(0, None)
    oldest = select(Event.time).where(after).order_by(Event.txid, Event.id).limit(1)
    return Lag(count, (await execute(db, oldest)).scalar_one_or_none())
