"""Webhook subscriptions, their deliveries and every attempt: the SQL.

A delivery is eligible to be sent when it is ``pending``, due (``next_attempt_at``), not leased
by a live sender, its subscription is active, and it is the oldest pending delivery of its
subscription about its subject: a later event about the same resource waits while an earlier
one retries, and events about other resources go on. Deliveries are inserted in feed order, so
their ids order each subject's events.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import aclosing
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import aliased

from marketsvc.db_accessor.core import Executor, dialect_name, execute, rowcount
from marketsvc.db_accessor.paging import DEFAULT_CHUNK_ROWS, ChunkStream, stream_chunks
from marketsvc.errors import DomainError, NotFound
from marketsvc.store.models import (
    Event,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
    utcnow,
)

SUBSCRIPTION_COLUMNS = tuple(
    c for c in WebhookSubscription.__table__.c if c.name not in ("secret", "previous_secret")
)


class SubscriptionNotFound(NotFound):
    def __init__(self, subscription_id: int) -> None:
        super().__init__(f"webhook subscription {subscription_id} does not exist")


class DeliveryNotFound(NotFound):
    def __init__(self, delivery_id: int) -> None:
        super().__init__(f"webhook delivery {delivery_id} does not exist")


class EventPurged(DomainError):
    status = 410

    def __init__(self, delivery_id: int) -> None:
        super().__init__(
            f"the event of webhook delivery {delivery_id} is past retention and was deleted: "
            "it cannot be sent again"
        )


def types_column(types: Sequence[str] | None) -> str | None:
    return None if types is None else orjson.dumps(sorted(set(types))).decode()


def types_of(stored: str | None) -> list[str] | None:
    return None if stored is None else list(orjson.loads(stored))


async def create_subscription(
    db: Executor, url: str, types: Sequence[str] | None, description: str, secret: str
) -> Row[Any]:
    now = utcnow()
    stmt = (
        insert(WebhookSubscription)
        .values(
            url=url,
            event_types=types_column(types),
            description=description,
            status="active",
            secret=secret,
            created_at=now,
            updated_at=now,
        )
        .returning(*SUBSCRIPTION_COLUMNS)
    )
    return (await execute(db, stmt)).one()


async def get_subscription(db: Executor, subscription_id: int, lock: bool = False) -> Row[Any]:
    stmt = select(*WebhookSubscription.__table__.c).where(WebhookSubscription.id == subscription_id)
    if lock and dialect_name(db) == "postgresql":
        stmt = stmt.with_for_update()
    row = (await execute(db, stmt)).first()
    if row is None:
        raise SubscriptionNotFound(subscription_id)
    return row


async def update_subscription(
    db: Executor, subscription_id: int, changes: dict[str, Any]
) -> Row[Any]:
    values = dict(changes)
    if "event_types" in values:
        values["event_types"] = types_column(values["event_types"])
    stmt = (
        update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id)
        .values(**values, updated_at=utcnow())
        .returning(*SUBSCRIPTION_COLUMNS)
    )
    row = (await execute(db, stmt)).first()
    if row is None:
        raise SubscriptionNotFound(subscription_id)
    return row


async def delete_subscription(db: Executor, subscription_id: int) -> None:
    stmt = delete(WebhookSubscription).where(WebhookSubscription.id == subscription_id)
    if rowcount(await execute(db, stmt)) == 0:
        raise SubscriptionNotFound(subscription_id)


async def stream_subscriptions(
    session: Any, after_id: int = 0, limit: int | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> ChunkStream[Row[Any]]:
    stmt = (
        select(*SUBSCRIPTION_COLUMNS)
        .where(WebhookSubscription.id > after_id)
        .order_by(WebhookSubscription.id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    async with aclosing(stream_chunks(session, stmt, chunk_rows, entities=False)) as chunks:
        async for chunk in chunks:
            yield chunk


_RECEIVING = select(  # the relay's, each fan-out: built once (see the statements below)
    WebhookSubscription.id,
    WebhookSubscription.event_types,
    WebhookSubscription.status,
    WebhookSubscription.url,
    WebhookSubscription.secret,
    WebhookSubscription.previous_secret,
    WebhookSubscription.previous_until,
).where(WebhookSubscription.status.in_(("active", "paused")))


async def receiving_subscriptions(db: Executor) -> Sequence[Row[Any]]:
    """The subscriptions events are fanned out to: id, event_types, status, and what sending
    needs (url, secrets)."""
    return (await execute(db, _RECEIVING)).all()


class Claimed(NamedTuple):
    """A delivery leased to a sender, with what sending it needs: the columns of a row of
    ``claim_due``, for a delivery the relay leased as it inserted it (``insert_deliveries``)."""

    id: int
    subscription_id: int
    event_id: str
    type: str
    event_row: int | None
    body: str | None
    attempts: int
    first_attempt_at: datetime | None
    url: str
    secret: str
    previous_secret: str | None
    previous_until: datetime | None


async def insert_deliveries(db: Executor, rows: list[dict[str, Any]]) -> list[int]:
    """``rows``: subscription_id, event_row, event_id, subject, type (in feed order), and
    lease_owner and lease_until for every row or none (a row leased as it is made); body only
    for a delivery with no event (``WebhookDelivery``). Their ids, in order."""
    if not rows:
        return []
    now = utcnow()
    base = {"status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
    result = await execute(db, _INSERT_DELIVERIES, [base | row for row in rows])
    return list(result.scalars())


async def pending_subjects(
    db: Executor, subscription_ids: Sequence[int], subjects: Sequence[str]
) -> set[tuple[int, str]]:
    """(subscription id, subject) of the pending deliveries among these subscriptions and
    subjects: a new delivery about one of them must wait its turn (per-subject order)."""
    params = {"subscriptions": list(subscription_ids), "subjects": list(subjects)}
    return {(row[0], row[1]) for row in await execute(db, _PENDING_SUBJECTS, params)}


# statements of the delivery path, built once: SQLite's writer runs each on sqlite3 itself
# (store/writer_statements.py); one built per call would go through SQLAlchemy's execution
_INSERT_DELIVERIES = insert(WebhookDelivery).returning(
    WebhookDelivery.id, sort_by_parameter_order=True
)
_INSERT_ATTEMPTS = insert(WebhookAttempt)


# A literal, not a parameter: the pending deliveries' partial indexes (``WHERE status =
# 'pending'``, migration 0010) serve a statement only if its plan sees the value, and PostgreSQL
# plans a statement asyncpg has prepared for any value (a generic plan) after five runs.
PENDING: ColumnElement[str] = literal_column("'pending'")


_PENDING_SUBJECTS = (
    select(WebhookDelivery.subscription_id, WebhookDelivery.subject)
    .where(
        WebhookDelivery.status == PENDING,
        WebhookDelivery.subscription_id.in_(bindparam("subscriptions", expanding=True)),
        WebhookDelivery.subject.in_(bindparam("subjects", expanding=True)),
    )
    .distinct()
)


def _eligible() -> Any:
    """Due at ``:now``, not leased, its subscription active, and the oldest pending delivery
    of its subject to its subscription (per-subject order)."""
    now = bindparam("now", type_=WebhookDelivery.next_attempt_at.type)
    same_subject = aliased(WebhookDelivery)
    subjects_head = (
        select(func.min(same_subject.id))
        .where(
            same_subject.subscription_id == WebhookDelivery.subscription_id,
            same_subject.subject == WebhookDelivery.subject,
            same_subject.status == PENDING,
        )
        .scalar_subquery()
    )
    # a value per row rather than a join: a join let the planner reach the deliveries through
    # the subject index by subscription and sort them all, which young statistics made look free
    subscription_status = (
        select(WebhookSubscription.status)
        .where(WebhookSubscription.id == WebhookDelivery.subscription_id)
        .scalar_subquery()
    )
    return and_(
        WebhookDelivery.status == PENDING,
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
        subscription_status == "active",
        # the least id rather than NOT EXISTS an older one: the planner answers a least id from
        # the subject index whatever its statistics; an anti-join it planned by them, and with a
        # young table's it read every pending delivery, or every delivery, for each row
        WebhookDelivery.id == subjects_head,
    )


@cache  # built once per (limit, locking, skipping): the sender asks after every delivery
def _due(limit: int, lock: bool = False, skipping: bool = False) -> Select[Any]:
    due = (
        select(WebhookDelivery.id)
        .where(_eligible())
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    if skipping:  # a separate statement: an expanding IN cannot be empty
        due = due.where(WebhookDelivery.subscription_id.not_in(bindparam("skip", expanding=True)))
    # PostgreSQL: senders on other workers and instances pass over each other's rows
    return due.with_for_update(of=WebhookDelivery, skip_locked=True) if lock else due


def _due_params(now: datetime, skip: Sequence[int]) -> dict[str, Any]:
    return {"now": now, "skip": list(skip)} if skip else {"now": now}


async def any_due(db: Executor, now: datetime, skip: Sequence[int] = ()) -> bool:
    """A cheap read (no lock, no write) before a claim; ``skip``: subscriptions left out."""
    stmt = _due(1, skipping=bool(skip))
    return (await execute(db, stmt, _due_params(now, skip))).first() is not None


def _of_subscription(column: Any) -> Any:
    """``column`` of the delivery's subscription, as a value per delivery row."""
    return (
        select(column)
        .where(WebhookSubscription.id == WebhookDelivery.subscription_id)
        .scalar_subquery()
        .label(column.name)
    )


