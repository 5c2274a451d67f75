"""Catalogue item shapes."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from marketsvc.schemas.common import (
    MAX_ID,
    MAX_PAGE,
    Id,
    Money,
    MoneyIn,
    Name,
    QueryInt,
    StrictInt,
    StrictSchema,
    Text,
)
from marketsvc.schemas.dumping import dumper, row_dumper
from marketsvc.schemas.search_text import SearchTextField

MAX_STOCK = 2**31 - 1
MAX_CURSOR_LENGTH = 600


class ItemCreate(StrictSchema):
    name = Name(max_length=200, required=True)
    description = Text(validate=validate.Length(max=10_000), load_default="")
    price = MoneyIn(required=True, data_key="price", attribute="price_cents")
    stock = StrictInt(required=True, validate=validate.Range(min=0, max=MAX_STOCK))
    seller_id = Id(
        metadata={
            "description": "Who sells it. An admin may name any seller (left out: 1, the "
            "default seller); a seller adds to its own catalogue only (another id is a 403)."
        }
    )


class ItemPatch(StrictSchema):
    name = Name(max_length=200)
    description = Text(validate=validate.Length(max=10_000))
    price = MoneyIn(data_key="price", attribute="price_cents")
    stock = StrictInt(validate=validate.Range(min=0, max=MAX_STOCK))


class ItemOut(StrictSchema):
    id = Id(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    price = Money(required=True, attribute="price_cents")
    stock = fields.Integer(required=True)
    seller_id = Id(required=True, metadata={"description": "Who sells it."})


dump_item = dumper(ItemOut)
# a listed row: ``item_listing.ITEM_COLUMNS`` and the score. Unpacked by position, a page of 20
# dumps in 24 us instead of 79 read by attribute (each a Row's key lookup; timeit, Intel Xeon)
dump_item_row = row_dumper(ItemOut, extra_columns=1)


SORTS = ("relevance", "price", "-price", "name", "-created")


class ItemQuery(StrictSchema):
    """``GET /api/v1/items``: search, filters, a sort, and where to start."""

    q = SearchTextField(
        metadata={
            "description": 'Words to find, web-search style: "a phrase", -excluded, a or b. '
            "Stemmed, accents ignored; sorts by relevance unless told otherwise. Each "
            "alternative needs a word to find (`-word` alone is a 422)."
        }
    )
    min_price = MoneyIn(attribute="min_price_cents", metadata={"description": "Inclusive."})
    max_price = MoneyIn(
        attribute="max_price_cents",
        metadata={"description": "Inclusive; below min_price is a 422."},
    )
    in_stock = fields.Boolean(
        truthy={"true"},
        falsy={"false"},
        metadata={"description": "true: only items in stock; false: only items out of stock."},
    )
    seller_id = QueryInt(
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "Only this seller's items."},
    )
    sort = fields.String(
        validate=validate.OneOf(SORTS),
        metadata={
            "description": "relevance (needs q, the default with it), price, -price, "
            "name, -created (newest first). Without q and sort: id order. Ties go by id."
        },
    )
    cursor = fields.String(
        validate=validate.Length(min=1, max=MAX_CURSOR_LENGTH),
        metadata={"description": 'From the previous page\'s Link rel="next" header.'},
    )
    after_id = QueryInt(
        validate=validate.Range(min=0, max=MAX_ID),
        metadata={
            "description": "Id order only (with q, sort or cursor it is a 422): the items "
            "whose id is greater than this one."
        },
    )
    limit = QueryInt(
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={
            "description": 'A page of at most this many, with a Link rel="next" header '
            "when more may follow; without it, every item streams."
        },
    )

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("sort") == "relevance" and "q" not in data:
            raise ValidationError("relevance needs q.", "sort")
        low, high = data.get("min_price_cents"), data.get("max_price_cents")
        if low is not None and high is not None and low > high:
            raise ValidationError("Must not be below min_price.", "max_price")
        if "after_id" in data and ({"q", "sort", "cursor"} & data.keys()):
            raise ValidationError("after_id pages the id order only; use cursor.", "after_id")
