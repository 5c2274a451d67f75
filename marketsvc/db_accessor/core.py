"""Core statements on a connection: no ORM execution layer where rows suffice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Executable, Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

# A session (ORM work, writes) or a bare connection (``Database.read()``: Core point reads).
Executor = AsyncSession | AsyncConnection


async def execute(
    db: Executor,
    stmt: Executable,
    params: dict[str, Any] | list[dict[str, Any]] | None = None,
) -> Result[Any]:
    """Run ``stmt`` on the connection (a session's: in its transaction), bypassing ORM
    compilation and loading."""
    conn = db if isinstance(db, AsyncConnection) else await db.connection()
    return await conn.execute(stmt, params)


def dialect_name(db: Executor) -> str:
    return (db.dialect if isinstance(db, AsyncConnection) else db.get_bind().dialect).name
