"""The event feed (marketsvc only: the baseline has none).

- Follow: a reader long-polls ``GET /api/v1/events`` (pages of 1000) while wrk places orders
  for ``plan.duration`` seconds, then catches up; events/s it followed = events read / time
  from the start of the load until it had read the last one.
- Wake-up: on a quiet server a reader long-polls while orders are placed one at a time, 50 ms
  apart; per event, the time from its ``time`` (taken in its transaction, just before commit)
  until the waiting reader had it: median and p99.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.config import Plan
from harness.load import Sample, call, run_wrk
from harness.servers import Server

PAGE = 1000
WAKEUPS = 40
GAP_S = 0.05


@dataclass
class FeedResult:
    placed: int = 0
    followed: int = 0
    follow_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.followed / self.follow_s if self.follow_s else 0.0

    def latency(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def page(base: str, token: str, after: str | None, wait: int) -> list[dict[str, Any]]:
    query = f"?limit={PAGE}&wait={wait}" + (f"&after={after}" if after else "")
    request = urllib.request.Request(
        f"{base}/api/v1/events{query}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.loads(r.read())


def end_of_feed(base: str, token: str) -> str | None:
    after = None
    while events := page(base, token, after, 0):
        after = events[-1]["cursor"]
    return after


def measure_feed(
    plan: Plan, server: Server, token: str, counts: tuple[int, int, int]
) -> FeedResult:
    result = FeedResult()
    follow(plan, server.base, token, counts, result)
    wakeups(server.base, token, counts, result)
    return result


def follow(
    plan: Plan, base: str, token: str, counts: tuple[int, int, int], result: FeedResult
) -> None:
    after = end_of_feed(base, token)
    samples: list[Sample] = []
    load = threading.Thread(
        target=lambda: samples.append(
            run_wrk(base, "place_order", plan, token, plan.duration, counts)
        )
    )
    started = time.monotonic()
    load.start()
    last_read = started
    while True:
        loading = load.is_alive()
        events = page(base, token, after, 1)
        if events:
            result.followed += len(events)
            after = events[-1]["cursor"]
            last_read = time.monotonic()
        elif not loading:
            break  # the load is over and a second passed with nothing new: caught up
    load.join()
    result.follow_s = last_read - started
    result.placed = sum(s.requests - s.errors - sum(s.statuses.values()) for s in samples)


def wakeups(base: str, token: str, counts: tuple[int, int, int], result: FeedResult) -> None:
    after = end_of_feed(base, token)
    stop = threading.Event()

    def read() -> None:
        nonlocal after
        while not stop.is_set():
            events = page(base, token, after, 5)
            now = time.time()
            for event in events:
                at = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
                if event["type"].endswith("order.placed.v1"):
                    result.latencies_ms.append((now - at) * 1000)
            if events:
                after = events[-1]["cursor"]

    reader = threading.Thread(target=read)
    reader.start()
    customers, _, items = counts
    try:
        for n in range(WAKEUPS):
            time.sleep(GAP_S)
            body = {
                "customer_id": 1 + n % customers,
                "lines": [{"item_id": 1 + n % items, "quantity": 1}],
            }
            status, _ = call(base, "/api/v1/orders", token, body)
            assert status == 201, status
        deadline = time.monotonic() + 10
        while len(result.latencies_ms) < WAKEUPS and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        reader.join()
