"""The catalogue: point reads, writes, and lists filtered, searched and sorted with keysets."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import aclosing
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsvc.db_accessor.core import Executor, dialect_name, execute
from marketsvc.db_accessor.item_listing import (
    ITEM_COLUMNS,
    ItemListing,
    Keyset,
    listing_query,
    listing_statement,
    sort_value,
)
from marketsvc.db_accessor.paging import DEFAULT_CHUNK_ROWS, ChunkStream, stream_chunks
from marketsvc.errors import ItemNotFound
from marketsvc.store.models import Item


async def get_item(session: AsyncSession, item_id: int, for_update: bool = False) -> Item:
    """``for_update`` locks the row until the transaction ends (PostgreSQL; SQLite's writes
    are serialised by the writer queue and ``BEGIN IMMEDIATE`` already)."""
    item = await session.get(Item, item_id, with_for_update=for_update or None)
    if item is None:
        raise ItemNotFound(item_id)
    return item


async def create_item(session: AsyncSession, data: dict[str, Any]) -> Item:
    """``data["seller_id"]`` must name a seller (``sellers.seller_for_item``)."""
    item = Item(**data)
    session.add(item)
    await session.flush()
    return item


async def change_item(session: AsyncSession, item: Item, changes: dict[str, Any]) -> Item:
    for field, value in changes.items():
        setattr(item, field, value)
    await session.flush()
    return item


async def stream_items(
    session: AsyncSession, listing: ItemListing, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> ChunkStream[Row[Any]]:
    """Every listed item as a plain row (``ITEM_COLUMNS`` and its score), chunk by chunk."""
    stmt = listing_statement(dialect_name(session), listing)
    async with aclosing(stream_chunks(session, stmt, chunk_rows, entities=False)) as chunks:
        async for chunk in chunks:
            yield chunk


async def page_items(
    db: Executor, listing: ItemListing, limit: int
) -> tuple[Sequence[Row[Any]], Keyset | None]:
    """At most ``limit`` items as plain rows, and the keyset to continue from when more may
    follow."""
    stmt, params = listing_query(dialect_name(db), listing, limit + 1)
    rows = (await execute(db, stmt, params)).all()
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], (sort_value(listing.sort, last), last.id)


async def items_by_id(db: Executor, item_ids: Sequence[int]) -> Sequence[Row[Any]]:
    """Items as plain rows (``ItemOut``'s fields), in id order."""
    stmt = select(*ITEM_COLUMNS).where(Item.id.in_(item_ids)).order_by(Item.id)
    return (await execute(db, stmt)).all()
