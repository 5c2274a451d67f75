"""The relay's event bodies (services.webhook_relay.EventBodies): encoded before the fan-out's
write transaction, each once, and only for events a subscription takes."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import orjson

from marketsvc.services.webhook_relay import EventBodies, delivery_rows

PLACED = "com.marketsvc.order.placed.v1"
PAID = "com.marketsvc.order.paid.v1"


def _event(n: int, type_: str) -> SimpleNamespace:
    return SimpleNamespace(
        id=n,
        event_id=f"e-{n}",
        type=type_,
        subject=f"orders/{n}",
        time=datetime(2026, 12, 1, tzinfo=UTC),
        sequence=1,
        data=b'{"id": 1}',
    )


def test_prepared_bodies_are_the_ones_the_deliveries_carry() -> None:
    events = [_event(1, PLACED), _event(2, PAID), _event(3, PLACED)]
    placed_only = SimpleNamespace(id=7, event_types=orjson.dumps([PLACED]).decode())
    bodies = EventBodies("/marketsvc")
    bodies.prepare(events, [placed_only])
    prepared = {n: bodies(e) for n, e in ((1, events[0]), (3, events[2]))}
    assert set(bodies._bodies) == {1, 3}  # the paid event: no subscription takes it

    rows = delivery_rows(events, [placed_only], bodies)
    assert [row["event_row"] for row in rows] == [1, 3]
    assert all(row["body"] is prepared[row["event_row"]] for row in rows)  # not encoded again
    assert orjson.loads(rows[0]["body"])["id"] == "e-1"


def test_a_subscription_new_to_the_transaction_still_gets_bodies() -> None:
    """The transaction reads the subscriptions again: one created after ``prepare`` (or an
    event no subscription took then) is encoded there, not left without a body."""
    events = [_event(1, PAID)]
    bodies = EventBodies("/marketsvc")
    bodies.prepare(events, [])
    assert bodies._bodies == {}
    every = SimpleNamespace(id=8, event_types=None)
    rows = delivery_rows(events, [every], bodies)
    assert orjson.loads(rows[0]["body"])["type"] == PAID
