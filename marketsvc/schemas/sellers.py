"""Seller shapes: who sells catalogue items, and the platform's commission on them."""

from __future__ import annotations

from marshmallow import fields, validate

from marketsvc.schemas.common import Id, Name, PageQuery, StrictInt, StrictSchema, UtcDateTime
from marketsvc.schemas.dumping import dumper
from marketsvc.store.models import SELLER_STATUSES

MAX_COMMISSION_BPS = 10_000  # 100 %

STATUS_HELP = "active, or suspended: its items cannot be ordered and its tokens only read."
COMMISSION_HELP = "The platform's commission in basis points (1/100 of a percent): 0-10000."


class SellerCreate(StrictSchema):
    name = Name(max_length=200, required=True)
    commission_bps = StrictInt(
        required=True,
        validate=validate.Range(min=0, max=MAX_COMMISSION_BPS),
        metadata={"description": COMMISSION_HELP},
    )
    status = fields.String(
        validate=validate.OneOf(SELLER_STATUSES),
        load_default="active",
        metadata={"description": STATUS_HELP},
    )


class SellerPatch(StrictSchema):
    name = Name(max_length=200)
    commission_bps = StrictInt(
        validate=validate.Range(min=0, max=MAX_COMMISSION_BPS),
        metadata={"description": COMMISSION_HELP},
    )
    status = fields.String(
        validate=validate.OneOf(SELLER_STATUSES), metadata={"description": STATUS_HELP}
    )


class SellerOut(StrictSchema):
    id = Id(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(SELLER_STATUSES))
    commission_bps = fields.Integer(required=True)
    created_at = UtcDateTime(required=True)


class SellerQuery(PageQuery):
    status = fields.String(
        validate=validate.OneOf(SELLER_STATUSES),
        metadata={"description": "Only sellers with this status."},
    )


dump_seller = dumper(SellerOut)
