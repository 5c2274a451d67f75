"""Catalogue item shapes."""

from __future__ import annotations

from marshmallow import fields, validate

from marketsvc.schemas.common import Id, Money, Name, StrictInt, StrictSchema, Text
from marketsvc.schemas.dumping import dumper

MAX_STOCK = 2**31 - 1


class ItemCreate(StrictSchema):
    name = Name(max_length=200, required=True)
    description = Text(validate=validate.Length(max=10_000), load_default="")
    price = Money(required=True, data_key="price", attribute="price_cents")
    stock = StrictInt(required=True, validate=validate.Range(min=0, max=MAX_STOCK))


class ItemPatch(StrictSchema):
    name = Name(max_length=200)
    description = Text(validate=validate.Length(max=10_000))
    price = Money(data_key="price", attribute="price_cents")
    stock = StrictInt(validate=validate.Range(min=0, max=MAX_STOCK))


class ItemOut(StrictSchema):
    id = Id(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    price = Money(required=True, attribute="price_cents")
    stock = fields.Integer(required=True)


dump_item = dumper(ItemOut)
