"""Sellers: who sells each catalogue item; a suspended seller's items cannot be ordered."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import aclosing
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsvc.db_accessor.core import Executor, execute
from marketsvc.db_accessor.paging import DEFAULT_CHUNK_ROWS, ChunkStream, page, stream_chunks
from marketsvc.errors import (
    Forbidden,
    InvalidInput,
    SellerNotFound,
    SellerSuspended,
    SellerSuspendedItems,
)
from marketsvc.store.models import Item, Seller


async def get_seller(session: AsyncSession, seller_id: int, lock: bool = False) -> Seller:
    """``lock``: the seller's row stays locked until the transaction ends (PostgreSQL)."""
    seller = await session.get(Seller, seller_id, with_for_update=lock or None)
    if seller is None:
        raise SellerNotFound(seller_id)
    return seller


async def create_seller(session: AsyncSession, data: dict[str, Any]) -> Seller:
    seller = Seller(**data)
    session.add(seller)
    await session.flush()
    return seller


async def change_seller(session: AsyncSession, seller_id: int, changes: dict[str, Any]) -> Seller:
    seller = await get_seller(session, seller_id, lock=True)
    for field, value in changes.items():
        setattr(seller, field, value)
    await session.flush()
    return seller


async def stream_sellers(
    session: AsyncSession,
    after_id: int = 0,
    limit: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    status: str | None = None,
) -> ChunkStream[Seller]:
    stmt = select(Seller)
    if status is not None:
        stmt = stmt.where(Seller.status == status)
    async with aclosing(
        stream_chunks(session, page(stmt, Seller.id, after_id, limit), chunk_rows)
    ) as chunks:
        async for chunk in chunks:
            yield chunk


async def seller_for_item(session: AsyncSession, seller_id: int) -> Seller:
    """The seller a new item names in its body: one that does not exist is a 422 there."""
    seller = await session.get(Seller, seller_id)
    if seller is None:
        raise InvalidInput({"body.seller_id": [f"Seller {seller_id} does not exist."]})
    return seller


async def require_active(session: AsyncSession, seller_id: int) -> Seller:
    """The seller a seller's token acts for, if it may change things: a suspended one (or one
    that no longer exists) is refused with 403. For every write a seller's token makes."""
    seller = await session.get(Seller, seller_id)
    if seller is None:
        raise Forbidden(f"seller {seller_id}, whom this token names, does not exist")
    if seller.status != "active":
        raise SellerSuspended(seller_id)
    return seller


# Placement: the stock-taking UPDATE takes only items whose seller is active (this condition,
# in db_accessor/orders._take_stock_statement); a line it did not take is then explained by
# raise_if_suspended (409 naming the items) before it is called short of stock.
ITEM_SELLER_ACTIVE: ColumnElement[bool] = Item.seller_id.in_(
    select(Seller.id).where(Seller.status == "active").scalar_subquery()
)


async def raise_if_suspended(db: Executor, item_ids: Sequence[int]) -> None:
    """409 naming those of ``item_ids`` whose seller is suspended, if any."""
    stmt = (
        select(Item.id)
        .join(Seller, Seller.id == Item.seller_id)
        .where(Item.id.in_(item_ids), Seller.status != "active")
        .order_by(Item.id)
    )
    suspended = list((await execute(db, stmt)).scalars())
    if suspended:
        raise SellerSuspendedItems(suspended)
