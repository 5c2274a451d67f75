"""Server-Sent Events (resume after a dropped connection, heartbeat) and retention's 410."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from marketsvc.app import create_app
from marketsvc.services.retention import purge_events
from marketsvc.settings import Settings, SettingsError
from marketsvc.store.engine import Database
from marketsvc.store.models import utcnow
from tests.events_feed import feed, settled

SSE = {"Accept": "text/event-stream"}


async def read_frames(resp: Any, count: int) -> tuple[list[dict[str, str]], int]:
    """``count`` event frames from an SSE stream, and the heartbeats seen meanwhile."""
    frames: list[dict[str, str]] = []
    frame: dict[str, str] = {}
    beats = 0
    while len(frames) < count:
        line = (await asyncio.wait_for(resp.content.readline(), 10)).decode().rstrip("\n")
        if line == ": heartbeat":
            beats += 1
        elif line == "" and frame:
            frames.append(frame)
            frame = {}
        elif line:
            field, _, value = line.partition(": ")
            frame[field] = value
    return frames, beats


async def test_sse_resumes_after_a_dropped_connection(client, admin, new_item) -> None:
    for n in range(3):
        await new_item(name=f"Before {n}")
    resp = await client.get("/api/v1/events", headers=admin | SSE)
    assert resp.status == 200
    assert resp.content_type == "text/event-stream"
    first, _ = await read_frames(resp, 2)
    resp.close()  # dropped after two of three
    for n in range(2):
        await new_item(name=f"After {n}")
    resumed = await client.get(
        "/api/v1/events", headers=admin | SSE | {"Last-Event-ID": first[-1]["id"]}
    )
    rest, _ = await read_frames(resumed, 3)
    resumed.close()
    everything = await feed(client, admin)
    assert [f["id"] for f in first + rest] == [e["cursor"] for e in everything]
    assert [f["event"] for f in first + rest] == [e["type"] for e in everything]
    assert all('"cursor"' in f["data"] for f in rest)


async def test_sse_sends_heartbeats_and_new_events(aiohttp_client, settings, admin, new_item):
    client = await aiohttp_client(create_app(replace(settings, events_heartbeat_seconds=0.2)))
    resp = await client.get("/api/v1/events", headers=admin | SSE)
    await asyncio.sleep(0.5)
    body = {"name": "Live", "price": "1.00", "stock": 1}
    assert (await client.post("/api/v1/items", json=body, headers=admin)).status == 201
    [frame], beats = await read_frames(resp, 1)
    assert beats >= 1
    assert '"Live"' in frame["data"]
    resp.close()


async def test_a_cursor_older_than_the_kept_events_is_gone(
    client, admin, settings, new_item
) -> None:
    await new_item(name="Old 1")
    await new_item(name="Old 2")
    cutoff = utcnow()
    await new_item(name="Kept")
    old = await feed(client, admin)
    database = Database(settings)
    try:
        await settled(client)
        assert await purge_events(database, cutoff, settings.events_source) == 2
    finally:
        await database.dispose()
    gone = await client.get("/api/v1/events", params={"after": old[0]["cursor"]}, headers=admin)
    assert gone.status == 410
    problem = await gone.json()
    assert gone.content_type == "application/problem+json"
    assert "resynchronise" in problem["detail"]
    sse_gone = await client.get(
        "/api/v1/events", headers=admin | SSE | {"Last-Event-ID": old[0]["cursor"]}
    )
    assert sse_gone.status == 410
    assert await feed(client, admin, after=old[1]["cursor"]) == old[2:]
    assert await feed(client, admin) == old[2:]


async def test_head_answers_headers_only(client, admin, new_item) -> None:
    await new_item()
    for accept in ("application/json", "application/x-ndjson", "text/event-stream"):
        resp = await client.head("/api/v1/events", headers=admin | {"Accept": accept})
        assert resp.status == 200
        assert resp.content_type == accept
        assert await resp.read() == b""


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MARKETSVC_EVENTS_RETENTION_DAYS": "6"}, "MARKETSVC_EVENTS_RETENTION_DAYS"),
        ({"MARKETSVC_EVENTS_SOURCE": "x" * 256}, "MARKETSVC_EVENTS_SOURCE"),
        ({"MARKETSVC_EVENTS_HEARTBEAT_SECONDS": "0"}, "MARKETSVC_EVENTS_HEARTBEAT_SECONDS"),
        ({"MARKETSVC_EVENTS_MAX_WAIT_SECONDS": "31"}, "MARKETSVC_EVENTS_MAX_WAIT_SECONDS"),
    ],
)
def test_event_settings_are_checked(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_event_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "MARKETSVC_EVENTS_SOURCE": "https://shop.example/orders",
            "MARKETSVC_EVENTS_RETENTION_DAYS": "7",
        }
    )
    assert settings.events_source == "https://shop.example/orders"
    assert settings.events_retention_days == 7
    assert Settings.from_env({}).events_retention_days == 30
