"""Payment results from the payment provider, signed per Standard Webhooks."""

from __future__ import annotations

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from marketsvc.errors import NotConfigured, Unauthorized
from marketsvc.schemas.payments import PaymentEventIn, PaymentEventOut, dump_payment_event
from marketsvc.services.payments import receive
from marketsvc.web.http import json_response, read_body
from marketsvc.web.keys import DATABASE, SETTINGS
from marketsvc.web.routing import Access, endpoint

routes = web.RouteTableDef()
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

PAYMENT_EVENT = {
    "type": "payment.succeeded",
    "data": {"order_id": 42, "payment_id": "pay_3KxT9a", "amount": "25.00"},
}
PAYMENT_RECEIVED = {
    "webhook_id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
    "type": "payment.succeeded",
    "order_id": 42,
    "payment_id": "pay_3KxT9a",
    "received_at": "2026-11-30T12:00:00Z",
    "outcome": "applied",
    "duplicate": False,
}


@routes.post("/api/v1/payments/events")
@endpoint(
    summary="Receive a payment result (Standard Webhooks signature, no bearer token)",
    access=Access.PUBLIC,
    tag="payments",
    body=PaymentEventIn(),
    response=PaymentEventOut(),
    errors=(401,),
    headers=SIGNATURE_HEADERS,
    keyed=False,  # the webhook-id is the key: a repeated delivery is answered, not applied
    request_example=PAYMENT_EVENT,
    response_example=PAYMENT_RECEIVED,
)
async def payment_event(request: web.Request) -> web.Response:
    """Applied once per ``webhook-id``: outcome ``applied``, ``conflict`` (a success for a
    cancelled order: an ``order.payment_conflict`` event), ``ignored`` or ``unknown_order``;
    a repeated delivery answers the first one's record with ``duplicate: true``."""
    webhook_id = await verified_sender(request)
    event = await read_body(request)
    entry = await receive(request.app[DATABASE], webhook_id, event["type"], event["data"])
    return json_response(dump_payment_event(entry))


async def verified_sender(request: web.Request) -> str:
    """The ``webhook-id`` of a request signed with ``MARKETSVC_PAYMENTS_WEBHOOK_SECRET`` within
    the last 5 minutes (``standardwebhooks``); 401 otherwise, 503 with no secret set."""
    secret = request.app[SETTINGS].payments_webhook_secret
    if secret is None:
        raise NotConfigured("payments not configured: MARKETSVC_PAYMENTS_WEBHOOK_SECRET is unset")
    body = await request.read()
    headers = {name: request.headers.get(name, "") for name in SIGNATURE_HEADERS}
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError) as exc:  # ValueError: undecodable parts
        raise Unauthorized(f"the webhook signature does not verify: {_reason(exc)}") from None
    if len(headers["webhook-id"]) > 255:
        raise Unauthorized("the webhook-id is longer than 255 characters")
    return headers["webhook-id"]


def _reason(exc: Exception) -> str:
    if isinstance(exc, WebhookVerificationError):
        return str(exc)
    return "a header is malformed"
