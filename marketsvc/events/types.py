"""The event catalogue: every type the service emits, with the schema of its ``data``.

A new type is one line in ``CATALOGUE``; its documentation (``schemas.events``) follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import Schema

from marketsvc.schemas.customers import CustomerOut
from marketsvc.schemas.event_data import (
    ItemUpdatedData,
    OrderCancelledData,
    OrderPaymentConflictData,
)
from marketsvc.schemas.items import ItemOut
from marketsvc.schemas.orders import OrderOut
from marketsvc.schemas.seller_orders import SellerOrderOut
from marketsvc.schemas.webhook_subscriptions import SubscriptionOut

TYPE_PREFIX = "com.marketsvc."
DATA_CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class EventType:
    name: str  # "order.placed"
    data: type[Schema]
    summary: str
    creates: bool = False  # the first event about its subject: its sequence number is 1
    version: int = 1

    @property
    def type(self) -> str:
        """The CloudEvents ``type``: ``com.marketsvc.order.placed.v1``."""
        return f"{TYPE_PREFIX}{self.name}.v{self.version}"


CATALOGUE: dict[str, EventType] = {
    t.name: t
    for t in (
        EventType("order.placed", OrderOut, "An order was placed and its stock taken.", True),
        EventType("order.paid", OrderOut, "An order was paid."),
        EventType("order.shipped", OrderOut, "Every part of an order not refused has shipped."),
        EventType("order.delivered", OrderOut, "Every part of an order not refused is delivered."),
        EventType(
            "order.cancelled", OrderCancelledData, "An order was cancelled; its stock restored."
        ),
        EventType("customer.created", CustomerOut, "A customer was added.", True),
        EventType("customer.updated", CustomerOut, "A customer or its address changed."),
        EventType("item.created", ItemOut, "An item was added to the catalogue.", True),
        EventType("item.updated", ItemUpdatedData, "An item was edited: new values, and old."),
        EventType("item.out_of_stock", ItemOut, "An item's stock fell to zero."),
        EventType("item.back_in_stock", ItemOut, "An item's stock rose from zero."),
        EventType(
            "webhook_subscription.disabled",
            SubscriptionOut,
            "A webhook subscription was disabled: its deliveries failed for too long.",
        ),
        EventType(
            "order.payment_conflict",
            OrderPaymentConflictData,
            "A payment succeeded for an order already cancelled: the payment needs a refund.",
        ),
        EventType(
            "seller_order.awaiting_acceptance",
            SellerOrderOut,
            "An order was paid: its part awaits its seller's acceptance.",
            True,
        ),
        EventType("seller_order.accepted", SellerOrderOut, "A seller accepted its part."),
        EventType(
            "seller_order.refused",
            SellerOrderOut,
            "A seller refused its part: its stock restored, its subtotal owed to the customer.",
        ),
        EventType("seller_order.shipped", SellerOrderOut, "A seller shipped its part."),
        EventType("seller_order.delivered", SellerOrderOut, "A seller's part was delivered."),
        EventType(
            "order.partially_shipped", OrderOut, "Some of an order's parts have shipped, not all."
        ),
        EventType("order.refused", OrderOut, "Every seller refused its part of an order."),
    )
}
BY_TYPE = {t.type: t for t in CATALOGUE.values()}


@dataclass(frozen=True)
class NewEvent:
    """An event to record: what happened, to which resource, and who besides admins may read it."""

    name: str
    subject: str  # "orders/42"
    data: dict[str, Any]
    customer_id: int | None = None

    @property
    def kind(self) -> EventType:
        return CATALOGUE[self.name]
