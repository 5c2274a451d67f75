"""Core statements on a connection: no ORM execution layer where rows suffice."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Executable, Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from marketsvc.store.pg_point_reads import PgPointReads
from marketsvc.store.pg_writes import PgWriteConnection
from marketsvc.store.sqlite_sync_reads import SqliteSyncReads
from marketsvc.store.sqlite_writer import WriterConnection

# A session (ORM work, writes), a bare connection (``Database.scan()``) or what
# ``Database.read()`` hands out for Core point reads, or what ``Database.change_with`` hands its
# work (the SQLite writer thread's connection, PostgreSQL's in one greenlet).
Executor = (
    AsyncSession
    | AsyncConnection
    | SqliteSyncReads
    | PgPointReads
    | WriterConnection
    | PgWriteConnection
)


async def execute(
    db: Executor,
    stmt: Executable,
    params: dict[str, Any] | list[dict[str, Any]] | None = None,
) -> Result[*tuple[Any, ...]]:
    """Run ``stmt`` on the connection (a session's: in its transaction), bypassing ORM
    compilation and loading."""
    conn = await db.connection() if isinstance(db, AsyncSession) else db
    return await conn.execute(stmt, params)


def dialect_name(db: Executor) -> str:
    return (db.get_bind().dialect if isinstance(db, AsyncSession) else db.dialect).name


def rowcount(result: Result[*tuple[Any, ...]]) -> int:
    """Rows an UPDATE or DELETE without RETURNING matched, from ``AsyncSession.execute``.

    The session is typed to return a ``Result`` (it cannot promise a cursor for every statement);
    for such DML it is a ``CursorResult``, and casting is what SQLAlchemy advises (2.0.44 notes).
    """
    return cast("CursorResult[*tuple[Any, ...]]", result).rowcount
