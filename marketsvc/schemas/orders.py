"""Order shapes: what a client may send, and the order, line and total it gets back."""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate

from marketsvc.schemas.common import (
    MAX_ID,
    Id,
    Ids,
    Money,
    PageQuery,
    QueryInt,
    StrictInt,
    StrictSchema,
    UtcDateTime,
)
from marketsvc.schemas.dumping import dumper
from marketsvc.store.models import ALL_ORDER_STATUSES, SELLER_ORDER_STATUSES

MAX_QUANTITY = 10_000
MAX_LINES = 100
MAX_TOTALS = 1000


@dataclass(frozen=True)
class LineRequest:
    """One line after merging: ``index`` is where the item first appeared in the request."""

    item_id: int
    quantity: int
    index: int


class OrderLineIn(StrictSchema):
    item_id = Id(required=True)
    quantity = StrictInt(required=True, validate=validate.Range(min=1, max=MAX_QUANTITY))


class OrderCreate(StrictSchema):
    customer_id = Id(required=True)
    lines = fields.List(
        fields.Nested(OrderLineIn),
        required=True,
        validate=validate.Length(min=1, max=MAX_LINES),
    )

    @post_load
    def merge_lines(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Lines naming the same item become one, sorted by item id (the order stock is locked)."""
        merged: dict[int, LineRequest] = {}
        for index, line in enumerate(data["lines"]):
            first = merged.get(line["item_id"])
            quantity = line["quantity"] + (first.quantity if first else 0)
            if quantity > MAX_QUANTITY:
                message = f"Lines for item {line['item_id']} add up to more than {MAX_QUANTITY}."
                raise ValidationError({"lines": {index: {"quantity": [message]}}})
            merged[line["item_id"]] = LineRequest(
                line["item_id"], quantity, first.index if first else index
            )
        lines = sorted(merged.values(), key=attrgetter("item_id"))
        return {"customer_id": data["customer_id"], "lines": lines}


class OrderLineOut(StrictSchema):
    item_id = Id(required=True)
    name = fields.String(required=True)
    unit_price = Money(required=True, attribute="unit_price_cents")
    quantity = fields.Integer(required=True)
    line_total = Money(required=True, attribute="line_total_cents")


class PartOut(StrictSchema):
    """A seller order as its order shows it."""

    id = Id(required=True)
    seller_id = Id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(SELLER_ORDER_STATUSES))
    item_ids = fields.List(Id(), required=True, metadata={"description": "Its lines' items."})
    subtotal = Money(required=True, attribute="subtotal_cents")
    carrier = fields.String(required=True, allow_none=True)
    tracking_number = fields.String(required=True, allow_none=True)


class OrderOut(StrictSchema):
    id = Id(required=True)
    customer_id = Id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(ALL_ORDER_STATUSES))
    placed_at = UtcDateTime(required=True)
    lines = fields.List(fields.Nested(OrderLineOut), required=True)
    total = Money(required=True, attribute="total_cents")
    seller_orders = fields.List(
        fields.Nested(PartOut),
        required=True,
        attribute="parts",
        metadata={"description": "One part per seller of its lines, fulfilled by that seller."},
    )


class OrderStatusPatch(StrictSchema):
    status = fields.String(
        required=True,
        validate=validate.OneOf(ALL_ORDER_STATUSES),
        metadata={
            "description": "paid or cancelled; past paid the status follows the seller orders."
        },
    )


class CustomerOrdersQuery(PageQuery):
    status = fields.String(
        validate=validate.OneOf(ALL_ORDER_STATUSES),
        metadata={"description": "Only orders in this status (default: any)."},
    )
    placed_after = UtcDateTime(
        metadata={"description": "Only orders placed at or after this time (RFC 3339)."}
    )
    placed_before = UtcDateTime(
        metadata={"description": "Only orders placed before this time (RFC 3339)."}
    )


class OrdersQuery(CustomerOrdersQuery):
    customer_id = QueryInt(
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "Only this customer's orders (a customer's token sees its own)."},
    )


class TotalsRequest(StrictSchema):
    order_ids = Ids(required=True, validate=validate.Length(min=1, max=MAX_TOTALS))


class TotalOut(StrictSchema):
    order_id = Id(required=True)
    total = Money(required=True, attribute="total_cents")


class TotalsOut(StrictSchema):
    totals = fields.List(fields.Nested(TotalOut), required=True)
    missing = fields.List(Id(), required=True)


dump_order = dumper(OrderOut)
dump_total = dumper(TotalOut)
dump_totals = dumper(TotalsOut)
