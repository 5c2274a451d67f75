"""Payment events a payment provider sends, and what the service answers."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from marketsvc.schemas.common import Id, MoneyIn, UtcDateTime
from marketsvc.schemas.dumping import dumper

PAYMENT_TYPES = ("payment.succeeded", "payment.failed")
# applied: the order moved (to paid, or cancelled with its stock restored); conflict: a success
# for a cancelled order (an order.payment_conflict event: refund it); ignored: the order is
# already past what the event could change; unknown_order: no such order
OUTCOMES = ("applied", "conflict", "ignored", "unknown_order")


class PaymentData(Schema):
    """The payment; fields beyond these are accepted and ignored (providers add their own)."""

    class Meta:
        unknown = EXCLUDE

    order_id = Id(required=True)
    payment_id = fields.String(required=True, validate=validate.Length(min=1, max=255))
    amount = MoneyIn(load_default=None, allow_none=True)


class PaymentEventIn(Schema):
    class Meta:
        unknown = EXCLUDE

    type = fields.String(required=True, validate=validate.OneOf(PAYMENT_TYPES))
    data = fields.Nested(PaymentData, required=True)


class PaymentEventOut(Schema):
    """The inbox's record of the event; ``duplicate``: this ``webhook-id`` had arrived before,
    and the answer is the first delivery's (nothing changed now)."""

    webhook_id = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(PAYMENT_TYPES))
    order_id = fields.Integer(required=True)
    payment_id = fields.String(required=True)
    received_at = UtcDateTime(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    duplicate = fields.Boolean(required=True)


dump_payment_event = dumper(PaymentEventOut)  # a ``payment_inbox.InboxEntry``