# The lease and what sending needs, in one statement with a cached shape: built per call, the
# ``IN`` of the claimed ids and its three statements cost ~40 us of the writer's time per
# delivery (tests/test_webhook_claims.py; scripts/bench: placement with a subscription).
_LEASE = (
    update(WebhookDelivery)
    .where(WebhookDelivery.id.in_(bindparam("ids", expanding=True)))
    .values(lease_owner=bindparam("owner"), lease_until=bindparam("until"))
    .returning(
        WebhookDelivery.id,
        WebhookDelivery.subscription_id,
        WebhookDelivery.event_id,
        WebhookDelivery.type,
        WebhookDelivery.event_row,
        WebhookDelivery.body,
        WebhookDelivery.attempts,
        WebhookDelivery.first_attempt_at,
        *map(
            _of_subscription,
            (
                WebhookSubscription.url,
                WebhookSubscription.secret,
                WebhookSubscription.previous_secret,
                WebhookSubscription.previous_until,
            ),
        ),
    )
)


async def claim_due(
    db: Executor,
    owner: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    skip: Sequence[int] = (),
) -> list[Row[Any]]:
    """Lease up to ``limit`` eligible deliveries to ``owner`` (in the caller's short
    transaction), in id order, each with its subscription's URL and secrets; none of the
    subscriptions in ``skip``. PostgreSQL: ``FOR UPDATE SKIP LOCKED`` so that senders on other
    workers and instances pass over each other's rows; SQLite: writers are serial."""
    due = _due(limit, lock=dialect_name(db) == "postgresql", skipping=bool(skip))
    ids = (await execute(db, due, _due_params(now, skip))).scalars().all()
    if not ids:
        return []
    leased = await execute(db, _LEASE, {"ids": ids, "owner": owner, "until": lease_until})
    return sorted(leased.all(), key=lambda row: row.id)  # RETURNING has no order


