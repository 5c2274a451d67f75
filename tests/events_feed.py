"""Helpers for the event tests: read the feed, and check envelopes independently."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from cloudevents.core.formats.json import JSONFormat
from sqlalchemy import text

from marketsvc.web.keys import DATABASE

HELD_BACK = text(
    "SELECT EXISTS (SELECT 1 FROM events"
    " WHERE txid >= pg_snapshot_xmin(pg_current_snapshot())::text::bigint)"
)


async def settled(client: Any) -> None:
    """PostgreSQL: until no committed event is held back by an open transaction. On a server
    shared with other test runs, another database's transaction can hold the horizon for a
    moment; a test that reads "everything" right after writing waits for it here."""
    database = client.server.app[DATABASE]
    if database.is_sqlite:
        return
    async with asyncio.timeout(30):
        while True:
            async with database.read() as conn:
                if not await conn.scalar(HELD_BACK):
                    return
            await asyncio.sleep(0.02)


async def feed(
    client: Any, headers: dict[str, str], settle: bool = True, **params: Any
) -> list[dict[str, Any]]:
    if settle:
        await settled(client)
    resp = await client.get("/api/v1/events", params=params, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


def short_types(events: list[dict[str, Any]]) -> list[str]:
    """``com.marketsvc.order.placed.v1`` -> ``order.placed``."""
    return [e["type"].removeprefix("com.marketsvc.").rsplit(".", 1)[0] for e in events]


def parsed_by_the_sdk(event: dict[str, Any]) -> Any:
    """The event read back by the CloudEvents SDK's JSON format, as a consumer would."""
    return JSONFormat().read(None, orjson.dumps(event))
