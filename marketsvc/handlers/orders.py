"""Orders: admins see all; a customer places, reads and cancels only its own (others are 404)."""

from __future__ import annotations

from aiohttp import web
from marshmallow import ValidationError

from marketsvc.db_accessor import orders
from marketsvc.errors import Conflict, DomainError, Forbidden, OutOfStock
from marketsvc.handlers.customers import own_customer_id
from marketsvc.handlers.examples import CANCEL, NEW_ORDER, ORDER, TOTAL, TOTALS, TOTALS_REQUEST
from marketsvc.ops.metrics import ORDERS_PLACED
from marketsvc.schemas.orders import (
    CustomerOrdersQuery,
    OrderCreate,
    OrderOut,
    OrdersQuery,
    OrderStatusPatch,
    TotalOut,
    TotalsOut,
    TotalsRequest,
    dump_order,
    dump_total,
    dump_totals,
)
from marketsvc.services import order_placement
from marketsvc.services.order_moves import move_order
from marketsvc.web.http import created, json_response, path_id, read_body
from marketsvc.web.keys import DATABASE, PRINCIPAL
from marketsvc.web.routing import Access, endpoint
from marketsvc.web.streaming import dump_all, stream_list

routes = web.RouteTableDef()


def scope_of(request: web.Request) -> int | None:
    """The only customer whose orders the caller may touch; ``None`` for an admin."""
    return request[PRINCIPAL].customer_id


@routes.post("/api/v1/orders")
@endpoint(
    summary="Place an order",
    access=Access.CUSTOMER,
    tag="orders",
    body=OrderCreate(),
    response=OrderOut(),
    status=201,
    errors=(403, 409),
    request_example=NEW_ORDER,
    response_example=ORDER,
)
async def place_order(request: web.Request) -> web.Response:
    try:
        response = await _place(request)
    except (DomainError, ValidationError) as exc:
        conflict = isinstance(exc, Conflict) and not isinstance(exc, OutOfStock)
        status = exc.status if isinstance(exc, DomainError) else 422
        ORDERS_PLACED.labels("conflict" if conflict else _outcome(status)).inc()
        raise
    ORDERS_PLACED.labels(_outcome(response.status)).inc()
    return response


def _outcome(status: int) -> str:
    return {201: "placed", 409: "out_of_stock"}.get(status, "invalid")


async def _place(request: web.Request) -> web.Response:
    data = await read_body(request)
    scope = scope_of(request)
    if scope is not None and scope != data["customer_id"]:
        raise Forbidden("a customer may place orders only for itself")
    order = await order_placement.place_order(
        request.app[DATABASE], data["customer_id"], data["lines"]
    )
    return created(dump_order(order), f"/api/v1/orders/{order.id}")


@routes.post("/api/v1/orders/totals")
@endpoint(
    summary="Totals of up to 1000 orders, and which of them do not exist",
    access=Access.CUSTOMER,
    tag="orders",
    body=TotalsRequest(),
    response=TotalsOut(),
    keyed=False,
    request_example=TOTALS_REQUEST,
    response_example=TOTALS,
)
async def order_totals(request: web.Request) -> web.Response:
    order_ids = list(dict.fromkeys((await read_body(request))["order_ids"]))
    async with request.app[DATABASE].read() as conn:
        totals = await orders.order_totals(conn, order_ids, scope_of(request))
    return json_response(dump_totals(totals))


@routes.get("/api/v1/orders")
@endpoint(
    summary="Stream orders with their lines, filtered",
    access=Access.CUSTOMER,
    tag="orders",
    query=OrdersQuery(),
    response=OrderOut(),
    stream=True,
    response_example=ORDER,
)
async def list_orders(request: web.Request) -> web.StreamResponse:
    return await stream_list(
        request, orders.stream_orders, dump_all(dump_order), scope=scope_of(request)
    )


@routes.get(r"/api/v1/customers/{id}/orders")
@endpoint(
    summary="Stream one customer's orders with their lines",
    access=Access.CUSTOMER,
    tag="orders",
    query=CustomerOrdersQuery(),
    response=OrderOut(),
    stream=True,
    errors=(404,),
    response_example=ORDER,
)
async def list_customer_orders(request: web.Request) -> web.StreamResponse:
    customer_id = own_customer_id(request)
    return await stream_list(
        request, orders.stream_customer_orders, dump_all(dump_order), customer_id=customer_id
    )


@routes.get(r"/api/v1/orders/{id:[0-9]+}")
@endpoint(
    summary="One order with its lines",
    access=Access.CUSTOMER,
    tag="orders",
    response=OrderOut(),
    errors=(404,),
    response_example=ORDER,
)
async def get_order(request: web.Request) -> web.Response:
    order_id = path_id(request)
    async with request.app[DATABASE].read() as conn:
        order = await orders.get_order(conn, order_id, scope_of(request))
    return json_response(dump_order(order))


@routes.get(r"/api/v1/orders/{id:[0-9]+}/total")
@endpoint(
    summary="An order's total, summed by the database",
    access=Access.CUSTOMER,
    tag="orders",
    response=TotalOut(),
    errors=(404,),
    response_example=TOTAL,
)
async def get_order_total(request: web.Request) -> web.Response:
    order_id = path_id(request)
    async with request.app[DATABASE].read() as conn:
        total = await orders.order_total(conn, order_id, scope_of(request))
    return json_response(dump_total(total))


@routes.patch(r"/api/v1/orders/{id:[0-9]+}")
@endpoint(
    summary="Move an order along its lifecycle (a customer may only cancel a pending order)",
    access=Access.CUSTOMER,
    tag="orders",
    body=OrderStatusPatch(),
    response=OrderOut(),
    errors=(403, 404, 409),
    request_example=CANCEL,
    response_example=ORDER | {"status": "cancelled"},
)
async def change_order_status(request: web.Request) -> web.Response:
    order_id = path_id(request)
    target = (await read_body(request))["status"]
    order = await move_order(request.app[DATABASE], order_id, target, request[PRINCIPAL])
    return json_response(dump_order(order))
