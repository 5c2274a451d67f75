"""Seller order shapes: the part a seller fulfils, its moves, its lists, a seller's balance."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from marketsvc.schemas.common import (
    MAX_ID,
    Id,
    Money,
    PageQuery,
    QueryInt,
    StrictSchema,
    UtcDateTime,
)
from marketsvc.schemas.dumping import dumper
from marketsvc.store.models import SELLER_ORDER_STATUSES

SELLER_MOVES = ("accepted", "shipped", "delivered", "refused")


class SellerLineOut(StrictSchema):
    item_id = Id(required=True)
    name = fields.String(required=True)
    unit_price = Money(required=True, attribute="unit_price_cents")
    quantity = fields.Integer(required=True)
    line_total = Money(required=True, attribute="line_total_cents")
    commission_bps = fields.Integer(
        required=True, metadata={"description": "The seller's rate when the order was placed."}
    )
    commission = Money(
        required=True,
        attribute="commission_cents",
        metadata={"description": "line_total x commission_bps / 10000, half-even to the cent."},
    )


class SellerOrderOut(StrictSchema):
    id = Id(required=True)
    order_id = Id(required=True)
    seller_id = Id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(SELLER_ORDER_STATUSES))
    placed_at = UtcDateTime(required=True)
    carrier = fields.String(required=True, allow_none=True)
    tracking_number = fields.String(required=True, allow_none=True)
    lines = fields.List(fields.Nested(SellerLineOut), required=True)
    subtotal = Money(required=True, attribute="subtotal_cents")
    commission = Money(required=True, attribute="commission_cents")
    refund_owed = Money(
        required=True,
        attribute="refund_cents",
        metadata={"description": "Owed back to the customer: the subtotal once refused."},
    )


class SellerOrderPatch(StrictSchema):
    status = fields.String(required=True, validate=validate.OneOf(SELLER_MOVES))
    carrier = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Required when shipping (status shipped), and only then."},
    )
    tracking_number = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Required when shipping (status shipped), and only then."},
    )

    @validates_schema
    def shipment_only_when_shipping(self, data: dict[str, Any], **_: Any) -> None:
        given = [name for name in ("carrier", "tracking_number") if name in data]
        if data.get("status") == "shipped":
            missing = {"carrier", "tracking_number"} - set(given)
            if missing:
                raise ValidationError({name: ["Required to ship."] for name in sorted(missing)})
        elif given:
            raise ValidationError({name: ["Only when shipping."] for name in given})


class SellerOrdersQuery(PageQuery):
    seller_id = QueryInt(
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "Only this seller's parts (a seller's token sees its own)."},
    )
    status = fields.String(
        validate=validate.OneOf(SELLER_ORDER_STATUSES),
        metadata={"description": "Only parts in this status (default: any)."},
    )
    placed_after = UtcDateTime(
        metadata={"description": "Only parts of orders placed at or after this time (RFC 3339)."}
    )
    placed_before = UtcDateTime(
        metadata={"description": "Only parts of orders placed before this time (RFC 3339)."}
    )


class RefundOut(StrictSchema):
    order_id = Id(required=True)
    amount = Money(required=True, attribute="amount_cents")


class BalanceOut(StrictSchema):
    seller_id = Id(required=True)
    delivered_parts = fields.Integer(required=True)
    gross = Money(required=True, attribute="gross_cents", metadata={"description": "Delivered."})
    commission = Money(required=True, attribute="commission_cents")
    net_owed = Money(
        required=True, attribute="net_cents", metadata={"description": "gross - commission"}
    )
    refunds_owed = fields.List(
        fields.Nested(RefundOut),
        required=True,
        metadata={"description": "Owed back to customers for refused parts, per order."},
    )


dump_seller_order = dumper(SellerOrderOut)
dump_balance = dumper(BalanceOut)
