"""The one application factory: tests, the dev runner and gunicorn all build the app here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from marketsvc.handlers import ROUTE_TABLES
from marketsvc.ops.metrics import metrics_publisher
from marketsvc.services.background import background_database_ctx
from marketsvc.services.feed_wakeup import close_feeds, feed_wakeup_ctx
from marketsvc.services.nats_relay import nats_relay_ctx
from marketsvc.services.outbox_lag import outbox_lag_ctx
from marketsvc.services.retention import retention_ctx
from marketsvc.services.webhook_delivery import webhook_sender_ctx
from marketsvc.services.webhook_relay import webhook_relay_ctx
from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from marketsvc.web.auth import TOKEN_CODEC, TokenCodec
from marketsvc.web.http import continue_unless_too_large
from marketsvc.web.keys import DATABASE, SETTINGS
from marketsvc.web.middlewares import MIDDLEWARES
from marketsvc.web.middlewares.request_id import tag_response
from marketsvc.web.openapi import publish_document

log = logging.getLogger("marketsvc.app")


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    database = Database(app[SETTINGS])
    app[DATABASE] = database
    yield
    await database.dispose()
    log.info("database connections closed")


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings.from_env()
    app = web.Application(
        middlewares=MIDDLEWARES,
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[TOKEN_CODEC] = TokenCodec(settings)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(metrics_publisher)
    app.cleanup_ctx.append(feed_wakeup_ctx)
    app.cleanup_ctx.append(retention_ctx)
    app.cleanup_ctx.append(background_database_ctx)
    app.cleanup_ctx.append(webhook_sender_ctx)
    app.cleanup_ctx.append(webhook_relay_ctx)
    app.cleanup_ctx.append(nats_relay_ctx)
    app.cleanup_ctx.append(outbox_lag_ctx)
    app.on_shutdown.append(close_feeds)
    app.on_response_prepare.append(tag_response)
    app.on_startup.append(publish_document)
    for table in ROUTE_TABLES:
        for route in table:
            if isinstance(route, web.RouteDef):  # a handler's route: our Expect handling
                expect = {"expect_handler": continue_unless_too_large}
                route = web.RouteDef(route.method, route.path, route.handler, route.kwargs | expect)
            route.register(app.router)
    return app


async def gunicorn_app() -> web.Application:
    """Entry point for ``gunicorn marketsvc.app:gunicorn_app``."""
    return create_app()
