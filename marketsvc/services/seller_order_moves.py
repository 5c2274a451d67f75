"""Moving a seller order: the part's status, the stock a refusal gives back, the order's derived
status and the events that tell of each, in one transaction."""

from __future__ import annotations

from marketsvc.db_accessor import orders, seller_orders
from marketsvc.db_accessor.seller_orders import PartMove
from marketsvc.events import record
from marketsvc.store.engine import Database
from marketsvc.store.models import OrderLine
from marketsvc.web.auth import Principal


async def move_seller_order(
    database: Database,
    part_id: int,
    target: str,
    actor: Principal,
    shipment: dict[str, str] | None = None,
) -> PartMove:
    """A seller ``actor`` moves only its own parts (another's: 404); an admin any."""
    async with database.change() as session:
        move = await seller_orders.move_part(session, part_id, target, actor.seller_id, shipment)
        restocked: tuple[int, ...] = ()
        if target == "refused":
            restocked = await orders.restore_stock(session, OrderLine.seller_order_id == part_id)
        await record.part_moved(session, move.part, restocked)
        if move.order_status is not None:
            order = await orders.get_order(session, move.part.order_id)
            await record.order_moved(session, order, actor)
        return move
