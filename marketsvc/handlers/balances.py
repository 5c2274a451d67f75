"""A seller's balance: the seller itself or an admin (another seller: 404)."""

from __future__ import annotations

from aiohttp import web

from marketsvc.db_accessor.balances import seller_balance
from marketsvc.errors import SellerNotFound
from marketsvc.handlers.seller_order_examples import BALANCE
from marketsvc.schemas.seller_orders import BalanceOut, dump_balance
from marketsvc.web.http import json_response, path_id
from marketsvc.web.keys import DATABASE, PRINCIPAL
from marketsvc.web.routing import Access, endpoint

routes = web.RouteTableDef()


@routes.get(r"/api/v1/sellers/{id:[0-9]+}/balance")
@endpoint(
    summary="A seller's delivered sales, the commission on them, the net owed, refunds owed",
    access=Access.SELLER,
    tag="seller orders",
    response=BalanceOut(),
    errors=(404,),
    response_example=BALANCE,
)
async def get_balance(request: web.Request) -> web.Response:
    seller_id = path_id(request)
    scope = request[PRINCIPAL].seller_id
    if scope is not None and scope != seller_id:
        raise SellerNotFound(seller_id)
    async with request.app[DATABASE].scan() as conn:
        balance = await seller_balance(conn, seller_id)
    return json_response(dump_balance(balance))
