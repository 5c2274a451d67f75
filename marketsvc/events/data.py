"""Each event's ``data``: the resource as the API returns it after the change.

The one place that turns a changed resource into an event, so that a new way of building
response bodies is switched here once.
"""

from __future__ import annotations

from typing import Any

from marketsvc.events.types import NewEvent
from marketsvc.schemas.customers import dump_customer
from marketsvc.schemas.event_data import ItemPrevious
from marketsvc.schemas.items import dump_item
from marketsvc.schemas.orders import dump_order
from marketsvc.schemas.seller_orders import dump_seller_order

_item_previous = ItemPrevious()  # dumps a dict of old values: marshmallow reads mappings
ITEM_FIELDS = ("name", "description", "price_cents", "stock")


def order_event(name: str, order: Any, **extra: Any) -> NewEvent:
    """``order``: an ``OrderView`` or an entity with its lines."""
    return NewEvent(name, f"orders/{order.id}", dump_order(order) | extra, order.customer_id)


def seller_order_event(name: str, part: Any) -> NewEvent:
    """``part``: a ``seller_orders.SellerOrderView``; its customer may read the event too."""
    return NewEvent(name, f"seller-orders/{part.id}", dump_seller_order(part), part.customer_id)


def customer_event(name: str, customer: Any) -> NewEvent:
    return NewEvent(name, f"customers/{customer.id}", dump_customer(customer), customer.id)


def item_event(name: str, item: Any, previous: dict[str, Any] | None = None) -> NewEvent:
    """``previous``: for ``item.updated``, the changed fields' old values (model attributes)."""
    data = dump_item(item)
    if previous is not None:
        data["previous"] = _item_previous.dump(previous)
    return NewEvent(name, f"items/{item.id}", data)


def item_values(item: Any) -> dict[str, Any]:
    """An item's editable values, to compare before and after an edit."""
    return {field: getattr(item, field) for field in ITEM_FIELDS}
