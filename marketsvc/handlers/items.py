"""The catalogue: public reads, admin writes."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from aiohttp import web

from marketsvc.db_accessor import items
from marketsvc.db_accessor.item_listing import ItemListing, ItemSort
from marketsvc.schemas.items import (
    ItemCreate,
    ItemOut,
    ItemPatch,
    ItemQuery,
    dump_item,
    dump_item_row,
)
from marketsvc.services.item_edits import add_item, edit_item
from marketsvc.web.caching import CACHE_CONTROL, cacheable, etag_of
from marketsvc.web.cursors import cursor_codec
from marketsvc.web.http import created, path_id, read_body, read_params
from marketsvc.web.keys import DATABASE, PRINCIPAL, SETTINGS
from marketsvc.web.routing import Access, endpoint
from marketsvc.web.streaming import dump_all, stream_json, write_page

routes = web.RouteTableDef()
ITEM = {
    "id": 7,
    "name": "Kettle",
    "description": "1.7 l, steel",
    "price": "24.99",
    "stock": 12,
    "seller_id": 3,
}
NEW_ITEM = {k: v for k, v in ITEM.items() if k not in ("id", "seller_id")}


@routes.get("/api/v1/items")
@endpoint(
    summary="Search, filter and sort the catalogue",
    access=Access.PUBLIC,
    tag="items",
    query=ItemQuery(),
    response=ItemOut(),
    stream=True,
    response_headers=("Link",),
    cached=True,
    response_example=ITEM,
)
async def list_items(request: web.Request) -> web.StreamResponse:
    """Without `limit` every matching item streams; with it, a page and a `Link` to the next.
    A cursor that was not made for this query (sort, q, filters) is a 400. Pages (with
    `limit`) carry an `ETag` and answer a matching `If-None-Match` with 304; a full stream
    carries `Cache-Control` only (its tag would be known only once the last row is sent)."""
    params = read_params(request)
    limit, listing = params.pop("limit", None), _listing(params)
    codec, query = cursor_codec(request.app[SETTINGS].jwt_secret), _query_key(listing)
    if "cursor" in params:
        listing = dataclasses.replace(listing, after=codec.decode(params["cursor"], query))
    database = request.app[DATABASE]
    if limit is None:
        chunk_rows = request.app[SETTINGS].stream_chunk_rows
        return await stream_json(
            request,
            database.stream,
            lambda session: items.stream_items(session, listing, chunk_rows),
            dump_all(dump_item_row),
            {"Cache-Control": CACHE_CONTROL},
        )
    async with database.read() as db:  # one statement, a page long
        page, after = await items.page_items(db, listing, limit)
    link = {} if after is None else {"Link": _next_link(request, codec.encode(after, query))}
    return await write_page(request, [dump_item_row(row) for row in page], link, cached=True)


def _listing(params: dict[str, Any]) -> ItemListing:
    q = params.get("q")
    return ItemListing(
        q=q,
        min_price_cents=params.get("min_price_cents"),
        max_price_cents=params.get("max_price_cents"),
        in_stock=params.get("in_stock"),
        sort=ItemSort(params.get("sort") or ("relevance" if q is not None else "id")),
        after=(None, params["after_id"]) if "after_id" in params else None,
        seller_id=params.get("seller_id"),
    )


def _query_key(listing: ItemListing) -> str:
    """What a cursor is bound to: all that decides the set and the order (not the page size)."""
    q = None if listing.q is None else listing.q.text
    parts: tuple[object, ...] = (
        *(q, listing.sort, listing.min_price_cents, listing.max_price_cents, listing.in_stock),
    )
    if listing.seller_id is not None:  # appended: the cursors of before sellers stay good
        parts += (listing.seller_id,)
    return "\0".join(map(repr, parts))


def _next_link(request: web.Request, cursor: str) -> str:
    query = {k: v for k, v in request.query.items() if k not in ("cursor", "after_id")}
    return f'<{request.rel_url.with_query(query | {"cursor": cursor})}>; rel="next"'


@routes.get(r"/api/v1/items/{id}")
@endpoint(
    summary="One item",
    access=Access.PUBLIC,
    tag="items",
    response=ItemOut(),
    errors=(404,),
    cached=True,
    response_example=ITEM,
)
async def get_item(request: web.Request) -> web.Response:
    """A strong `ETag` from the item's content and `Cache-Control`; a matching
    `If-None-Match` is a 304 without a body."""
    async with request.app[DATABASE].load() as session:
        item = await items.get_item(session, path_id(request))
    return cacheable(request, orjson.dumps(dump_item(item)), "application/json")


@routes.post("/api/v1/items")
@endpoint(
    summary="Add an item",
    access=Access.SELLER,
    tag="items",
    body=ItemCreate(),
    response=ItemOut(),
    status=201,
    request_example=NEW_ITEM,
    response_example=ITEM,
)
async def create_item(request: web.Request) -> web.Response:
    """A seller adds to its own catalogue (`seller_id` left out, or its own); an admin names
    any seller, or the default one (1) by leaving `seller_id` out."""
    data = await read_body(request)
    item = await add_item(request.app[DATABASE], data, request[PRINCIPAL].seller_id)
    return created(dump_item(item), f"/api/v1/items/{item.id}")


@routes.patch(r"/api/v1/items/{id}")
@endpoint(
    summary="Change an item",
    access=Access.SELLER,
    tag="items",
    body=ItemPatch(),
    response=ItemOut(),
    errors=(404, 412),
    headers=("If-Match",),
    response_headers=("ETag",),
    request_example={"price": "22.50", "stock": 40},
    response_example=ITEM | {"price": "22.50", "stock": 40},
)
async def update_item(request: web.Request) -> web.Response:
    """With `If-Match`, the change is made only if the item still has that `ETag` (checked
    under the row's lock, in the change's transaction); otherwise 412 and nothing changes.
    A seller changes its own items' price, stock and description (another seller's item is a
    404; its name, a 403)."""
    item_id = path_id(request)
    changes = await read_body(request)
    item = await edit_item(
        request.app[DATABASE],
        item_id,
        changes,
        request.headers.get("If-Match"),
        request[PRINCIPAL].seller_id,
    )
    body = orjson.dumps(dump_item(item))
    return web.Response(body=body, content_type="application/json", headers={"ETag": etag_of(body)})
