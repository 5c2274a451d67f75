"""Core statements on the session's connection: no ORM execution layer where rows suffice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Executable, Result
from sqlalchemy.ext.asyncio import AsyncSession


async def execute(
    session: AsyncSession,
    stmt: Executable,
    params: dict[str, Any] | list[dict[str, Any]] | None = None,
) -> Result[Any]:
    """Run ``stmt`` in the session's transaction, bypassing ORM compilation and loading."""
    conn = await session.connection()
    return await conn.execute(stmt, params)
