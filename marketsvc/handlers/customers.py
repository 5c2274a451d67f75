"""Customers: admins see all, a customer sees only itself (others are 404, not 403)."""

from __future__ import annotations

from aiohttp import web

from marketsvc.db_accessor import customers
from marketsvc.errors import CustomerNotFound
from marketsvc.events import record
from marketsvc.schemas.common import PageQuery
from marketsvc.schemas.customers import (
    CustomerCreate,
    CustomerOut,
    CustomerPatch,
    dump_customer,
    dump_customer_row,
)
from marketsvc.web.http import created, json_response, path_id, read_body
from marketsvc.web.keys import DATABASE, PRINCIPAL
from marketsvc.web.routing import Access, endpoint
from marketsvc.web.streaming import dump_all, stream_list

routes = web.RouteTableDef()
ADDRESS = {
    "street": "12 Park Row",
    "flat_number": "3B",
    "city": "Leeds",
    "post_code": "LS1 5HD",
    "country": "GB",
}
NEW_CUSTOMER = {"name": "Ada Lovelace", "email": "ada@example.com", "address": ADDRESS}
CUSTOMER = {"id": 42} | NEW_CUSTOMER


def own_customer_id(request: web.Request) -> int:
    """The path's customer id, if the caller may see that customer; else 404."""
    customer_id = path_id(request)
    scope = request[PRINCIPAL].customer_id
    if scope is not None and scope != customer_id:
        raise CustomerNotFound(customer_id)
    return customer_id


@routes.get("/api/v1/customers")
@endpoint(
    summary="Stream all customers",
    access=Access.ADMIN,
    tag="customers",
    query=PageQuery(),
    response=CustomerOut(),
    stream=True,
    response_example=CUSTOMER,
)
async def list_customers(request: web.Request) -> web.StreamResponse:
    return await stream_list(request, customers.stream_customers, dump_all(dump_customer_row))


@routes.get(r"/api/v1/customers/{id}")
@endpoint(
    summary="One customer with its address",
    access=Access.CUSTOMER,
    tag="customers",
    response=CustomerOut(),
    errors=(404,),
    response_example=CUSTOMER,
)
async def get_customer(request: web.Request) -> web.Response:
    customer_id = own_customer_id(request)
    async with request.app[DATABASE].read() as conn:
        row = await customers.get_customer_row(conn, customer_id)
    return json_response(dump_customer_row(row))


@routes.post("/api/v1/customers")
@endpoint(
    summary="Add a customer",
    access=Access.ADMIN,
    tag="customers",
    body=CustomerCreate(),
    response=CustomerOut(),
    status=201,
    errors=(409,),
    request_example=NEW_CUSTOMER,
    response_example=CUSTOMER,
)
async def create_customer(request: web.Request) -> web.Response:
    data = await read_body(request)
    async with request.app[DATABASE].change() as session:
        customer = await customers.create_customer(session, data)
        await record.customer_saved(session, customer, created=True)
    return created(dump_customer(customer), f"/api/v1/customers/{customer.id}")


@routes.patch(r"/api/v1/customers/{id}")
@endpoint(
    summary="Change a customer or its address",
    access=Access.CUSTOMER,
    tag="customers",
    body=CustomerPatch(),
    response=CustomerOut(),
    errors=(404, 409),
    request_example={"address": {"city": "York", "post_code": "YO1 7HH"}},
    response_example=CUSTOMER | {"address": ADDRESS | {"city": "York", "post_code": "YO1 7HH"}},
)
async def update_customer(request: web.Request) -> web.Response:
    customer_id = own_customer_id(request)
    changes = await read_body(request)
    async with request.app[DATABASE].change() as session:
        customer = await customers.update_customer(session, customer_id, changes)
        await record.customer_saved(session, customer, created=False)
    return json_response(dump_customer(customer))
