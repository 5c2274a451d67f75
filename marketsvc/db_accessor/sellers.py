"""Sellers: who sells each catalogue item."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from marketsvc.errors import InvalidInput, SellerNotFound
from marketsvc.store.models import Seller


async def get_seller(session: AsyncSession, seller_id: int, lock: bool = False) -> Seller:
    """``lock``: the seller's row stays locked until the transaction ends (PostgreSQL)."""
    seller = await session.get(Seller, seller_id, with_for_update=lock or None)
    if seller is None:
        raise SellerNotFound(seller_id)
    return seller


async def seller_for_item(session: AsyncSession, seller_id: int) -> Seller:
    """The seller a new item names in its body: one that does not exist is a 422 there."""
    seller = await session.get(Seller, seller_id)
    if seller is None:
        raise InvalidInput({"body.seller_id": [f"Seller {seller_id} does not exist."]})
    return seller
