"""Moving an order along its lifecycle: the status change, the stock it gives back and the
event that tells of it, in one transaction. Every path that moves an order (the PATCH route,
a payment result) goes through ``move_in``, so each keeps the same rules and events."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from marketsvc.db_accessor import orders, seller_orders
from marketsvc.db_accessor.orders import OrderView
from marketsvc.events import record
from marketsvc.store.engine import Database
from marketsvc.web.auth import Principal


async def move_order(database: Database, order_id: int, target: str, actor: Principal) -> OrderView:
    """Move the order to ``target`` in a transaction of its own."""
    async with database.change() as session:
        return await move_in(session, order_id, target, actor)


async def move_in(session: AsyncSession, order_id: int, target: str, actor: Principal) -> OrderView:
    """Move the order inside the caller's transaction; a customer ``actor`` may touch only its
    own orders (404 for another's) and only cancel them while pending. Paying it puts its
    seller orders before their sellers (an event each); past paid it follows its parts."""
    order = await orders.change_status(session, order_id, target, actor.customer_id)
    await record.order_moved(session, order, actor)
    if order.status == "paid":
        await record.parts_awaiting(session, seller_orders.parts_of_order(order))
    return order