# A delivered outcome, for a whole batch in one statement with a cached shape (one UPDATE per
# delivery, its values bound row by row, was half of recording a batch: ~40 us of the writer's
# time per delivery). Its first attempt is the oldest attempt row, inserted just before.
_FIRST_ATTEMPT = (
    select(WebhookAttempt.at)
    .where(WebhookAttempt.delivery_id == WebhookDelivery.id)
    .order_by(WebhookAttempt.id)
    .limit(1)
    .scalar_subquery()
)
_DELIVERED = (
    update(WebhookDelivery)
    .where(
        WebhookDelivery.id.in_(bindparam("ids", expanding=True)),
        WebhookDelivery.lease_owner == bindparam("owner"),
    )
    .values(
        status="delivered",
        attempts=WebhookDelivery.attempts + 1,
        first_attempt_at=func.coalesce(WebhookDelivery.first_attempt_at, _FIRST_ATTEMPT),
        delivered_at=bindparam("now", type_=WebhookDelivery.delivered_at.type),
        lease_owner=None,
        lease_until=None,
    )
)


async def record_attempts(
    db: Executor,
    owner: str,
    attempts: Sequence[tuple[int, dict[str, Any]]],
    delivered: Sequence[int],
    now: datetime,
    outcomes: Sequence[tuple[int, dict[str, Any]]] = (),
) -> None:
    """Add each ``(delivery id, attempt)``; mark the ``delivered`` ones so (at ``now``), and
    apply each other ``(delivery id, outcome)`` (status, attempts, next_attempt_at...); each
    drops the lease where ``owner`` still holds it (a lease that passed to another sender is
    left: that sender's attempt will say what happened)."""
    if attempts:
        await execute(
            db, _INSERT_ATTEMPTS, [{"delivery_id": d, **attempt} for d, attempt in attempts]
        )
    if delivered:
        await execute(db, _DELIVERED, {"ids": list(delivered), "owner": owner, "now": now})
    by_fields: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for delivery_id, outcome in outcomes:
        fields = tuple(sorted(outcome))
        row = {"b_id": delivery_id, "b_owner": owner} | {f"b_{k}": v for k, v in outcome.items()}
        by_fields.setdefault(fields, []).append(row)
    for fields, rows in by_fields.items():
        await execute(db, _outcome(fields), rows)


