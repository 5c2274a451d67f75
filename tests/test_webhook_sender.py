"""The sender (services.webhook_delivery.Sender): a finished POST wakes it to claim again only
once half of a subscription's slots are free, so that a burst costs a few claims, not one each;
and it keeps no receiver's cookies."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from marketsvc.db_accessor import webhooks
from marketsvc.services.webhook_delivery import REFILL_AT, SUBSCRIPTION_IN_FLIGHT, Sender
from marketsvc.settings import Settings
from marketsvc.store.engine import Database


class HeldReceiver:
    """A real HTTP receiver that answers each request only when the test lets one through."""

    def __init__(self) -> None:
        self.arrived = 0
        self.answered = 0
        self.release = asyncio.Semaphore(0)
        self.runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self.runner = web.AppRunner(app, handler_cancellation=False)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.arrived += 1
        await self.release.acquire()
        self.answered += 1
        return web.Response(status=204)

    async def stop(self) -> None:
        for _ in range(1000):
            self.release.release()
        if self.runner is not None:
            await self.runner.cleanup()


async def _until(condition: Any, what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {what} within 20 s")


def _delivery(subscription_id: int, n: int) -> dict[str, Any]:
    """A pending delivery's row, about a subject of its own."""
    return {
        "subscription_id": subscription_id,
        "event_row": n,
        "event_id": f"e-{n}",
        "subject": f"orders/{n}",
        "type": "com.marketsvc.order.paid.v1",
        "body": "{}",
    }


@pytest.fixture
async def receiver() -> AsyncIterator[HeldReceiver]:
    held = HeldReceiver()
    yield held
    await held.stop()


async def test_a_finished_post_wakes_the_sender_once_half_its_slots_are_free(
    settings: Settings, receiver: HeldReceiver
) -> None:
    settings = dataclasses.replace(settings, webhook_allow_private=True)
    database = Database(settings)
    sender = Sender(database, settings)
    full = SUBSCRIPTION_IN_FLIGHT  # one subscription's share of the slots
    try:
        url = await receiver.start()
        async with database.change_rows() as conn:
            sub = await webhooks.create_subscription(conn, url, None, "", "whsec_AA==")
            await webhooks.insert_deliveries(conn, [_delivery(sub.id, n) for n in range(full)])
        assert await sender.send_due() == full  # its every slot taken
        await _until(lambda: receiver.arrived == full, "every slot's POST")
        async with database.change_rows() as conn:  # 5 more due
            rows = [_delivery(sub.id, n) for n in range(full, full + 5)]
            await webhooks.insert_deliveries(conn, rows)
        sender.wake.clear()

        busy = full
        while busy > REFILL_AT + 1:  # one finished delivery at a time: no wake-up
            receiver.release.release()
            busy -= 1
            await _until(lambda n=busy: len(sender._in_flight) == n, "a delivery recorded")
            assert not sender.wake.is_set(), f"woken with {busy} of {full} slots busy"

        receiver.release.release()  # half its slots free now: claim again
        await _until(lambda: len(sender._in_flight) == REFILL_AT, "half the slots free")
        assert sender.wake.is_set()
        assert await sender.send_due() == 5  # the rest, in one claim
    finally:
        await receiver.stop()
        await sender.close()
        await database.dispose()


async def test_a_receivers_cookie_is_not_sent_back(settings: Settings) -> None:
    """The sender keeps no cookie jar: a Set-Cookie in one answer is not in the next POST."""
    cookies: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        cookies.append(request.headers.get("Cookie"))
        response = web.Response(status=204)
        response.set_cookie("session", "from-the-receiver", path="/")
        return response

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    # a host name, not an address: aiohttp's jar would keep no cookie from an IP address
    url = f"http://localhost:{runner.addresses[0][1]}/hook"
    settings = dataclasses.replace(settings, webhook_allow_private=True)
    database = Database(settings)
    sender = Sender(database, settings)
    try:
        async with database.change_rows() as conn:
            sub = await webhooks.create_subscription(conn, url, None, "", "whsec_AA==")
        for n in range(2):  # one after the other: the second POST follows the first's answer
            async with database.change_rows() as conn:
                await webhooks.insert_deliveries(conn, [_delivery(sub.id, n)])
            assert await sender.send_due() == 1
            await _until(lambda n=n: len(cookies) == n + 1 and not sender._in_flight, "a POST")
        assert cookies == [None, None]
    finally:
        await sender.close()
        await database.dispose()
        await runner.cleanup()
