"""Examples the OpenAPI document shows for the webhook routes (checked by tests/test_openapi.py)."""

from __future__ import annotations

from typing import Any

NEW_SUBSCRIPTION = {
    "url": "https://hooks.example.com/marketsvc",
    "event_types": ["com.marketsvc.order.placed.v1", "com.marketsvc.order.cancelled.v1"],
    "description": "Warehouse picking",
}
SUBSCRIPTION: dict[str, Any] = {
    "id": 4,
    "url": "https://hooks.example.com/marketsvc",
    "event_types": ["com.marketsvc.order.cancelled.v1", "com.marketsvc.order.placed.v1"],
    "description": "Warehouse picking",
    "status": "active",
    "failing_since": None,
    "previous_secret_expires_at": None,
    "created_at": "2026-11-30T10:02:11.204Z",
    "updated_at": "2026-11-30T10:02:11.204Z",
}
SUBSCRIPTION_WITH_SECRET = SUBSCRIPTION | {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
PAUSE = {"status": "paused"}
ATTEMPT = {
    "at": "2026-11-30T10:05:00.117Z",
    "status_code": 503,
    "latency_ms": 84,
    "error": "answered 503",
    "next_attempt_at": "2026-11-30T10:05:03.950Z",
}
DELIVERY: dict[str, Any] = {
    "id": 91,
    "subscription_id": 4,
    "event_id": "a307bc95-7891-4d57-996c-2679fb828880",
    "subject": "orders/501",
    "type": "com.marketsvc.order.placed.v1",
    "status": "pending",
    "attempt_count": 1,
    "next_attempt_at": "2026-11-30T10:05:03.950Z",
    "created_at": "2026-11-30T10:04:59.992Z",
    "delivered_at": None,
    "attempts": [ATTEMPT],
}
NEW_DELIVERY = DELIVERY | {
    "id": 92,
    "attempt_count": 0,
    "next_attempt_at": "2026-11-30T10:06:00.000Z",
    "created_at": "2026-11-30T10:06:00.000Z",
    "attempts": [],
}
PING_DELIVERY = NEW_DELIVERY | {
    "event_id": "5a0f9e61-3f3e-4d6c-9d43-3f0a6a1f5b7e",
    "subject": "webhook_subscriptions/4",
    "type": "com.marketsvc.webhook.ping.v1",
}
REPLAY = {"after": "0-120"}
REPLAYED = {"deliveries": 37}
