"""Prometheus scrape endpoint."""

from __future__ import annotations

from aiohttp import web

from marketsvc.ops.metrics import CONTENT_TYPE, exposition, publish
from marketsvc.web.routing import Access, endpoint

routes = web.RouteTableDef()


@routes.get("/metrics")
@endpoint(
    summary="Prometheus metrics of every worker",
    access=Access.PUBLIC,
    tag="operations",
    media_type="text/plain",
    database=False,
    response_example="# TYPE marketsvc_http_requests_total counter\n",
)
async def metrics(request: web.Request) -> web.Response:
    publish(request.app)
    return web.Response(body=exposition(), headers={"Content-Type": CONTENT_TYPE})