@cache
def _outcome(fields: tuple[str, ...]) -> Any:
    """An outcome's UPDATE, one row per parameter set."""
    return (
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == bindparam("b_id"),
            WebhookDelivery.lease_owner == bindparam("b_owner"),
        )
        .values({f: bindparam(f"b_{f}") for f in fields})
        .values(lease_owner=None, lease_until=None)
    )


async def mark_failing(db: Executor, subscription_id: int, since: datetime) -> datetime:
    """Note that the subscription's deliveries fail (from ``since`` unless already); when its
    failures began."""
    await execute(
        db,
        update(WebhookSubscription)
        .where(
            WebhookSubscription.id == subscription_id, WebhookSubscription.failing_since.is_(None)
        )
        .values(failing_since=since),
    )
    stmt = select(WebhookSubscription.failing_since).where(
        WebhookSubscription.id == subscription_id
    )
    value = (await execute(db, stmt)).scalar_one_or_none()
    return value or since


async def mark_healthy(db: Executor, subscription_id: int) -> None:
    await execute(db, _MARK_HEALTHY, {"b_id": subscription_id})


_MARK_HEALTHY = (  # after every batch of deliveries: one shape
    update(WebhookSubscription)
    .where(
        WebhookSubscription.id == bindparam("b_id"),
        WebhookSubscription.failing_since.is_not(None),
    )
    .values(failing_since=None)
)


async def disable(db: Executor, subscription_id: int) -> Row[Any] | None:
    """Disable an active subscription; its row, or None if it was not active."""
    stmt = (
        update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id, WebhookSubscription.status == "active")
        .values(status="disabled", updated_at=utcnow())
        .returning(*SUBSCRIPTION_COLUMNS)
    )
    return (await execute(db, stmt)).first()


async def count_disabled(db: Executor) -> int:
    stmt = select(func.count()).where(WebhookSubscription.status == "disabled")
    return int((await execute(db, stmt)).scalar_one())


DELIVERY_COLUMNS = tuple(c for c in WebhookDelivery.__table__.c if c.name not in ("body",))
ATTEMPT_COLUMNS = (
    WebhookAttempt.delivery_id,
    WebhookAttempt.at,
    WebhookAttempt.status_code,
    WebhookAttempt.latency_ms,
    WebhookAttempt.error,
    WebhookAttempt.next_attempt_at,
)


async def stream_deliveries(
    session: Any,
    subscription_id: int,
    after_id: int = 0,
    limit: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    status: str | None = None,
) -> ChunkStream[dict[str, Any]]:
    """A subscription's deliveries in id order, each with its attempts (one query a chunk).

    Keyset chunks rather than a server-side cursor: each chunk's attempts are read on the same
    connection before the next chunk."""
    await get_subscription(session, subscription_id)
    conn = await session.connection()
    remaining = limit
    while remaining is None or remaining > 0:
        size = chunk_rows if remaining is None else min(chunk_rows, remaining)
        stmt = select(*DELIVERY_COLUMNS).where(
            WebhookDelivery.subscription_id == subscription_id, WebhookDelivery.id > after_id
        )
        if status is not None:
            stmt = stmt.where(WebhookDelivery.status == status)
        chunk = (await conn.execute(stmt.order_by(WebhookDelivery.id).limit(size))).all()
        if not chunk:
            return
        yield await _with_attempts(conn, chunk)
        after_id = chunk[-1].id
        if remaining is not None:
            remaining -= len(chunk)
        if len(chunk) < size:
            return


