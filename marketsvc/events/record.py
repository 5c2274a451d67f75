"""Record the events of a change, inside the transaction that makes it: one call per change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from marketsvc.db_accessor import items, outbox
from marketsvc.db_accessor.core import Executor
from marketsvc.events.data import (
    customer_event,
    item_event,
    item_values,
    order_event,
    seller_order_event,
)
from marketsvc.schemas.event_data import PaymentRef

_payment_ref = PaymentRef()


def order_placed(order: Any) -> dict[str, Any]:
    """The ``order.placed`` row, for ``orders.place_order(..., announce=order_placed)``."""
    return outbox.creation_row(order_event("order.placed", order))


async def sold_out(db: Executor, order: Any) -> None:
    """After a placement: ``item.out_of_stock`` for each item it sold out."""
    await _stock_events(db, "item.out_of_stock", order.stock_crossed)


async def order_moved(db: Executor, order: Any, actor: Any) -> None:
    """``order.<status>``; a cancel says who cancelled (``actor``: a ``Principal``), and which
    items are back in stock."""
    if order.status != "cancelled":
        await outbox.record(db, order_event(f"order.{order.status}", order))
        return
    by = {"role": actor.role, "subject": actor.subject}
    await outbox.record(
        db, order_event("order.cancelled", order, cancelled_by=by, stock_restored=True)
    )
    await _stock_events(db, "item.back_in_stock", order.stock_crossed)


async def customer_saved(db: Executor, customer: Any, created: bool) -> None:
    name = "customer.created" if created else "customer.updated"
    await outbox.record(db, customer_event(name, customer))


async def item_created(db: Executor, item: Any) -> None:
    await outbox.record(db, item_event("item.created", item))


async def item_updated(db: Executor, item: Any, before: dict[str, Any]) -> None:
    """``item.updated`` with the changed fields' old values (nothing changed: no event), and
    ``item.out_of_stock`` / ``item.back_in_stock`` when the edit took the stock across zero."""
    after = item_values(item)
    previous = {field: old for field, old in before.items() if after[field] != old}
    if not previous:
        return
    await outbox.record(db, item_event("item.updated", item, previous))
    if before["stock"] > 0 and item.stock == 0:
        await outbox.record(db, item_event("item.out_of_stock", item))
    elif before["stock"] == 0 and item.stock > 0:
        await outbox.record(db, item_event("item.back_in_stock", item))


async def _stock_events(db: Executor, name: str, item_ids: Sequence[int]) -> None:
    if item_ids:
        for item in await items.items_by_id(db, item_ids):
            await outbox.record(db, item_event(name, item))


async def payment_conflict(db: Executor, order: Any, payment: dict[str, Any]) -> None:
    """``order.payment_conflict``: a payment succeeded for the cancelled ``order``.
    ``payment``: ``webhook_id``, ``payment_id`` and ``amount`` (cents or ``None``)."""
    data = {"payment": _payment_ref.dump(payment)}
    await outbox.record(db, order_event("order.payment_conflict", order, **data))


async def parts_awaiting(db: Executor, parts: Sequence[Any]) -> None:
    """After a payment: ``seller_order.awaiting_acceptance`` for each of the order's parts."""
    for part in parts:
        await outbox.record(db, seller_order_event("seller_order.awaiting_acceptance", part))


async def part_moved(db: Executor, part: Any, restocked: Sequence[int] = ()) -> None:
    """``seller_order.<status>``; after a refusal, ``item.back_in_stock`` for ``restocked``."""
    await outbox.record(db, seller_order_event(f"seller_order.{part.status}", part))
    await _stock_events(db, "item.back_in_stock", restocked)
