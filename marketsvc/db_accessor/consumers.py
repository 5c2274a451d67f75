"""Named consumers of the feed: a position, and a lease so that one process follows each.

A consumer (``"webhooks"``, ``"nats"``) is a row: the feed position (``outbox.Position``) it
has finished with, and an ``owner`` whose ``lease_until`` says how long it may go on. Every
worker may try to ``claim`` it; one holds it at a time:

- ``claim``: in a short transaction of its own (not around any network I/O: on PostgreSQL an
  open transaction holds the feed's horizon back for every reader). It succeeds if nobody owns
  the consumer, the lease ran out, or the caller owns it already (then it renews the lease), and
  returns the position to read the feed after (``outbox.read_feed``). The row is created at
  ``outbox.START`` the first time.
- ``advance``: in the caller's transaction, together with the work done for the events up to
  the new position, so that both commit or neither does; it moves the position only while the
  caller is still the owner, and says whether it did: if not, the caller must roll back.
- ``release``: give up the lease (a clean stop), so that another process takes over at once.

An owner that crashes stops renewing; once its lease has run out the next claimer starts from
the last position advanced: events after it are handled again (at least once), none is lost.

On PostgreSQL a claim and an advance both write the row, so they take its lock in turn: an
advance either commits before a rival's claim reads the position, or finds the rival the owner
and changes nothing. On SQLite writers are serial. Times are the claimer's clock (UTC): the
lease should be long against the clock skew between instances.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from marketsvc.db_accessor.core import Executor, dialect_name, execute, rowcount
from marketsvc.db_accessor.outbox import START, Position
from marketsvc.store.models import EventConsumer, utcnow


async def claim(
    db: Executor, name: str, owner: str, lease: timedelta, now: datetime | None = None
) -> Position | None:
    """Take or renew ``name``'s lease for ``owner`` until ``now + lease``: the position to
    follow from, or None if another owner holds a lease still running."""
    now = now or utcnow()
    dialect = postgresql if dialect_name(db) == "postgresql" else sqlite
    create = (
        dialect.insert(EventConsumer)
        .values(name=name, txid=START[0], event_row=START[1])
        .on_conflict_do_nothing(index_elements=["name"])
    )
    await execute(db, create)
    take = (
        update(EventConsumer)
        .where(
            EventConsumer.name == name,
            or_(
                EventConsumer.owner == owner,
                EventConsumer.owner.is_(None),
                EventConsumer.lease_until.is_(None),
                EventConsumer.lease_until < now,
            ),
        )
        .values(owner=owner, lease_until=now + lease)
        .returning(EventConsumer.txid, EventConsumer.event_row)
    )
    row = (await execute(db, take)).first()
    return None if row is None else (int(row.txid), int(row.event_row))


async def advance(db: Executor, name: str, owner: str, position: Position) -> bool:
    """Move ``name`` to ``position`` in the caller's transaction if ``owner`` still owns it;
    False (nothing changed: roll back the work done under the lease) if not."""
    values = {"b_name": name, "b_owner": owner, "b_txid": position[0], "b_row": position[1]}
    return rowcount(await execute(db, _ADVANCE, values)) == 1


_ADVANCE = (  # one shape: relays advance after every batch (store/writer_statements.py)
    update(EventConsumer)
    .where(EventConsumer.name == bindparam("b_name"), EventConsumer.owner == bindparam("b_owner"))
    .values(txid=bindparam("b_txid"), event_row=bindparam("b_row"))
)


async def release(db: Executor, name: str, owner: str) -> None:
    """Give up ``owner``'s lease on ``name`` (no-op if it is not the owner)."""
    stmt = (
        update(EventConsumer)
        .where(EventConsumer.name == name, EventConsumer.owner == owner)
        .values(owner=None, lease_until=None)
    )
    await execute(db, stmt)


async def position(db: Executor, name: str) -> Position | None:
    """Where ``name`` stands (None if it has never been claimed)."""
    stmt = select(EventConsumer.txid, EventConsumer.event_row).where(EventConsumer.name == name)
    row = (await execute(db, stmt)).first()
    return None if row is None else (int(row.txid), int(row.event_row))
