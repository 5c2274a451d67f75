"""Wake-ups across instances (PostgreSQL NOTIFY) and the feed's metrics."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest

from marketsvc.app import create_app
from marketsvc.services.feed_wakeup import FEED_WAKEUP
from tests.conftest import TEST_SECRET
from tests.events_feed import feed
from tests.live import live_server
from tests.test_metrics import sample, scrape

PLACED = "com.marketsvc.order.placed.v1"


async def until(condition, seconds: float = 10) -> None:
    for _ in range(int(seconds * 100)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def test_a_commit_on_another_instance_wakes_this_ones_readers(
    aiohttp_client, client, settings, backend, admin
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite readers poll: there is no notification to carry")
    other = await aiohttp_client(create_app(settings))
    wakeup = client.server.app[FEED_WAKEUP]
    assert not wakeup._listening  # nobody waits yet: placements pay for no notifications
    waiting = asyncio.create_task(feed(client, admin, wait=20))
    await until(lambda: wakeup._listening)  # a reader waits: this worker listens
    seen = wakeup.generation
    body = {"name": "Elsewhere", "price": "1.00", "stock": 1}
    assert (await other.post("/api/v1/items", json=body, headers=admin)).status == 201
    await until(lambda: wakeup.generation > seen)  # NOTIFY reached this instance's listener
    [event] = await asyncio.wait_for(waiting, 10)
    assert event["data"]["name"] == "Elsewhere"


async def test_events_written_readers_and_wakeups_are_measured(
    client, admin, new_customer, new_item
) -> None:
    customer, item = await new_customer(), await new_item(stock=1)
    before = await scrape(client)
    cursor = (await feed(client, admin))[-1]["cursor"]
    waiting = asyncio.create_task(feed(client, admin, after=cursor, wait=20))
    await asyncio.sleep(0.2)
    during = await scrape(client)
    body = {"customer_id": customer["id"], "lines": [{"item_id": item["id"], "quantity": 1}]}
    assert (await client.post("/api/v1/orders", json=body, headers=admin)).status == 201
    assert len(await asyncio.wait_for(waiting, 10)) == 2
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("marketsvc_events_written_total", type=PLACED) == 1
    assert delta("marketsvc_events_written_total", type="com.marketsvc.item.out_of_stock.v1") == 1
    assert sample(during, "marketsvc_feed_readers", mode="long_poll") == 1
    assert sample(after, "marketsvc_feed_readers", mode="long_poll") == 0
    assert delta("marketsvc_feed_wakeup_seconds_count", mode="long_poll") == 1


async def test_sigterm_ends_event_streams_cleanly(database_url, tmp_path, tokens) -> None:
    """An open SSE stream must not hold a graceful stop: it ends with a proper end of body."""
    headers = {
        "Authorization": f"Bearer {tokens.issue('admin', 'admin')}",
        "Accept": "text/event-stream",
    }
    env = {"MARKETSVC_GRACEFUL_TIMEOUT": "20"}
    with live_server(database_url, tmp_path, jwt_secret=TEST_SECRET, env=env) as server:
        url = f"{server.url}/api/v1/events"
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
            assert resp.status == 200
            server.process.send_signal(signal.SIGTERM)
            body = await asyncio.wait_for(resp.read(), 15)  # raises if cut, not ended
        assert body == b""
        assert server.process.wait(timeout=15) == 0
