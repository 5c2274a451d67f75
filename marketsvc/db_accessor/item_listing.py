"""The one SELECT behind every item list: search, filters, a sort, and a keyset to start after.

A statement is built once per shape (database, sort, which filters, whether there is a keyset,
whether it is a page) and cached; the values of a request travel as parameters. Building the
search statement anew cost some 370 us a request.

A search by relevance is two tiers (``fulltext.tier``: found in the name, then through the
description), each walked in id order from its own keyset and cut at the page size, one after
the other (UNION ALL): a page of a common word reads a page of rows, not every match.
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
    Integer,
    Select,
    String,
    and_,
    bindparam,
    false,
    literal,
    or_,
    select,
    tuple_,
    union_all,
)

from marketsvc.db_accessor import fulltext
from marketsvc.schemas.dumping import row_columns
from marketsvc.schemas.items import ItemOut
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

# What a listed item is: plain columns (``ItemOut``'s fields, in the order
# ``schemas.items.dump_item_row`` unpacks them), then its score. Rows, not entities: a page of 20
# loaded as ORM entities cost some 300 us of hydration and session.
ITEM_COLUMNS = tuple(row_columns(ItemOut, Item))


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
    search: str  # "" (no q), "nothing" (only stop words), or a fulltext.Kind
    sort: ItemSort
    min_price: bool
    max_price: bool
    in_stock: bool | None
    after: bool
    limited: bool
    seller: bool = False
    terms: int = 0  # PostgreSQL: the name tier merges this many words' lists (fulltext.tier)
    pair: bool = False  # PostgreSQL: the tiers read a phrase's pair list (fulltext.tier)


def listing_statement(
    dialect: str, listing: ItemListing, limit: int | None = None
) -> Select[*tuple[Any, ...]]:
    """``select(*ITEM_COLUMNS, score)``: filtered, ordered by the sort then id, after the
    keyset, at most ``limit`` rows."""
    stmt, params = listing_query(dialect, listing, limit)
    return stmt.params(params) if params else stmt


def listing_query(
    dialect: str, listing: ItemListing, limit: int | None = None
) -> tuple[Select[*tuple[Any, ...]], dict[str, Any]]:
    """The same as :func:`listing_statement`, as the shape's cached statement and the values
    to execute it with: SQLAlchemy keys its compiled-SQL cache by a walk of the statement,
    remembered on the statement object, so executing the one cached object skips the walk
    (``stmt.params()`` makes a new object each time: some 300 us a search)."""
    q = listing.q
    search = "" if q is None else "nothing" if q.finds_nothing else fulltext.kind(q)
    terms, pair = 0, None
    if q is not None and search in fulltext.KINDS and listing.sort == ItemSort.RELEVANCE:
        terms = fulltext.name_terms(dialect, q)
        pair = fulltext.phrase_pair(dialect, q)
    shape = _Shape(
        dialect,
        search,
        listing.sort,
        listing.min_price_cents is not None,
        listing.max_price_cents is not None,
        listing.in_stock,
        listing.after is not None,
        limit is not None,
        listing.seller_id is not None,
        terms,
        pair is not None,
    )
    params: dict[str, Any] = {}
    if search in fulltext.KINDS:
        assert q is not None
        params |= fulltext.parameters(dialect, q, terms=terms > 0, pair=pair)
    if shape.min_price:
        params["min_price"] = listing.min_price_cents
    if shape.max_price:
        params["max_price"] = listing.max_price_cents
    if shape.seller:
        params["seller_id"] = listing.seller_id
    if listing.after is not None:
        params["after_value"], params["after_id"] = listing.after
    if _tiered(shape) and (listing.after is not None or _walks(shape)):
        params |= _tier_keysets(listing.after, _walks(shape))
    if limit is not None:
        params["page_limit"] = limit
    return _statement(shape), params


def _tiered(shape: _Shape) -> bool:
    return shape.search in fulltext.KINDS and shape.sort == ItemSort.RELEVANCE


TIERS = (fulltext.NAME_TIER, fulltext.OTHER_TIER)  # best first
PAST_EVERY_ID = 2**62


# PostgreSQL, one word: how many ids a page's walk reads before the GIN index takes over. A
# word in 1 % of the items fills a page of 20 within it; a rarer one costs this walk (about
# 1 ms) and a read of its few matches through the index.
WALK_IDS = 2000


def _walks(shape: _Shape) -> bool:
    """PostgreSQL, one word: each tier walks ``WALK_IDS`` ids, then reads the GIN index."""
    return shape.dialect == "postgresql" and shape.search == fulltext.WORD


def _tier_keysets(after: Keyset | None, walks: bool) -> dict[str, int]:
    """Where each tier starts: after the keyset's id in its own tier, from the first id in the
    tiers below it (worse scores), nowhere in those above it (already paged through)."""
    starts = {}
    for score in TIERS:
        if after is None or after[0] > score:
            start = 0
        elif after[0] == score:
            start = after[1]
        else:
            start = PAST_EVERY_ID
        starts[f"after_id_tier{score}"] = start
        if walks:
            starts[f"walk_to_tier{score}"] = start + WALK_IDS
    return starts


@functools.lru_cache(maxsize=512)
def _statement(shape: _Shape) -> Select[*tuple[Any, ...]]:
    if _tiered(shape):
        return _tiered_statement(shape)
    score: ColumnElement[Any] | None = None
    if shape.search == "":
        stmt = select(*ITEM_COLUMNS, literal(0.0).label("score"))
    elif shape.search == "nothing":
        score = literal(0.0)
        stmt = select(*ITEM_COLUMNS, score.label("score")).where(false())
    else:
        score = literal(0.0)  # only relevance reads it, and it has its own statement
        stmt = select(*ITEM_COLUMNS, score.label("score")).where(fulltext.matches(shape.dialect))
    stmt = _filtered(stmt, shape)
    if shape.after:
        stmt = stmt.where(_after(shape.sort, score))
    stmt = stmt.order_by(*_order(shape.sort, score))
    return stmt.limit(_PAGE_LIMIT) if shape.limited else stmt


_PAGE_LIMIT = bindparam("page_limit", type_=Integer)


def _filtered(stmt: Select[*tuple[Any, ...]], shape: _Shape) -> Select[*tuple[Any, ...]]:
    if shape.min_price:
        stmt = stmt.where(Item.price_cents >= bindparam("min_price", type_=BigInteger))
    if shape.max_price:
        stmt = stmt.where(Item.price_cents <= bindparam("max_price", type_=BigInteger))
    if shape.in_stock is not None:
        stmt = stmt.where(Item.stock > 0 if shape.in_stock else Item.stock == 0)
    if shape.seller:
        stmt = stmt.where(Item.seller_id == bindparam("seller_id", type_=BigInteger))
    return stmt


def _tiered_statement(shape: _Shape) -> Select[*tuple[Any, ...]]:
    """The tiers, best first, each in id order from its keyset and at most a page long.

    A page is not sorted again: sorting (or SQLite's merge of the two sorted tiers) would run
    the second tier until its first row at least, which for a phrase found in names is every
    item holding its words. Without it, both databases run the tiers one after the other (a
    UNION ALL without ORDER BY is PostgreSQL's Append, SQLite's left then right select) and
    stop as soon as the page is full; their rows come in that order, the order wanted
    (``tests/test_items_search.py`` pages through every sort on both). A full stream (no page)
    is sorted all the same."""
    arms = []
    for score in TIERS:
        start = bindparam(f"after_id_tier{score}", type_=BigInteger)
        if _walks(shape):
            # first the next WALK_IDS ids in order (the primary key: a common word's page is
            # found there, and the walk stops with it), then the rest through the GIN index
            end = bindparam(f"walk_to_tier{score}", type_=BigInteger)
            walk, _ = fulltext.tier(shape.dialect, score, shape.search, ITEM_COLUMNS, walk=True)
            walk = _filtered(walk, shape).where(Item.id > start, Item.id <= end)
            rest, ids = fulltext.tier(shape.dialect, score, shape.search, ITEM_COLUMNS, after=end)
            tier_arms = [walk.order_by(Item.id), _filtered(rest, shape).order_by(ids)]
        else:
            stmt, ids = fulltext.tier(
                shape.dialect,
                score,
                shape.search,
                ITEM_COLUMNS,
                terms=shape.terms,
                pair=shape.pair,
                after=start if shape.after else None,
            )
            tier_arms = [_filtered(stmt, shape).order_by(ids)]
        for arm in tier_arms:
            arms.append(select((arm.limit(_PAGE_LIMIT) if shape.limited else arm).subquery()))
    tiers = union_all(*arms).subquery("tiers")
    stmt = select(*(tiers.c[column.key] for column in ITEM_COLUMNS), tiers.c.score)
    if not shape.limited:
        stmt = stmt.order_by(tiers.c.score.desc(), tiers.c.id)
    return stmt.limit(_PAGE_LIMIT) if shape.limited else stmt


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


def sort_value(sort: ItemSort, row: Any) -> Any:
    """What the keyset holds for ``sort`` besides the id, from a listed row."""
    match sort:
        case ItemSort.RELEVANCE:
            return row.score
        case ItemSort.PRICE | ItemSort.PRICE_DESC:
            return row.price_cents
        case ItemSort.NAME:
            return row.name
    return None
