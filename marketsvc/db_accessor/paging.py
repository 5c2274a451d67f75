"""Keyset paging and chunked streaming shared by every list."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from typing import Any, TypeVar, TypeVarTuple

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from marketsvc.store.tuple_streams import sqlalchemy_rows

DEFAULT_CHUNK_ROWS = 500

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
# What every stream_* accessor returns: an async generator, so that ``aclose()`` (the client went
# away) closes the cursor at once.
ChunkStream = AsyncGenerator[Sequence[T], None]


def page(
    stmt: Select[*Ts], id_column: InstrumentedAttribute[int], after_id: int, limit: int | None
) -> Select[*Ts]:
    stmt = stmt.where(id_column > after_id).order_by(id_column)
    return stmt.limit(limit) if limit is not None else stmt


async def stream_chunks(
    session: AsyncSession,
    stmt: Select[*tuple[Any, ...]],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    *,
    entities: bool = True,
) -> ChunkStream[Any]:
    """Chunks straight from a server-side cursor: ORM entities, or plain rows (no hydration)."""
    if not entities:  # plain rows come straight off the session's connection: no ORM loading
        async with aclosing(sqlalchemy_rows(session, stmt, chunk_rows)) as chunks:
            async for rows in chunks:
                yield rows
        return
    result = await session.stream_scalars(stmt.execution_options(yield_per=chunk_rows))
    try:
        async for chunk in result.partitions():
            yield chunk
    finally:
        await result.close()
