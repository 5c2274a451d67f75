"""Idempotency keys: the first response to a keyed request, kept in the database for replays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from marketsvc.db_accessor.core import rowcount
from marketsvc.store.models import IdempotencyKey, utcnow

PURGE_BATCH = 10_000


@dataclass(frozen=True)
class StoredResponse:
    """What a key already holds; ``status`` is ``None`` while its first request is in flight."""

    request_hash: str
    status: int | None
    body: str | None


async def claim(
    session: AsyncSession, owner: str, key: str, request_hash: str
) -> int | StoredResponse:
    """Insert the key for this request; if it exists already, what it holds instead.

    ``ON CONFLICT DO NOTHING`` needs no savepoint: on PostgreSQL a concurrent insert of the same
    key waits until the first transaction ends, then does nothing, and the SELECT that follows
    reads the first request's committed response. On SQLite writers are serial anyway.
    """
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(IdempotencyKey)
        .values(owner=owner, key=key, request_hash=request_hash, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["owner", "key"])
        .returning(IdempotencyKey.id)
    )
    key_id = await session.scalar(stmt)
    if key_id is not None:
        return key_id
    row = (
        await session.execute(
            select(
                IdempotencyKey.request_hash,
                IdempotencyKey.response_status,
                IdempotencyKey.response_body,
            ).where(IdempotencyKey.owner == owner, IdempotencyKey.key == key)
        )
    ).one_or_none()
    if row is None:  # purged between the insert and the select: as good as still in flight
        return StoredResponse(request_hash, None, None)
    return StoredResponse(*row)


async def record(session: AsyncSession, key_id: int, status: int, body: str) -> None:
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == key_id)
        .values(response_status=status, response_body=body)
        .execution_options(synchronize_session=False)
    )


async def purge_expired(session: AsyncSession, cutoff: datetime) -> int:
    """Delete up to ``PURGE_BATCH`` keys created before ``cutoff``, oldest first, by index."""
    oldest = (
        select(IdempotencyKey.id)
        .where(IdempotencyKey.created_at < cutoff)
        .order_by(IdempotencyKey.created_at)
        .limit(PURGE_BATCH)
    )
    result = await session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.id.in_(oldest))
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)
