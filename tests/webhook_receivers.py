"""Real HTTP receivers for the webhook tests: aiohttp servers on local ports that record every
request and answer as told (fail the first N, hang the first N, hold one at a gate)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Receipt:
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived
    accepted: bool = False  # answered 2xx in time: the sender saw a success

    @property
    def event(self) -> dict[str, Any]:
        return dict(orjson.loads(self.body))


@dataclass
class Receiver:
    fail_first: int = 0  # answer 500 to the first N requests
    hang_first: int = 0  # hold the first N requests for hang_s (the sender times out)
    hang_s: float = 0.0
    gate_when: Callable[[dict[str, Any]], bool] | None = None  # hold the first such request
    receipts: list[Receipt] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    open: int = 0  # requests being answered now
    most_open: int = 0  # the most at once
    _runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1") -> str:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{host}:{port}/hook"
        return self.url

    async def stop(self) -> None:
        self.gate.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            return await self._answer(request)
        finally:
            self.open -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        receipt = Receipt(
            {k.lower(): v for k, v in request.headers.items()},
            await request.read(),
            time.monotonic(),
        )
        self.receipts.append(receipt)
        n = len(self.receipts)
        if n <= self.hang_first:
            await asyncio.sleep(self.hang_s)
            return web.Response(status=200)  # too late: the sender gave up
        if (
            self.gate_when is not None
            and not self.arrived.is_set()
            and self.gate_when(receipt.event)
        ):
            self.arrived.set()
            await self.gate.wait()
            receipt.accepted = True  # processed, though the sender may be gone
            return web.Response(status=200)
        if n <= self.fail_first + self.hang_first:
            return web.Response(status=500, text="not yet")
        receipt.accepted = True
        return web.Response(status=200, text="ok")

    def accepted(self) -> list[Receipt]:
        return [r for r in self.receipts if r.accepted]
