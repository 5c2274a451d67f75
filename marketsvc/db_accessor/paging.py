"""Keyset paging and chunked streaming shared by every list."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

DEFAULT_CHUNK_ROWS = 500


def page(
    stmt: Select[Any], id_column: InstrumentedAttribute[int], after_id: int, limit: int | None
) -> Select[Any]:
    stmt = stmt.where(id_column > after_id).order_by(id_column)
    return stmt.limit(limit) if limit is not None else stmt


async def stream_entities(
    session: AsyncSession, stmt: Select[Any], chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> AsyncIterator[Sequence[Any]]:
    """ORM entities in chunks, straight from a server-side cursor."""
    result = await session.stream_scalars(stmt.execution_options(yield_per=chunk_rows))
    try:
        async for chunk in result.partitions():
            yield chunk
    finally:
        await result.close()


async def stream_rows(
    session: AsyncSession, stmt: Select[Any], chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> AsyncIterator[Sequence[Any]]:
    """Plain rows (no entity hydration) in chunks, straight from a server-side cursor."""
    result = await session.stream(stmt.execution_options(yield_per=chunk_rows))
    try:
        async for chunk in result.partitions():
            yield chunk
    finally:
        await result.close()
