"""Webhook subscriptions and their deliveries: admins only."""

from __future__ import annotations

from aiohttp import web

from marketsvc.db_accessor import webhooks
from marketsvc.errors import CursorExpired
from marketsvc.handlers.webhook_examples import (
    DELIVERY,
    NEW_DELIVERY,
    NEW_SUBSCRIPTION,
    PAUSE,
    PING_DELIVERY,
    REPLAY,
    REPLAYED,
    SUBSCRIPTION,
    SUBSCRIPTION_WITH_SECRET,
)
from marketsvc.schemas.common import PageQuery
from marketsvc.schemas.webhooks import (
    DeliveriesQuery,
    DeliveryOut,
    ReplayOut,
    ReplayRequest,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionPatch,
    SubscriptionWithSecret,
    dump_delivery,
    dump_subscription,
)
from marketsvc.services import webhooks as use_cases
from marketsvc.web.http import created, json_response, path_id, read_body
from marketsvc.web.keys import DATABASE, SETTINGS
from marketsvc.web.routing import Access, endpoint
from marketsvc.web.streaming import dump_all, stream_list

routes = web.RouteTableDef()
SUBSCRIPTIONS = "/api/v1/webhooks/subscriptions"


@routes.post(SUBSCRIPTIONS)
@endpoint(
    summary="Subscribe a URL to events; the signing secret is in this answer only",
    access=Access.ADMIN,
    tag="webhooks",
    body=SubscriptionCreate(),
    response=SubscriptionWithSecret(),
    status=201,
    errors=(422,),
    request_example=NEW_SUBSCRIPTION,
    response_example=SUBSCRIPTION_WITH_SECRET,
)
async def create_subscription(request: web.Request) -> web.Response:
    data = await read_body(request)
    row, secret = await use_cases.create(request.app[DATABASE], request.app[SETTINGS], data)
    return created(dump_subscription(row, secret), f"{SUBSCRIPTIONS}/{row.id}")


@routes.get(SUBSCRIPTIONS)
@endpoint(
    summary="Stream webhook subscriptions (never their secrets)",
    access=Access.ADMIN,
    tag="webhooks",
    query=PageQuery(),
    response=SubscriptionOut(),
    stream=True,
    response_example=SUBSCRIPTION,
)
async def list_subscriptions(request: web.Request) -> web.StreamResponse:
    return await stream_list(request, webhooks.stream_subscriptions, dump_all(dump_subscription))


@routes.get(SUBSCRIPTIONS + "/{id}")
@endpoint(
    summary="One webhook subscription",
    access=Access.ADMIN,
    tag="webhooks",
    response=SubscriptionOut(),
    errors=(404,),
    response_example=SUBSCRIPTION,
)
async def get_subscription(request: web.Request) -> web.Response:
    subscription_id = path_id(request)
    async with request.app[DATABASE].read() as conn:
        row = await webhooks.get_subscription(conn, subscription_id)
    return json_response(dump_subscription(row))


@routes.patch(SUBSCRIPTIONS + "/{id}")
@endpoint(
    summary="Change a subscription's URL, types or description; pause or resume it",
    access=Access.ADMIN,
    tag="webhooks",
    body=SubscriptionPatch(),
    response=SubscriptionOut(),
    errors=(404, 422),
    request_example=PAUSE,
    response_example=SUBSCRIPTION | {"status": "paused"},
)
async def change_subscription(request: web.Request) -> web.Response:
    subscription_id = path_id(request)
    changes = await read_body(request)
    row = await use_cases.change(
        request.app[DATABASE], request.app[SETTINGS], subscription_id, changes
    )
    return json_response(dump_subscription(row))


@routes.delete(SUBSCRIPTIONS + "/{id}")
@endpoint(
    summary="Delete a subscription and its deliveries",
    access=Access.ADMIN,
    tag="webhooks",
    status=204,
    errors=(404,),
)
async def delete_subscription(request: web.Request) -> web.Response:
    subscription_id = path_id(request)
    async with request.app[DATABASE].change_rows() as conn:
        await webhooks.delete_subscription(conn, subscription_id)
    return web.Response(status=204)


@routes.post(SUBSCRIPTIONS + "/{id}/rotate")
@endpoint(
    summary="A new signing secret (in this answer only); the old one also signs for 24 h",
    access=Access.ADMIN,
    tag="webhooks",
    response=SubscriptionWithSecret(),
    errors=(404,),
    response_example=SUBSCRIPTION_WITH_SECRET
    | {"previous_secret_expires_at": "2026-12-01T10:02:11.204Z"},
)
async def rotate_secret(request: web.Request) -> web.Response:
    row, secret = await use_cases.rotate(request.app[DATABASE], path_id(request))
    return json_response(dump_subscription(row, secret))


@routes.get(SUBSCRIPTIONS + "/{id}/deliveries")
@endpoint(
    summary="Stream a subscription's deliveries, each with every attempt",
    access=Access.ADMIN,
    tag="webhooks",
    query=DeliveriesQuery(),
    response=DeliveryOut(),
    stream=True,
    errors=(404,),
    response_example=DELIVERY,
)
async def list_deliveries(request: web.Request) -> web.StreamResponse:
    return await stream_list(
        request,
        webhooks.stream_deliveries,
        dump_all(dump_delivery),
        subscription_id=path_id(request),
    )


@routes.post(SUBSCRIPTIONS + "/{id}/replay")
@endpoint(
    summary="Deliver again every kept event after a feed cursor, or since a time",
    access=Access.ADMIN,
    tag="webhooks",
    body=ReplayRequest(),
    response=ReplayOut(),
    status=202,
    errors=(404, 410),
    request_example=REPLAY,
    response_example=REPLAYED,
)
async def replay(request: web.Request) -> web.Response:
    subscription_id = path_id(request)
    body = await read_body(request)
    try:
        count = await use_cases.replay(
            request.app[DATABASE],
            subscription_id,
            body.get("after"),
            body.get("since"),
        )
    except CursorExpired as exc:
        exc.errors = {"body.after": ["Older than the events kept."]}
        raise
    return json_response({"deliveries": count}, status=202)


@routes.post(SUBSCRIPTIONS + "/{id}/ping")
@endpoint(
    summary="Send a webhook.ping event to this subscription only",
    access=Access.ADMIN,
    tag="webhooks",
    response=DeliveryOut(),
    status=202,
    errors=(404,),
    response_example=PING_DELIVERY,
)
async def ping(request: web.Request) -> web.Response:
    delivery = await use_cases.ping(request.app[DATABASE], request.app[SETTINGS], path_id(request))
    return json_response(dump_delivery(delivery), status=202)


@routes.post("/api/v1/webhooks/deliveries/{id}/redeliver")
@endpoint(
    summary="Send a delivery's event again (a new delivery; the old one keeps its attempts)",
    access=Access.ADMIN,
    tag="webhooks",
    response=DeliveryOut(),
    status=202,
    errors=(404, 410),
    response_example=NEW_DELIVERY,
)
async def redeliver(request: web.Request) -> web.Response:
    delivery = await use_cases.redeliver(request.app[DATABASE], path_id(request))
    return json_response(dump_delivery(delivery), status=202)
