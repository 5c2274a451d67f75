"""A webhook subscription as the API shows it (never its secret, but once: ``WithSecret``).

Kept apart from ``schemas.webhooks`` because the event catalogue uses it (the data of
``webhook_subscription.disabled``) and ``schemas.webhooks`` uses the catalogue.
"""

from __future__ import annotations

from marshmallow import fields, validate

from marketsvc.schemas.common import Id, StrictSchema, UtcDateTime

SUBSCRIPTION_STATUSES = ("active", "paused", "disabled")


class SubscriptionOut(StrictSchema):
    id = Id(required=True)
    url = fields.String(required=True)
    event_types = fields.List(
        fields.String(),
        allow_none=True,
        required=True,
        metadata={"description": "The CloudEvents types sent; null: every type."},
    )
    description = fields.String(required=True)
    status = fields.String(validate=validate.OneOf(SUBSCRIPTION_STATUSES), required=True)
    failing_since = UtcDateTime(
        allow_none=True,
        required=True,
        metadata={"description": "When its deliveries began to fail without a success since."},
    )
    previous_secret_expires_at = UtcDateTime(
        allow_none=True,
        required=True,
        metadata={"description": "While a rotation runs: until when the old secret also signs."},
    )
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)


class SubscriptionWithSecret(SubscriptionOut):
    secret = fields.String(
        required=True,
        metadata={"description": "The signing secret (`whsec_...`): shown only now."},
    )
