"""Helpers for the event tests: read the feed, and check envelopes independently."""

from __future__ import annotations

from typing import Any

import orjson
from cloudevents.core.formats.json import JSONFormat


async def feed(client: Any, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/events", params=params, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


def short_types(events: list[dict[str, Any]]) -> list[str]:
    """``com.marketsvc.order.placed.v1`` -> ``order.placed``."""
    return [e["type"].removeprefix("com.marketsvc.").rsplit(".", 1)[0] for e in events]


def parsed_by_the_sdk(event: dict[str, Any]) -> Any:
    """The event read back by the CloudEvents SDK's JSON format, as a consumer would."""
    return JSONFormat().read(None, orjson.dumps(event))
