"""The pieces of the chaos test: clients that retry with their Idempotency-Key and record every
answer, a live server that can be killed and restarted, and the faults themselves."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil

from tests.live import LiveServer, live_server

REQUEST_TIMEOUT = 15.0  # a request outlives a database restart's connect timeouts
RETRY_PAUSE = 0.2
DEFINITIVE = {200, 201, 204, 404, 409, 422}  # an answer; anything else (or none) is retried


@dataclass
class Operation:
    """One thing a client wants done, under one key, and every answer it got for it."""

    kind: str  # "place" or "cancel"
    key: str
    method: str
    path: str
    body: dict[str, Any]
    answers: list[tuple[int, bytes, bool]] = field(default_factory=list)  # status, body, replayed

    @property
    def answer(self) -> tuple[int, bytes, bool] | None:
        return self.answers[0] if self.answers else None


@dataclass
class Record:
    operations: list[Operation] = field(default_factory=list)
    statuses: Counter[int | str] = field(default_factory=Counter)  # every attempt's outcome
    faults: list[str] = field(default_factory=list)


class Server:
    """A ``python -m marketsvc serve`` the test may kill or restart; a new one gets a new port."""

    def __init__(self, database_url: str, tmp_path: Path, jwt_secret: str) -> None:
        self.database_url, self.tmp_path, self.jwt_secret = database_url, tmp_path, jwt_secret
        self._stack = ExitStack()
        self.live: LiveServer | None = None

    @property
    def url(self) -> str:
        assert self.live is not None
        return self.live.url

    def start(self) -> None:
        self._stack = ExitStack()
        self.live = self._stack.enter_context(
            live_server(self.database_url, self.tmp_path, workers=2, jwt_secret=self.jwt_secret)
        )

    def stop(self) -> None:
        """SIGTERM: a graceful stop, in-flight requests finish."""
        self._stack.close()

    def workers(self) -> list[psutil.Process]:
        assert self.live is not None
        return psutil.Process(self.live.process.pid).children()

    def kill_a_worker(self) -> None:
        os.kill(self.workers()[0].pid, signal.SIGKILL)

    def kill_all(self) -> None:
        """SIGKILL the arbiter and every worker at once, writes in flight."""
        assert self.live is not None
        for process in [*self.workers(), psutil.Process(self.live.process.pid)]:
            process.send_signal(signal.SIGKILL)
        self.live.process.wait()
        self._stack.close()


async def perform(
    http: aiohttp.ClientSession, server: Server, op: Operation, record: Record, give_up: float
) -> None:
    """Send ``op`` until it gets an answer, with the same key and body every time."""
    while time.monotonic() < give_up:
        try:
            async with (
                asyncio.timeout(REQUEST_TIMEOUT),
                http.request(
                    op.method,
                    server.url + op.path,
                    json=op.body,
                    headers={"Idempotency-Key": op.key},
                ) as resp,
            ):
                body = await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError):
            record.statuses["no answer"] += 1
            await asyncio.sleep(RETRY_PAUSE)
            continue
        record.statuses[resp.status] += 1
        in_flight = resp.status == 409 and b"still in flight" in body
        if resp.status not in DEFINITIVE or in_flight:
            await asyncio.sleep(RETRY_PAUSE)
            continue
        op.answers.append((resp.status, body, resp.headers.get("Idempotent-Replayed") == "true"))
        return


async def shopper(
    n: int,
    customer_id: int,
    item_ids: list[int],
    server: Server,
    headers: dict[str, str],
    record: Record,
    stop_at: float,
    give_up: float,
) -> None:
    """Places orders and cancels some of them until ``stop_at``; sometimes asks twice, as a
    client whose answer was lost would."""
    rng = random.Random(n)
    mine: list[int] = []
    async with aiohttp.ClientSession(headers=headers) as http:
        while time.monotonic() < stop_at:
            if mine and rng.random() < 0.3:
                order_id = mine.pop(rng.randrange(len(mine)))
                op = Operation("cancel", uuid.uuid4().hex, "PATCH", f"/api/v1/orders/{order_id}",
                               {"status": "cancelled"})  # fmt: skip
            else:
                lines = [{"item_id": i, "quantity": rng.randint(1, 3)}
                         for i in rng.sample(item_ids, rng.randint(1, 3))]  # fmt: skip
                op = Operation("place", uuid.uuid4().hex, "POST", "/api/v1/orders",
                               {"customer_id": customer_id, "lines": lines})  # fmt: skip
            record.operations.append(op)
            await perform(http, server, op, record, give_up)
            if op.answer is None:
                continue
            if op.kind == "place" and op.answer[0] == 201:
                mine.append(orjson.loads(op.answer[1])["id"])
            if rng.random() < 0.15:
                await perform(http, server, op, record, give_up)
