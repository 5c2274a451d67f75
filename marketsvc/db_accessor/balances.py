"""A seller's balance: what its delivered parts earned, the platform's commission on them, and
what is owed back to customers for its refused parts. Aggregated by the database, in cents."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, func, select

from marketsvc.db_accessor.core import Executor, execute
from marketsvc.errors import SellerNotFound
from marketsvc.store.models import OrderLine, Seller, SellerOrder


@dataclass(frozen=True)
class Refund:
    order_id: int
    amount_cents: int


@dataclass(frozen=True)
class Balance:
    seller_id: int
    delivered_parts: int
    gross_cents: int
    commission_cents: int
    refunds_owed: list[Refund]

    @property
    def net_cents(self) -> int:
        return self.gross_cents - self.commission_cents


# one row per seller that exists: its delivered parts' count, gross and commission
_DELIVERED = (
    select(
        Seller.id,
        func.count(func.distinct(SellerOrder.id)),
        func.coalesce(func.sum(OrderLine.unit_price_cents * OrderLine.quantity), 0),
        func.coalesce(func.sum(OrderLine.commission_cents), 0),
    )
    .select_from(Seller)
    .outerjoin(
        SellerOrder, and_(SellerOrder.seller_id == Seller.id, SellerOrder.status == "delivered")
    )
    .outerjoin(OrderLine, OrderLine.seller_order_id == SellerOrder.id)
    .where(Seller.id == bindparam("seller_id"))
    .group_by(Seller.id)
)
_REFUNDS = (
    select(SellerOrder.order_id, func.sum(SellerOrder.refund_cents))
    .where(SellerOrder.seller_id == bindparam("seller_id"), SellerOrder.refund_cents > 0)
    .group_by(SellerOrder.order_id)
    .order_by(SellerOrder.order_id)
)


async def seller_balance(db: Executor, seller_id: int) -> Balance:
    """Two aggregated queries; 404 for a seller that does not exist."""
    params = {"seller_id": seller_id}
    row = (await execute(db, _DELIVERED, params)).one_or_none()
    if row is None:
        raise SellerNotFound(seller_id)
    refunds = [
        Refund(order_id, int(cents)) for order_id, cents in await execute(db, _REFUNDS, params)
    ]
    return Balance(seller_id, int(row[1]), int(row[2]), int(row[3]), refunds)
