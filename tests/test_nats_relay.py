"""The NATS JetStream relay (``services.nats_relay``) against a real NATS server.

Runs when ``MARKETSVC_TEST_NATS_URL`` is set (``.ci/run`` sets nats://127.0.0.1:4222); each test
uses a stream and subject prefix of its own and deletes the stream afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest

from marketsvc.app import create_app
from marketsvc.db_accessor import consumers
from marketsvc.services.nats_relay import CONSUMER, NATS_RELAY, NatsRelay
from marketsvc.settings import Settings
from marketsvc.web.keys import DATABASE
from tests.events_feed import feed, short_types
from tests.ordering import place

NATS_URL = os.environ.get("MARKETSVC_TEST_NATS_URL", "")
needs_nats = pytest.mark.skipif(not NATS_URL, reason="MARKETSVC_TEST_NATS_URL not set")


@dataclasses.dataclass(frozen=True)
class Stream:
    name: str
    prefix: str


@pytest.fixture
async def stream() -> AsyncIterator[Stream]:
    import nats
    from nats.js.errors import NotFoundError

    token = uuid.uuid4().hex[:12]
    yield Stream(f"MARKETSVC_TEST_{token}", f"test.{token}.events")
    nc = await nats.connect(NATS_URL)
    try:
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_stream(f"MARKETSVC_TEST_{token}")
    finally:
        await nc.close()


def with_nats(settings: Settings, stream: Stream, url: str = NATS_URL) -> Settings:
    return dataclasses.replace(
        settings, nats_url=url, nats_stream=stream.name, nats_subject_prefix=stream.prefix
    )


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 30) -> None:
    try:
        async with asyncio.timeout(seconds):
            while True:  # a condition in the database or on the NATS server: polled
                if await check():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"{check.__name__} still false after {seconds} s") from None


async def stream_messages(stream: Stream) -> list[Any]:
    """Every message in the stream, read with an (ephemeral) JetStream pull consumer."""
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        sub = await nc.jetstream().pull_subscribe(f"{stream.prefix}.>", stream=stream.name)
        messages: list[Any] = []
        while True:
            try:
                batch = await sub.fetch(200, timeout=1)
            except TimeoutError:  # asyncio's, or nats-py's (a subclass): none left
                return messages
            for msg in batch:
                await msg.ack()
            messages.extend(batch)
    finally:
        await nc.close()


async def make_orders(client, admin, count: int) -> None:
    """A customer, an item and ``count`` orders, over the API."""
    address = {"street": "1 High St", "city": "Leeds", "post_code": "LS1", "country": "GB"}
    body = {"name": "Ada", "email": f"{uuid.uuid4().hex}@example.com", "address": address}
    customer = await (await client.post("/api/v1/customers", json=body, headers=admin)).json()
    body = {"name": "Kettle", "price": "10.00", "stock": 1000}
    item = await (await client.post("/api/v1/items", json=body, headers=admin)).json()
    for _ in range(count):
        await place(client, admin, customer["id"], (item["id"], 1))


async def position_of(client) -> tuple[int, int] | None:
    async with client.server.app[DATABASE].read() as conn:
        return await consumers.position(conn, CONSUMER)


def assert_each_event_once(messages: list[Any], events: list[dict[str, Any]], prefix: str):
    ids = [m.headers["Nats-Msg-Id"] for m in messages]
    assert len(ids) == len(set(ids)), "an event is in the stream more than once"
    assert sorted(ids) == sorted(e["id"] for e in events)
    by_id = {e["id"]: e for e in events}
    for message in messages:
        body = orjson.loads(message.data)
        expected = dict(by_id[body["id"]])
        expected.pop("cursor")
        assert body == expected  # the same CloudEvent the feed serves
        name = short_types([body])[0]
        assert message.subject == f"{prefix}.{name}"
        assert message.headers["Content-Type"] == "application/cloudevents+json"


@needs_nats
async def test_a_relay_stopped_between_publish_and_mark_leaves_each_event_once(
    client, aiohttp_client, admin, settings, stream
) -> None:
    """The relay publishes a batch, JetStream acknowledges it, and the relay stops before it
    moves the consumer's position (the ``after_acks`` hook never returns). A new relay
    publishes the batch again: JetStream drops every re-published ``Nats-Msg-Id``."""
    await make_orders(client, admin, 6)  # before any relay runs: one first batch of 8 events
    first = create_app(with_nats(settings, stream))
    frozen: list[Any] = []
    reached = asyncio.Event()

    async def stop_before_mark(rows: Any) -> None:
        frozen.extend(rows)
        reached.set()
        await asyncio.Event().wait()  # the process stops here (cancelled at shutdown)

    first_client = await aiohttp_client(first)
    first[NATS_RELAY].after_acks = stop_before_mark
    async with asyncio.timeout(30):
        await reached.wait()
    assert first[NATS_RELAY].published == 8
    await first_client.close()
    assert len(await stream_messages(stream)) == 8  # published...
    assert await position_of(client) == (0, 0)  # ...but not marked

    second = create_app(with_nats(settings, stream))
    second_client = await aiohttp_client(second)
    relay: NatsRelay = second[NATS_RELAY]
    await make_orders(second_client, admin, 3)
    events = await feed(second_client, admin, limit=1000)
    last = (0, 0) if not events else tuple(map(int, events[-1]["cursor"].split("-")))

    async def drained() -> bool:
        return await position_of(second_client) == last

    await eventually(drained)
    assert relay.duplicates == 8  # the frozen batch went out again, and was dropped
    assert relay.published == len(events) - 8
    assert_each_event_once(await stream_messages(stream), events, stream.prefix)
    assert len(events) == 8 + 5


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def metric(client, name: str, consumer: str) -> float | None:
    text = await (await client.get("/metrics")).text()
    found = re.search(rf'^{name}{{consumer="{consumer}"}} (\S+)$', text, re.MULTILINE)
    return None if found is None else float(found[1])


@needs_nats
async def test_nats_unreachable_then_back_loses_nothing(
    aiohttp_client, admin, settings, stream
) -> None:
    """NATS away: placements still 201, the backlog grows in /metrics; the relay pointed at
    the real server drains it, each event once."""
    unreachable = with_nats(settings, stream, f"nats://127.0.0.1:{closed_port()}")
    down = await aiohttp_client(create_app(unreachable))
    await make_orders(down, admin, 5)  # make_orders asserts every 201

    async def backlog_is(n: int, client: Any) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return await metric(client, "marketsvc_outbox_backlog_events", "nats") == n

        return check

    await eventually(await backlog_is(7, down))
    assert await metric(down, "marketsvc_outbox_oldest_unpublished_age_seconds", "nats") > 0
    assert down.server.app[NATS_RELAY].published == 0
    await down.close()

    up = await aiohttp_client(create_app(with_nats(settings, stream)))
    await eventually(await backlog_is(0, up))
    assert await metric(up, "marketsvc_outbox_oldest_unpublished_age_seconds", "nats") == 0
    events = await feed(up, admin, limit=1000)
    assert len(events) == 7
    assert_each_event_once(await stream_messages(stream), events, stream.prefix)


def test_nothing_about_nats_is_imported_without_the_setting(database_url) -> None:
    """The app starts (every cleanup_ctx entered) and stops without importing ``nats``."""
    script = f"""
