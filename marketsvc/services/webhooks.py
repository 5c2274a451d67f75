"""Webhook subscriptions' use cases: create, change, rotate, replay, redeliver, ping."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row

from marketsvc.db_accessor import outbox, webhooks
from marketsvc.errors import CursorExpired, InvalidInput
from marketsvc.events.envelope import encode
from marketsvc.schemas.common import format_timestamp
from marketsvc.services.webhook_relay import delivery_rows
from marketsvc.services.webhook_signing import new_secret
from marketsvc.services.webhook_targets import check_target
from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from marketsvc.store.models import utcnow

ROTATION_OVERLAP = timedelta(hours=24)
PING_TYPE = "com.marketsvc.webhook.ping.v1"
REPLAY_BATCH = 500


async def _checked_url(url: str, settings: Settings) -> None:
    problem = await check_target(url, settings)
    if problem is not None:
        raise InvalidInput({"body.url": [problem]})


async def create(
    database: Database, settings: Settings, data: dict[str, Any]
) -> tuple[Row[Any], str]:
    """The new subscription and its secret (shown this once)."""
    await _checked_url(data["url"], settings)
    secret = new_secret()
    async with database.change_rows() as conn:
        row = await webhooks.create_subscription(
            conn, data["url"], data["event_types"], data["description"], secret
        )
    return row, secret


async def change(
    database: Database, settings: Settings, subscription_id: int, changes: dict[str, Any]
) -> Row[Any]:
    if "url" in changes:
        await _checked_url(changes["url"], settings)
    async with database.change_rows() as conn:
        if not changes:
            return await webhooks.get_subscription(conn, subscription_id)
        if changes.get("status") == "active":
            changes = changes | {"failing_since": None}  # resumed: a fresh start for disabling
        return await webhooks.update_subscription(conn, subscription_id, changes)


async def rotate(database: Database, subscription_id: int) -> tuple[Row[Any], str]:
    """A new secret; the current one keeps signing (beside it) for ``ROTATION_OVERLAP``."""
    secret = new_secret()
    async with database.change_rows() as conn:
        current = await webhooks.get_subscription(conn, subscription_id, lock=True)
        row = await webhooks.update_subscription(
            conn,
            subscription_id,
            {
                "secret": secret,
                "previous_secret": current.secret,
                "previous_until": utcnow() + ROTATION_OVERLAP,
            },
        )
    return row, secret


async def redeliver(database: Database, delivery_id: int) -> dict[str, Any]:
    """A new pending delivery of the same event (the old one keeps its history); 410 if
    retention purged the event (``webhooks.EventPurged``)."""
    async with database.change_rows() as conn:
        new_id = await webhooks.copy_delivery(conn, delivery_id)
        return await webhooks.delivery_with_attempts(conn, new_id)


async def ping(database: Database, settings: Settings, subscription_id: int) -> dict[str, Any]:
    """A ``webhook.ping`` event for this subscription only (not in the feed)."""
    subject = f"webhook_subscriptions/{subscription_id}"
    event_id = str(uuid.uuid4())
    document = {
        "specversion": "1.0",
        "id": event_id,
        "source": settings.events_source,
        "type": PING_TYPE,
        "subject": subject,
        "time": format_timestamp(utcnow()),
        "datacontenttype": "application/json",
        "data": {"subscription_id": subscription_id},
    }
    async with database.change_rows() as conn:
        await webhooks.get_subscription(conn, subscription_id)
        delivery_id = await webhooks.insert_delivery(
            conn,
            {
                "subscription_id": subscription_id,
                "event_row": None,
                "event_id": event_id,
                "subject": subject,
                "type": PING_TYPE,
                "body": encode(document).decode(),
            },
        )
        return await webhooks.delivery_with_attempts(conn, delivery_id)


async def replay(
    database: Database,
    subscription_id: int,
    after: outbox.Position | None,
    since: datetime | None,
) -> int:
    """New deliveries to one subscription of the kept events after ``after`` (or from
    ``since`` on) that its types take, up to the feed's end now; how many. A batch per short
    transaction; in feed order, after the subscription's deliveries already queued."""
    async with database.read() as conn:
        subscription = await webhooks.get_subscription(conn, subscription_id)
        if after is not None and after < await outbox.purged_through(conn):
            raise CursorExpired(outbox.cursor_of(after))
    position, total = after or outbox.START, 0
    while True:
        async with database.scan() as conn:
            page = await outbox.read_feed(conn, position, outbox.FeedFilter(), REPLAY_BATCH)
        events: Sequence[Any] = page.rows
        if not events:
            return total
        position = (events[-1].txid, events[-1].id)
        if since is not None:
            events = [e for e in events if e.time >= since]
        rows = delivery_rows(events, [subscription])
        if rows:
            async with database.change_rows() as conn:
                await webhooks.insert_deliveries(conn, rows)
            total += len(rows)
        if len(page.rows) < REPLAY_BATCH:
            return total
