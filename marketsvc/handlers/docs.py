"""The OpenAPI document and an interactive page for it; Swagger UI's assets are served locally."""

from __future__ import annotations

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from marketsvc.web.openapi import OPENAPI_JSON
from marketsvc.web.routing import Access, endpoint

routes = web.RouteTableDef()
STATIC_PREFIX = "/api/docs/static"

DOCS_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>marketsvc API</title>
<link rel="stylesheet" href="{STATIC_PREFIX}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{STATIC_PREFIX}/swagger-ui-bundle.js"></script>
<script src="{STATIC_PREFIX}/swagger-ui-standalone-preset.js"></script>
<script>
window.onload = function () {{
  window.ui = SwaggerUIBundle({{
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "BaseLayout"
  }});
}};
</script>
</body>
</html>
"""


@routes.get("/api/v1/openapi.json")
@endpoint(
    summary="This API's OpenAPI 3.1 document",
    access=Access.PUBLIC,
    tag="documentation",
    database=False,
    response_example={"openapi": "3.1.0", "info": {"title": "marketsvc", "version": "1"}},
)
async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI_JSON], content_type="application/json")


@routes.get("/api/docs")
@endpoint(
    summary="Interactive documentation (Swagger UI)",
    access=Access.PUBLIC,
    tag="documentation",
    database=False,
    media_type="text/html",
    response_example='<!doctype html>\n<html lang="en">...</html>\n',
)
async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=DOCS_PAGE, content_type="text/html")


routes.static(STATIC_PREFIX, swagger_ui_path)
