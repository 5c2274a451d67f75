"""The ``data`` of the events whose payload is more than the resource as the API returns it."""

from __future__ import annotations

from marshmallow import fields, validate

from marketsvc.schemas.common import Money, StrictSchema
from marketsvc.schemas.items import ItemOut
from marketsvc.schemas.orders import OrderOut

ROLES = ("admin", "customer", "payments")  # payments: a payment result (services.payments)


class Actor(StrictSchema):
    """Who made a change: the token's role and subject."""

    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    subject = fields.String(required=True)


class OrderCancelledData(OrderOut):
    cancelled_by = fields.Nested(Actor, required=True)
    stock_restored = fields.Boolean(required=True)


class ItemPrevious(StrictSchema):
    """The values an item edit replaced: only the fields that changed."""

    name = fields.String()
    description = fields.String()
    price = Money(attribute="price_cents")
    stock = fields.Integer()


class ItemUpdatedData(ItemOut):
    previous = fields.Nested(ItemPrevious, required=True)


class PaymentRef(StrictSchema):
    """The payment event behind a change: the sender's ``webhook-id`` and its payment."""

    webhook_id = fields.String(required=True)
    payment_id = fields.String(required=True)
    amount = Money(required=True, allow_none=True)


class OrderPaymentConflictData(OrderOut):
    """A payment succeeded for an order that was already cancelled: it needs a refund."""

    payment = fields.Nested(PaymentRef, required=True)