async def _with_attempts(db: Executor, chunk: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    ids = [row.id for row in chunk]
    stmt = (
        select(*ATTEMPT_COLUMNS)
        .where(WebhookAttempt.delivery_id.in_(ids))
        .order_by(WebhookAttempt.delivery_id, WebhookAttempt.id)
    )
    attempts: dict[int, list[Any]] = {i: [] for i in ids}
    for attempt in (await execute(db, stmt)).all():
        attempts[attempt.delivery_id].append(attempt)
    return [dict(row._mapping) | {"attempt_log": attempts[row.id]} for row in chunk]


async def get_delivery(db: Executor, delivery_id: int) -> Row[Any]:
    stmt = select(*WebhookDelivery.__table__.c).where(WebhookDelivery.id == delivery_id)
    row = (await execute(db, stmt)).first()
    if row is None:
        raise DeliveryNotFound(delivery_id)
    return row


async def delivery_with_attempts(db: Executor, delivery_id: int) -> dict[str, Any]:
    stmt = select(*DELIVERY_COLUMNS).where(WebhookDelivery.id == delivery_id)
    row = (await execute(db, stmt)).first()
    if row is None:
        raise DeliveryNotFound(delivery_id)
    return (await _with_attempts(db, [row]))[0]


async def copy_delivery(db: Executor, delivery_id: int) -> int:
    """A new pending delivery of the same event to the same subscription; its id. Raises
    ``EventPurged`` if the delivery has no body of its own and retention purged its event."""
    row = await get_delivery(db, delivery_id)
    if row.body is None and row.event_row is not None:
        kept = select(Event.id).where(Event.id == row.event_row)
        if (await execute(db, kept)).first() is None:
            raise EventPurged(delivery_id)
    fields = ("subscription_id", "event_row", "event_id", "subject", "type", "body")
    return await insert_delivery(db, {f: getattr(row, f) for f in fields})


async def waiting_for(db: Executor, event_rows: Sequence[int]) -> set[int]:
    """Those of ``event_rows`` that a pending delivery with no body of its own will send."""
    stmt = (
        select(WebhookDelivery.event_row)
        .where(
            WebhookDelivery.status == PENDING,
            WebhookDelivery.body.is_(None),
            WebhookDelivery.event_row.in_(event_rows),
        )
        .distinct()
    )
    return set((await execute(db, stmt)).scalars().all())


async def kept_bodies(db: Executor, delivery_ids: Sequence[int]) -> dict[int, str]:
    """The bodies that ``keep_bodies`` wrote into these deliveries, by delivery id."""
    stmt = select(WebhookDelivery.id, WebhookDelivery.body).where(
        WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.body.is_not(None)
    )
    return {row.id: row.body for row in (await execute(db, stmt)).all()}


async def keep_bodies(db: Executor, bodies: dict[int, str]) -> None:
    """Write each event's CloudEvent (``{event_row: body}``) into its pending deliveries that
    have none, before retention purges the event."""
    stmt = (
        update(WebhookDelivery)
        .where(
            WebhookDelivery.event_row == bindparam("b_event_row"),
            WebhookDelivery.status == PENDING,
            WebhookDelivery.body.is_(None),
        )
        .values(body=bindparam("b_body"))
    )
    await execute(db, stmt, [{"b_event_row": k, "b_body": v} for k, v in bodies.items()])


async def insert_delivery(db: Executor, row: dict[str, Any]) -> int:
    """One new pending delivery (a redelivery, a ping); its id."""
    now = utcnow()
    values = {"status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
    stmt = insert(WebhookDelivery).values(**values, **row).returning(WebhookDelivery.id)
    return int((await execute(db, stmt)).scalar_one())
