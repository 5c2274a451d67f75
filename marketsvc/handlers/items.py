"""The catalogue: public reads, admin writes."""

from __future__ import annotations

from aiohttp import web

from marketsvc.db_accessor import items
from marketsvc.events import record
from marketsvc.events.data import item_values
from marketsvc.schemas.common import PageQuery
from marketsvc.schemas.items import ItemCreate, ItemOut, ItemPatch
from marketsvc.web.http import created, json_response, path_id, read_body
from marketsvc.web.keys import DATABASE
from marketsvc.web.routing import Access, endpoint
from marketsvc.web.streaming import stream_list

routes = web.RouteTableDef()
item_out = ItemOut()
ITEM = {"id": 7, "name": "Kettle", "description": "1.7 l, steel", "price": "24.99", "stock": 12}
NEW_ITEM = {k: v for k, v in ITEM.items() if k != "id"}


@routes.get("/api/v1/items")
@endpoint(
    summary="Stream the catalogue",
    access=Access.PUBLIC,
    tag="items",
    query=PageQuery(),
    response=ItemOut(),
    stream=True,
    response_example=ITEM,
)
async def list_items(request: web.Request) -> web.StreamResponse:
    return await stream_list(
        request, items.stream_items, lambda chunk: item_out.dump(chunk, many=True)
    )


@routes.get(r"/api/v1/items/{id}")
@endpoint(
    summary="One item",
    access=Access.PUBLIC,
    tag="items",
    response=ItemOut(),
    errors=(404,),
    response_example=ITEM,
)
async def get_item(request: web.Request) -> web.Response:
    async with request.app[DATABASE].load() as session:
        item = await items.get_item(session, path_id(request))
    return json_response(item_out.dump(item))


@routes.post("/api/v1/items")
@endpoint(
    summary="Add an item",
    access=Access.ADMIN,
    tag="items",
    body=ItemCreate(),
    response=ItemOut(),
    status=201,
    request_example=NEW_ITEM,
    response_example=ITEM,
)
async def create_item(request: web.Request) -> web.Response:
    data = await read_body(request)
    async with request.app[DATABASE].change() as session:
        item = await items.create_item(session, data)
        await record.item_created(session, item)
    return created(item_out.dump(item), f"/api/v1/items/{item.id}")


@routes.patch(r"/api/v1/items/{id}")
@endpoint(
    summary="Change an item",
    access=Access.ADMIN,
    tag="items",
    body=ItemPatch(),
    response=ItemOut(),
    errors=(404,),
    request_example={"price": "22.50", "stock": 40},
    response_example=ITEM | {"price": "22.50", "stock": 40},
)
async def update_item(request: web.Request) -> web.Response:
    item_id = path_id(request)
    changes = await read_body(request)
    async with request.app[DATABASE].change() as session:
        before = item_values(await items.lock_item(session, item_id))
        item = await items.update_item(session, item_id, changes)
        await record.item_updated(session, item, before)
    return json_response(item_out.dump(item))
