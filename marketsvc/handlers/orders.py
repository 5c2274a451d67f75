"""Orders (issue 3)."""

from aiohttp import web

routes = web.RouteTableDef()
