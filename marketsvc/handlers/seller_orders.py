"""Seller orders: a seller reads and moves only its own parts (another's: 404); admins any."""

from __future__ import annotations

from aiohttp import web

from marketsvc.db_accessor import seller_orders
from marketsvc.handlers.seller_order_examples import SELLER_ORDER, SHIP
from marketsvc.schemas.seller_orders import (
    SellerOrderOut,
    SellerOrderPatch,
    SellerOrdersQuery,
    dump_seller_order,
)
from marketsvc.services.seller_order_moves import move_seller_order
from marketsvc.web.http import json_response, path_id, read_body
from marketsvc.web.keys import DATABASE, PRINCIPAL
from marketsvc.web.routing import Access, endpoint
from marketsvc.web.streaming import dump_all, stream_list

routes = web.RouteTableDef()
TAG = "seller orders"


def seller_scope(request: web.Request) -> int | None:
    """The only seller whose parts the caller may touch; ``None`` for an admin."""
    return request[PRINCIPAL].seller_id


@routes.get("/api/v1/seller-orders")
@endpoint(
    summary="Stream seller orders (a seller: its own) with their lines, filtered",
    access=Access.SELLER,
    tag=TAG,
    query=SellerOrdersQuery(),
    response=SellerOrderOut(),
    stream=True,
    response_example=SELLER_ORDER,
)
async def list_seller_orders(request: web.Request) -> web.StreamResponse:
    return await stream_list(
        request,
        seller_orders.stream_seller_orders,
        dump_all(dump_seller_order),
        scope=seller_scope(request),
    )


@routes.get(r"/api/v1/seller-orders/{id:[0-9]+}")
@endpoint(
    summary="One seller order with its lines, subtotal and commission",
    access=Access.SELLER,
    tag=TAG,
    response=SellerOrderOut(),
    errors=(404,),
    response_example=SELLER_ORDER,
)
async def get_seller_order(request: web.Request) -> web.Response:
    part_id = path_id(request)
    async with request.app[DATABASE].read() as conn:
        part = await seller_orders.get_seller_order(conn, part_id, seller_scope(request))
    return json_response(dump_seller_order(part))


@routes.patch(r"/api/v1/seller-orders/{id:[0-9]+}")
@endpoint(
    summary="Accept, ship (with carrier and tracking number), deliver or refuse a seller order",
    access=Access.SELLER,
    tag=TAG,
    body=SellerOrderPatch(),
    response=SellerOrderOut(),
    errors=(404, 409),
    request_example=SHIP,
    response_example=SELLER_ORDER,
)
async def move_seller_order_status(request: web.Request) -> web.Response:
    part_id = path_id(request)
    body = await read_body(request)
    target = body.pop("status")
    move = await move_seller_order(
        request.app[DATABASE], part_id, target, request[PRINCIPAL], body or None
    )
    return json_response(dump_seller_order(move.part))
