"""The feed never skips an event: not when an early position commits late, not under many
writers and readers at once (every reader ends with every event once, in one order)."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from types import SimpleNamespace
from typing import Any

import pytest

from marketsvc.db_accessor import outbox
from marketsvc.events.data import item_event
from marketsvc.store.engine import Database
from tests.events_feed import feed, settled
from tests.ordering import order_body

WRITERS, EVENTS_PER_WRITER, READERS = 8, 12, 3


def made_up_item(item_id: int) -> Any:
    return SimpleNamespace(id=item_id, name=f"Item {item_id}", description="", price_cents=100,
                           stock=1, seller_id=1)  # fmt: skip


async def test_a_reader_never_passes_an_event_that_commits_late(
    client, admin, settings, backend, new_item
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: a later transaction cannot commit first")
    await new_item()
    await settled(client)
    database = Database(settings)
    try:
        async with database.change_rows() as slow:
            await outbox.record(slow, item_event("item.created", made_up_item(901)))
            async with database.change_rows() as fast:
                await outbox.record(fast, item_event("item.created", made_up_item(902)))
            seen = await feed(client, admin, settle=False)  # 902 has committed, 901 has not
        rest = await feed(client, admin, after=seen[-1]["cursor"])
    finally:
        await database.dispose()
    subjects = [e["subject"] for e in seen + rest]
    assert subjects[1:] == ["items/901", "items/902"], subjects


async def test_a_long_poll_answers_when_an_event_commits(client, admin, new_item) -> None:
    await new_item()
    cursor = (await feed(client, admin))[-1]["cursor"]
    waiting = asyncio.create_task(feed(client, admin, after=cursor, wait=20))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await new_item(name="Fresh")
    [event] = await asyncio.wait_for(waiting, 10)
    assert event["data"]["name"] == "Fresh"


async def test_an_empty_long_poll_ends_with_its_wait(client, admin) -> None:
    started = time.monotonic()
    assert await feed(client, admin, wait=1) == []
    assert time.monotonic() - started >= 1


async def test_many_writers_and_readers_agree_on_every_event(
    client, admin, settings, new_customer, new_item
) -> None:
    customer, item = await new_customer(), await new_item(stock=10_000)
    database = Database(settings)
    writing = True

    async def write(writer: int) -> None:
        for n in range(EVENTS_PER_WRITER):
            if n % 3 == 0:  # through the API: a placement and its event
                body = order_body(customer["id"], (item["id"], 1))
                assert (await client.post("/api/v1/orders", json=body, headers=admin)).status == 201
                continue
            async with database.change_rows() as conn:  # commits in a shuffled order
                await outbox.record(
                    conn, item_event("item.created", made_up_item(writer * 100 + n))
                )
                await asyncio.sleep(random.uniform(0, 0.02))

    async def follow() -> list[str]:
        ids: list[str] = []
        cursor: str | None = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (writing or len(ids) < expected):
            params = {"limit": 7, "wait": 1} | ({"after": cursor} if cursor else {})
            page = await feed(client, admin, settle=False, **params)
            ids += [e["id"] for e in page]
            cursor = page[-1]["cursor"] if page else cursor
        return ids

    expected = 2 + WRITERS * EVENTS_PER_WRITER
    try:
        readers = [asyncio.create_task(follow()) for _ in range(READERS)]
        await asyncio.gather(*(write(w) for w in range(WRITERS)))
        writing = False
        followed = await asyncio.gather(*readers)
    finally:
        await database.dispose()
    everything = [e["id"] for e in await feed(client, admin, limit=1000)]
    assert len(everything) == expected == len(set(everything))
    for ids in followed:
        assert ids == everything


async def test_stock_events_stay_true_while_edits_race_placements(
    client, admin, new_customer, new_item
) -> None:
    """Placements take the last unit while admins restock: the item's stock events alternate,
    the last one matches its stock, and its events are numbered 1..n without a gap."""
    customer, item = await new_customer(), await new_item(stock=1)
    body = order_body(customer["id"], (item["id"], 1))

    async def buy() -> None:
        resp = await client.post("/api/v1/orders", json=body, headers=admin)
        assert resp.status in (201, 409)

    async def restock() -> None:
        resp = await client.patch(f"/api/v1/items/{item['id']}", json={"stock": 1}, headers=admin)
        assert resp.status == 200

    await asyncio.gather(*(buy() if n % 2 else restock() for n in range(40)))
    events = await feed(client, admin, subject=f"items/{item['id']}", limit=1000)
    assert [e["resourceversion"] for e in events] == list(range(1, len(events) + 1))
    stock_moves = [e["type"].split(".")[3] for e in events if e["type"].split(".")[3] != "updated"][
        1:
    ]  # past item.created
    assert all(a != b for a, b in itertools.pairwise(stock_moves)), stock_moves
    stock = (await (await client.get(f"/api/v1/items/{item['id']}")).json())["stock"]
    assert stock_moves[-1] == ("out_of_stock" if stock == 0 else "back_in_stock")
