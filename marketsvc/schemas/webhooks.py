"""Webhook requests and answers: subscriptions, deliveries with their attempts, replays."""

from __future__ import annotations

from typing import Any

import orjson
from marshmallow import ValidationError, fields, validate, validates_schema

from marketsvc.events.types import CATALOGUE
from marketsvc.schemas.common import Id, PageQuery, StrictSchema, Text, UtcDateTime
from marketsvc.schemas.events import Cursor
from marketsvc.schemas.webhook_subscriptions import SubscriptionOut, SubscriptionWithSecret

__all__ = ["SubscriptionOut", "SubscriptionWithSecret"]

DELIVERY_STATUSES = ("pending", "delivered", "failed")
URL_LENGTH = 2000
# the shape only; the service then checks the scheme (https outside development) and, unless
# MARKETSVC_WEBHOOK_ALLOW_PRIVATE=1, that the host resolves to public addresses only
URL_PATTERN = (
    r"^https?://[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?"
    r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
    r"(/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?$"  # RFC 3986 path and query characters
)
URL_DESCRIPTION = (
    "Where events are POSTed: https (http too in development), no credentials. Unless"
    " MARKETSVC_WEBHOOK_ALLOW_PRIVATE=1, its host must resolve, and only to public addresses"
    " (not loopback, private, link-local, metadata, multicast...): else 422."
)
DESCRIPTION_LENGTH = 500


def event_types_field(**kwargs: Any) -> fields.List[Any]:
    return fields.List(
        fields.String(validate=validate.OneOf(sorted(t.type for t in CATALOGUE.values()))),
        allow_none=True,
        validate=validate.Length(min=1, max=len(CATALOGUE)),
        metadata={"description": "CloudEvents types to send (null or absent: every type)."},
        **kwargs,
    )


class SubscriptionCreate(StrictSchema):
    url = fields.String(  # the pattern excludes NUL, as Text does
        required=True,
        validate=[validate.Length(min=1, max=URL_LENGTH), validate.Regexp(URL_PATTERN)],
        metadata={"description": URL_DESCRIPTION},
    )
    event_types = event_types_field(load_default=None)
    description = Text(validate=validate.Length(max=DESCRIPTION_LENGTH), load_default="")


class SubscriptionPatch(StrictSchema):
    url = fields.String(
        validate=[validate.Length(min=1, max=URL_LENGTH), validate.Regexp(URL_PATTERN)],
        metadata={"description": URL_DESCRIPTION},
    )
    event_types = event_types_field()
    description = Text(validate=validate.Length(max=DESCRIPTION_LENGTH))
    status = fields.String(
        validate=validate.OneOf(("active", "paused")),
        metadata={"description": "Pause (deliveries wait) or resume, also after a disable."},
    )


class AttemptOut(StrictSchema):
    at = UtcDateTime(required=True)
    status_code = fields.Integer(allow_none=True, required=True)
    latency_ms = fields.Integer(required=True)
    error = fields.String(allow_none=True, required=True)
    next_attempt_at = UtcDateTime(
        allow_none=True,
        required=True,
        metadata={"description": "When it is tried again (null: delivered, or given up)."},
    )


class DeliveryOut(StrictSchema):
    id = Id(required=True)
    subscription_id = Id(required=True)
    event_id = fields.String(required=True, metadata={"description": "The webhook-id header."})
    subject = fields.String(required=True)
    type = fields.String(required=True)
    status = fields.String(validate=validate.OneOf(DELIVERY_STATUSES), required=True)
    attempt_count = fields.Integer(required=True)
    next_attempt_at = UtcDateTime(allow_none=True, required=True)
    created_at = UtcDateTime(required=True)
    delivered_at = UtcDateTime(allow_none=True, required=True)
    attempts = fields.List(fields.Nested(AttemptOut), required=True)


class DeliveriesQuery(PageQuery):
    status = fields.String(
        validate=validate.OneOf(DELIVERY_STATUSES),
        metadata={"description": "Only deliveries in this state."},
    )


class ReplayRequest(StrictSchema):
    """Exactly one of ``after`` and ``since``."""

    after = Cursor(
        metadata={"description": "Every kept event after this feed cursor (not with since)."}
    )
    since = UtcDateTime(
        metadata={"description": "Every kept event from this time on (not with after)."}
    )

    @validates_schema
    def _one_of(self, data: dict[str, Any], **_: Any) -> None:
        if ("after" in data) == ("since" in data):
            raise ValidationError("Give exactly one of after and since.", "_schema")


class ReplayOut(StrictSchema):
    deliveries = fields.Integer(
        required=True, metadata={"description": "New deliveries queued for the subscription."}
    )


def dump_subscription(row: Any, secret: str | None = None) -> dict[str, Any]:
    body = {
        "id": row.id,
        "url": row.url,
        "event_types": None if row.event_types is None else orjson.loads(row.event_types),
        "description": row.description,
        "status": row.status,
        "failing_since": row.failing_since,
        "previous_secret_expires_at": row.previous_until,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
    if secret is not None:
        return dict(SubscriptionWithSecret().dump(body | {"secret": secret}))
    return dict(SubscriptionOut().dump(body))


def dump_delivery(row: dict[str, Any]) -> dict[str, Any]:
    attempts = [
        {
            "at": a.at,
            "status_code": a.status_code,
            "latency_ms": a.latency_ms,
            "error": a.error,
            "next_attempt_at": a.next_attempt_at,
        }
        for a in row["attempt_log"]
    ]
    pending = row["status"] == "pending"
    body = {
        "id": row["id"],
        "subscription_id": row["subscription_id"],
        "event_id": row["event_id"],
        "subject": row["subject"],
        "type": row["type"],
        "status": row["status"],
        "attempt_count": row["attempts"],
        "next_attempt_at": row["next_attempt_at"] if pending else None,
        "created_at": row["created_at"],
        "delivered_at": row["delivered_at"],
        "attempts": attempts,
    }
    return dict(DeliveryOut().dump(body))
