"""Order shapes: what a client may send, and the order, line and total it gets back."""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate

from marketsvc.schemas.common import (
    MAX_ID,
    Id,
    Money,
    PageQuery,
    QueryInt,
    StrictInt,
    StrictSchema,
    UtcDateTime,
    format_cents,
    format_timestamp,
)
from marketsvc.store.models import ORDER_STATUSES

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
    unit_price = Money(required=True)
    quantity = fields.Integer(required=True)
    line_total = Money(required=True)


class OrderOut(StrictSchema):
    id = Id(required=True)
    customer_id = Id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(ORDER_STATUSES))
    placed_at = UtcDateTime(required=True)
    lines = fields.List(fields.Nested(OrderLineOut), required=True)
    total = Money(required=True)


class OrderStatusPatch(StrictSchema):
    status = fields.String(required=True, validate=validate.OneOf(ORDER_STATUSES))


class CustomerOrdersQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES))
    placed_after = UtcDateTime()
    placed_before = UtcDateTime()


class OrdersQuery(CustomerOrdersQuery):
    customer_id = QueryInt(validate=validate.Range(min=1, max=MAX_ID))


class TotalsRequest(StrictSchema):
    order_ids = fields.List(Id(), required=True, validate=validate.Length(min=1, max=MAX_TOTALS))


class TotalOut(StrictSchema):
    order_id = Id(required=True)
    total = Money(required=True)


class TotalsOut(StrictSchema):
    totals = fields.List(fields.Nested(TotalOut), required=True)
    missing = fields.List(Id(), required=True)


def order_dict(order: Any) -> dict[str, Any]:
    """An order (entity or ``OrderView``) with its lines in the ``OrderOut`` shape, without
    marshmallow's cost (the contract tests check every response against ``OrderOut``)."""
    lines, total = [], 0
    for line in order.lines:
        line_total = line.unit_price_cents * line.quantity
        total += line_total
        lines.append(
            {
                "item_id": line.item_id,
                "name": line.name,
                "unit_price": format_cents(line.unit_price_cents),
                "quantity": line.quantity,
                "line_total": format_cents(line_total),
            }
        )
    return {
        "id": order.id,
        "customer_id": order.customer_id,
        "status": order.status,
        "placed_at": format_timestamp(order.placed_at),
        "lines": lines,
        "total": format_cents(total),
    }


def total_dict(order_id: int, total_cents: int) -> dict[str, Any]:
    return {"order_id": order_id, "total": format_cents(total_cents)}
