"""Sellers: admins create, list and change them; a seller reads itself (others are 404)."""

from __future__ import annotations

from aiohttp import web

from marketsvc.db_accessor import sellers
from marketsvc.errors import SellerNotFound
from marketsvc.schemas.sellers import (
    SellerCreate,
    SellerOut,
    SellerPatch,
    SellerQuery,
    dump_seller,
)
from marketsvc.web.http import created, json_response, path_id, read_body
from marketsvc.web.keys import DATABASE, PRINCIPAL
from marketsvc.web.routing import Access, endpoint
from marketsvc.web.streaming import dump_all, stream_list

routes = web.RouteTableDef()
NEW_SELLER = {"name": "Hopper Kettles", "commission_bps": 1250}
SELLER = {"id": 3, "status": "active", "created_at": "2026-11-30T12:00:00Z"} | NEW_SELLER


def own_seller_id(request: web.Request) -> int:
    """The path's seller id, if the caller may see that seller (an admin, or itself); else 404."""
    seller_id = path_id(request)
    scope = request[PRINCIPAL].seller_id
    if scope is not None and scope != seller_id:
        raise SellerNotFound(seller_id)
    return seller_id


@routes.get("/api/v1/sellers")
@endpoint(
    summary="Stream all sellers",
    access=Access.ADMIN,
    tag="sellers",
    query=SellerQuery(),
    response=SellerOut(),
    stream=True,
    response_example=SELLER,
)
async def list_sellers(request: web.Request) -> web.StreamResponse:
    return await stream_list(request, sellers.stream_sellers, dump_all(dump_seller))


@routes.post("/api/v1/sellers")
@endpoint(
    summary="Add a seller",
    access=Access.ADMIN,
    tag="sellers",
    body=SellerCreate(),
    response=SellerOut(),
    status=201,
    request_example=NEW_SELLER,
    response_example=SELLER,
)
async def create_seller(request: web.Request) -> web.Response:
    """Then `python -m marketsvc token --seller ID` gives it a token."""
    data = await read_body(request)
    async with request.app[DATABASE].change() as session:
        seller = await sellers.create_seller(session, data)
    return created(dump_seller(seller), f"/api/v1/sellers/{seller.id}")


@routes.get(r"/api/v1/sellers/{id}")
@endpoint(
    summary="One seller",
    access=Access.SELLER,
    tag="sellers",
    response=SellerOut(),
    errors=(404,),
    response_example=SELLER,
)
async def get_seller(request: web.Request) -> web.Response:
    """An admin reads any seller; a seller reads itself (another seller is a 404)."""
    seller_id = own_seller_id(request)
    async with request.app[DATABASE].load() as session:
        seller = await sellers.get_seller(session, seller_id)
    return json_response(dump_seller(seller))


@routes.patch(r"/api/v1/sellers/{id}")
@endpoint(
    summary="Change a seller's name, status or commission",
    access=Access.ADMIN,
    tag="sellers",
    body=SellerPatch(),
    response=SellerOut(),
    errors=(404,),
    request_example={"status": "suspended"},
    response_example=SELLER | {"status": "suspended"},
)
async def update_seller(request: web.Request) -> web.Response:
    """A suspended seller's items cannot be ordered (409) and its tokens may only read;
    `"status": "active"` lifts that. A new commission applies to lines placed afterwards."""
    seller_id = path_id(request)
    changes = await read_body(request)
    async with request.app[DATABASE].change() as session:
        seller = await sellers.change_seller(session, seller_id, changes)
    return json_response(dump_seller(seller))
