"""The catalogue: point reads, writes, and lists filtered, searched and sorted with keysets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from marketsvc.db_accessor import fulltext
from marketsvc.db_accessor.core import dialect_name
from marketsvc.db_accessor.paging import DEFAULT_CHUNK_ROWS, stream_chunks
from marketsvc.errors import ItemNotFound
from marketsvc.schemas.search_text import SearchText
from marketsvc.store.models import Item


class ItemSort(StrEnum):
    ID = "id"  # the default without q: the catalogue in id order
    RELEVANCE = "relevance"  # the default with q: best match first
    PRICE = "price"
    PRICE_DESC = "-price"
    NAME = "name"
    NEWEST = "-created"  # ids are handed out in creation order


Keyset = tuple[Any, int]  # the sort value and the id of the last row a client has seen


@dataclass(frozen=True)
class ItemListing:
    """Which items, in which order, from where."""

    q: SearchText | None = None
    min_price_cents: int | None = None
    max_price_cents: int | None = None
    in_stock: bool | None = None
    sort: ItemSort = ItemSort.ID
    after: Keyset | None = None


async def get_item(session: AsyncSession, item_id: int) -> Item:
    item = await session.get(Item, item_id)
    if item is None:
        raise ItemNotFound(item_id)
    return item


async def create_item(session: AsyncSession, data: dict[str, Any]) -> Item:
    item = Item(**data)
    session.add(item)
    await session.flush()
    return item


async def update_item(session: AsyncSession, item_id: int, changes: dict[str, Any]) -> Item:
    item = await get_item(session, item_id)
    for field, value in changes.items():
        setattr(item, field, value)
    await session.flush()
    return item


async def stream_items(
    session: AsyncSession, listing: ItemListing, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> AsyncIterator[Sequence[Item]]:
    """Every listed item, chunk by chunk."""
    stmt = listing_statement(dialect_name(session), listing)
    async for chunk in stream_chunks(session, stmt, chunk_rows):
        yield chunk


async def page_items(
    session: AsyncSession, listing: ItemListing, limit: int
) -> tuple[list[Item], Keyset | None]:
    """At most ``limit`` items, and the keyset to continue from when more may follow."""
    stmt = listing_statement(dialect_name(session), listing).limit(limit + 1)
    rows = (await session.execute(stmt)).all()
    more = len(rows) > limit
    found = [row[0] for row in rows[:limit]]
    if not more:
        return found, None
    last = rows[limit - 1]
    return found, (_sort_value(listing.sort, last), last[0].id)


def _sort_value(sort: ItemSort, row: Any) -> Any:
    match sort:
        case ItemSort.RELEVANCE:
            return row[1]
        case ItemSort.PRICE | ItemSort.PRICE_DESC:
            return row[0].price_cents
        case ItemSort.NAME:
            return row[0].name
    return None


def listing_statement(dialect: str, listing: ItemListing) -> Select[Any]:
    """One SELECT of (Item, score): filtered, ordered by the sort then id, after the keyset."""
    if listing.q is None:
        stmt, score = select(Item), None
    elif listing.q.finds_nothing:
        stmt, score = select(Item).where(false()), literal(0.0)
    else:
        found = fulltext.match(dialect, listing.q)
        stmt, score = found.stmt, found.score
    stmt = stmt.where(*_filters(listing))
    if listing.after is not None:
        stmt = stmt.where(_after(listing.sort, score, listing.after))
    return stmt.order_by(*_order(listing.sort, score))


def _filters(listing: ItemListing) -> list[ColumnElement[bool]]:
    where = []
    if listing.min_price_cents is not None:
        where.append(Item.price_cents >= listing.min_price_cents)
    if listing.max_price_cents is not None:
        where.append(Item.price_cents <= listing.max_price_cents)
    if listing.in_stock is not None:
        where.append(Item.stock > 0 if listing.in_stock else Item.stock == 0)
    return where


def _order(sort: ItemSort, score: ColumnElement[float] | None) -> list[Any]:
    match sort:
        case ItemSort.RELEVANCE:
            assert score is not None, "relevance needs q"
            return [score.desc(), Item.id]
        case ItemSort.PRICE:
            return [Item.price_cents, Item.id]
        case ItemSort.PRICE_DESC:
            return [Item.price_cents.desc(), Item.id.desc()]
        case ItemSort.NAME:
            return [Item.name, Item.id]
        case ItemSort.NEWEST:
            return [Item.id.desc()]
    return [Item.id]


def _after(sort: ItemSort, score: ColumnElement[float] | None, after: Keyset) -> Any:
    value, last_id = after
    match sort:
        case ItemSort.RELEVANCE:
            assert score is not None, "relevance needs q"
            return or_(score < value, and_(score == value, Item.id > last_id))
        case ItemSort.PRICE:
            return tuple_(Item.price_cents, Item.id) > (value, last_id)
        case ItemSort.PRICE_DESC:
            return tuple_(Item.price_cents, Item.id) < (value, last_id)
        case ItemSort.NAME:
            return tuple_(Item.name, Item.id) > (value, last_id)
        case ItemSort.NEWEST:
            return Item.id < last_id
    return Item.id > last_id
