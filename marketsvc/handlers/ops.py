"""Liveness and readiness."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from marketsvc.schemas.ops import HealthOut, Probe, ReadinessOut, dump_health, dump_readiness
from marketsvc.store.migrate import head_revision
from marketsvc.web.http import json_response
from marketsvc.web.keys import DATABASE
from marketsvc.web.middlewares.errors import RETRY_AFTER_SECONDS
from marketsvc.web.problems import problem
from marketsvc.web.routing import Access, endpoint

routes = web.RouteTableDef()


@routes.get("/healthz")
@endpoint(
    summary="The process serves",
    access=Access.PUBLIC,
    tag="operations",
    database=False,
    response=HealthOut(),
    response_example={"status": "ok"},
)
async def healthz(request: web.Request) -> web.Response:
    return json_response(HEALTHY)


HEALTHY = dump_health(Probe("ok"))


@routes.get("/readyz")
@endpoint(
    summary="The database answers and its schema is current",
    access=Access.PUBLIC,
    tag="operations",
    errors=(503,),
    response=ReadinessOut(),
    response_example={"status": "ready", "schema": "0001"},
)
async def readyz(request: web.Request) -> web.Response:
    try:
        async with request.app[DATABASE].load() as session:
            current = await session.scalar(text("SELECT version_num FROM alembic_version"))
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        detail = f"the database is not ready: {type(exc).__name__}"
        return problem(503, detail, headers={"Retry-After": RETRY_AFTER_SECONDS})
    if current != head_revision():
        return problem(
            503,
            f"the schema is at {current}, expected {head_revision()}",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    return json_response(dump_readiness(Probe("ready", current)))
