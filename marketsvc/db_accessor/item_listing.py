"""The one SELECT behind every item list: search, filters, a sort, and a keyset to start after.

A statement is built once per shape (database, sort, which filters, whether there is a keyset)
and cached; the values of a request travel as parameters. Building the search statement anew
cost some 370 us a request.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Select,
    String,
    and_,
    bindparam,
    false,
    literal,
    or_,
    select,
    tuple_,
)

from marketsvc.db_accessor import fulltext
from marketsvc.schemas.search_text import SearchText
from marketsvc.store.models import Item


class ItemSort(StrEnum):
    ID = "id"  # the default without q: the catalogue in id order
    RELEVANCE = "relevance"  # the default with q: best match first
    PRICE = "price"
    PRICE_DESC = "-price"
    NAME = "name"
    NEWEST = "-created"  # ids are handed out in creation order


Keyset = tuple[Any, int]  # the sort value and the id of the last row a client has seen


@dataclass(frozen=True)
class ItemListing:
    """Which items, in which order, from where."""

    q: SearchText | None = None
    min_price_cents: int | None = None
    max_price_cents: int | None = None
    in_stock: bool | None = None
    sort: ItemSort = ItemSort.ID
    after: Keyset | None = None
    seller_id: int | None = None


class _Shape(NamedTuple):
    dialect: str
    search: str  # "" (no q), "nothing" (only stop words), "words"
    sort: ItemSort
    min_price: bool
    max_price: bool
    in_stock: bool | None
    after: bool
    seller: bool = False


def listing_statement(dialect: str, listing: ItemListing) -> Select[Item, float]:
    """``select(Item, score)``: filtered, ordered by the sort then id, after the keyset."""
    q = listing.q
    search = "" if q is None else "nothing" if q.finds_nothing else "words"
    shape = _Shape(
        dialect,
        search,
        listing.sort,
        listing.min_price_cents is not None,
        listing.max_price_cents is not None,
        listing.in_stock,
        listing.after is not None,
        listing.seller_id is not None,
    )
    params: dict[str, Any] = {}
    if search == "words":
        assert q is not None
        params |= fulltext.parameters(dialect, q)
    if shape.min_price:
        params["min_price"] = listing.min_price_cents
    if shape.max_price:
        params["max_price"] = listing.max_price_cents
    if shape.seller:
        params["seller_id"] = listing.seller_id
    if listing.after is not None:
        params["after_value"], params["after_id"] = listing.after
    stmt = _statement(shape)
    return stmt.params(params) if params else stmt


@functools.lru_cache(maxsize=512)
def _statement(shape: _Shape) -> Select[Item, float]:
    score: ColumnElement[Any] | None = None
    if shape.search == "":
        stmt = select(Item, literal(0.0).label("score"))
    elif shape.search == "nothing":
        score = literal(0.0)
        stmt = select(Item, score.label("score")).where(false())
    else:
        found = fulltext.match(shape.dialect)
        stmt, score = found.stmt, found.score
    if shape.min_price:
        stmt = stmt.where(Item.price_cents >= bindparam("min_price", type_=BigInteger))
    if shape.max_price:
        stmt = stmt.where(Item.price_cents <= bindparam("max_price", type_=BigInteger))
    if shape.in_stock is not None:
        stmt = stmt.where(Item.stock > 0 if shape.in_stock else Item.stock == 0)
    if shape.seller:
        stmt = stmt.where(Item.seller_id == bindparam("seller_id", type_=BigInteger))
    if shape.after:
        stmt = stmt.where(_after(shape.sort, score))
    return stmt.order_by(*_order(shape.sort, score))


def _order(sort: ItemSort, score: ColumnElement[Any] | None) -> list[Any]:
    match sort:
        case ItemSort.RELEVANCE:
            assert score is not None, "relevance needs q"
            return [score.desc(), Item.id]
        case ItemSort.PRICE:
            return [Item.price_cents, Item.id]
        case ItemSort.PRICE_DESC:
            return [Item.price_cents.desc(), Item.id.desc()]
        case ItemSort.NAME:
            return [Item.name, Item.id]
        case ItemSort.NEWEST:
            return [Item.id.desc()]
    return [Item.id]


def _after(sort: ItemSort, score: ColumnElement[Any] | None) -> Any:
    last_id = bindparam("after_id", type_=BigInteger)
    match sort:
        case ItemSort.RELEVANCE:
            assert score is not None, "relevance needs q"
            value = bindparam("after_value", type_=Float)
            return or_(score < value, and_(score == value, Item.id > last_id))
        case ItemSort.PRICE:
            value = bindparam("after_value", type_=BigInteger)
            return tuple_(Item.price_cents, Item.id) > tuple_(value, last_id)
        case ItemSort.PRICE_DESC:
            value = bindparam("after_value", type_=BigInteger)
            return tuple_(Item.price_cents, Item.id) < tuple_(value, last_id)
        case ItemSort.NAME:
            value = bindparam("after_value", type_=String)
            return tuple_(Item.name, Item.id) > tuple_(value, last_id)
        case ItemSort.NEWEST:
            return Item.id < last_id
    return Item.id > last_id


def sort_value(sort: ItemSort, item: Item, score: Any) -> Any:
    """What the keyset holds for ``sort`` besides the id."""
    match sort:
        case ItemSort.RELEVANCE:
            return score
        case ItemSort.PRICE | ItemSort.PRICE_DESC:
            return item.price_cents
        case ItemSort.NAME:
            return item.name
    return None
