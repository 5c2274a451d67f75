"""The relay's fan-out rows (services.webhook_relay.delivery_rows): one per event and
subscription that takes its type, in feed order, carrying no body (the sender builds it)."""

from __future__ import annotations

from types import SimpleNamespace

import orjson

from marketsvc.services.webhook_relay import delivery_rows

PLACED = "com.marketsvc.order.placed.v1"
PAID = "com.marketsvc.order.paid.v1"


def _event(n: int, type_: str) -> SimpleNamespace:
    return SimpleNamespace(id=n, event_id=f"e-{n}", type=type_, subject=f"orders/{n}")


def test_one_row_per_event_and_subscription_that_takes_it_in_feed_order() -> None:
    events = [_event(1, PLACED), _event(2, PAID), _event(3, PLACED)]
    placed_only = SimpleNamespace(id=7, event_types=orjson.dumps([PLACED]).decode())
    every = SimpleNamespace(id=8, event_types=None)
    rows = delivery_rows(events, [placed_only, every])
    assert [(row["event_row"], row["subscription_id"]) for row in rows] == [
        (1, 7),
        (1, 8),
        (2, 8),
        (3, 7),
        (3, 8),
    ]
    assert rows[0] == {
        "subscription_id": 7,
        "event_row": 1,
        "event_id": "e-1",
        "subject": "orders/1",
        "type": PLACED,
    }