import asyncio, sys
from aiohttp import web
from marketsvc.app import create_app
from marketsvc.settings import Settings

async def main():
    runner = web.AppRunner(create_app(Settings(database_url={database_url!r})))
    await runner.setup()
    await asyncio.sleep(0.2)
    await runner.cleanup()

asyncio.run(main())
print(sorted(m for m in sys.modules if m == "nats" or m.startswith("nats.")))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout


@needs_nats
async def test_a_batch_jetstream_refuses_is_not_marked(
    aiohttp_client, admin, settings, stream
) -> None:
    """The stream exists but does not take the relay's subjects: every publish is refused (no
    ack), so the position stays and the stream stays empty; once the stream takes them, the
    relay publishes everything."""
    import nats

    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    await js.add_stream(name=stream.name, subjects=[f"{stream.prefix}.elsewhere"])
    try:
        client = await aiohttp_client(create_app(with_nats(settings, stream)))
        await make_orders(client, admin, 2)
        failures = await metric_total(client, "marketsvc_nats_publish_failures_total")

        async def refused_twice() -> bool:
            now = await metric_total(client, "marketsvc_nats_publish_failures_total")
            return now >= failures + 2

        await eventually(refused_twice)
        assert await position_of(client) == (0, 0)
        assert (await js.stream_info(stream.name)).state.messages == 0
        assert client.server.app[NATS_RELAY].published == 0

        await js.update_stream(name=stream.name, subjects=[f"{stream.prefix}.>"])
        events = await feed(client, admin, limit=1000)
        last = tuple(map(int, events[-1]["cursor"].split("-")))

        async def drained() -> bool:
            return await position_of(client) == last

        await eventually(drained, 60)  # the relay's backoff may have reached a few seconds
        assert_each_event_once(await stream_messages(stream), events, stream.prefix)
    finally:
        await nc.close()


async def metric_total(client, name: str) -> float:
    text = await (await client.get("/metrics")).text()
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found is not None, name
    return float(found[1])


@needs_nats
async def test_two_instances_publish_each_event_once(
    aiohttp_client, admin, settings, stream
) -> None:
    """Two instances on one database, both taking orders: the lease lets one relay publish, so
    no event is even sent twice (no duplicate for JetStream to drop)."""
    apps = [create_app(with_nats(settings, stream)) for _ in range(2)]
    clients = [await aiohttp_client(app) for app in apps]
    await asyncio.gather(*(make_orders(client, admin, 5) for client in clients))
    events = await feed(clients[0], admin, limit=1000)
    last = tuple(map(int, events[-1]["cursor"].split("-")))

    async def drained() -> bool:
        return await position_of(clients[0]) == last

    await eventually(drained)
    relays: list[NatsRelay] = [app[NATS_RELAY] for app in apps]
    assert sum(r.published for r in relays) == len(events) == 2 * 7
    assert sum(r.duplicates for r in relays) == 0
    assert sorted(r.published for r in relays)[0] == 0  # one relay did it all
    assert_each_event_once(await stream_messages(stream), events, stream.prefix)
