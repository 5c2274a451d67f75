"""Placement with a webhook subscription active (issue 16: within 10 % of placement without).

On the same marketsvc server as the plain placement row, after it: wait until the webhook relay
has fanned out every event so far, start the receiver (``harness.receiver``), subscribe it to
every event type (``POST /api/v1/webhooks/subscriptions``), run the placement load, then read
where delivery stood when the load ended (received by the receiver, deliveries pending, events
not yet fanned out) and how long it took to drain, and delete the subscription (its deliveries
go with it) so that later rounds run without it. marketsvc only: the baseline has no webhooks.
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import dbs
from harness.config import Plan
from harness.dbs import BenchError
from harness.load import Sample, call, run_wrk, worker_cpu_seconds
from harness.receiver import Receiver
from harness.servers import Server, free_port

SUBSCRIPTIONS = "/api/v1/webhooks/subscriptions"
CATCH_UP_S = 60.0  # at most this long for the relay to fan out what came before, or to drain


@dataclass
class WebhookResult:
    samples: list[Sample] = field(default_factory=list)
    plain: list[Sample] = field(default_factory=list)  # placement without, when measured here
    events: int = 0  # events made while subscribed (all the subscription's), requests in
    # flight when wrk stopped included: counted once they are all delivered
    loaded_events: int = 0  # events made during the measured runs (not the warm-up)
    received_at_end: int = 0  # distinct webhook-ids the receiver had when the load ended
    pending_at_end: int = 0  # deliveries not yet delivered when the load ended
    unfanned_at_end: int = 0  # events the relay had not yet turned into deliveries
    received: int = 0  # distinct webhook-ids at the end of the drain
    requests: int = 0  # POSTs received (duplicates included)
    failed: int = 0  # deliveries failed (after retries) at the end of the drain
    drain_s: float | None = None  # from the end of the load until all were received
    receiver_cpu_us: float = 0.0  # the receiver's CPU per placement, during the load


def unfanned(url: str) -> int:
    """Events the webhook relay has not fanned out yet (after its consumer position)."""
    rows = dbs.query(url, "SELECT txid, event_row FROM event_consumers WHERE name = 'webhooks'")
    if not rows:
        return dbs.count(url, "events")
    txid, event_row = rows[0]
    if url.startswith("sqlite"):  # numbered parameters: the position's txid is used twice
        sql = "SELECT COUNT(*) FROM events WHERE txid > ?1 OR (txid = ?1 AND id > ?2)"
    else:
        sql = "SELECT COUNT(*) FROM events WHERE txid > $1 OR (txid = $1 AND id > $2)"
    return dbs.query(url, sql, txid, event_row)[0][0]


def delivery_counts(url: str, subscription_id: int) -> dict[str, int]:
    sql = "SELECT status, COUNT(*) FROM webhook_deliveries WHERE subscription_id = $1 GROUP BY 1"
    return dict(dbs.query(url, sql, subscription_id))


def max_event_id(url: str) -> int:
    return dbs.query(url, "SELECT COALESCE(MAX(id), 0) FROM events")[0][0]


def events_after(url: str, event_id: int) -> int:
    return dbs.query(url, "SELECT COUNT(*) FROM events WHERE id > $1", event_id)[0][0]


def wait_until(condition: Any, seconds: float) -> float | None:
    """Seconds until ``condition()`` held, or None if it did not within ``seconds``."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if condition():
            return time.monotonic() - start
        time.sleep(0.25)
    return None


def delete(base: str, path: str, token: str) -> int:
    request = urllib.request.Request(
        base + path, method="DELETE", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return r.status


def measure_webhook(
    plan: Plan,
    backend: str,
    server: Server,
    url: str,
    token: str,
    counts: tuple[int, int, int],
    logdir: Path,
    plain: list[Sample] | None,
    say: Any,
) -> WebhookResult:
    """``plain``: the placement row's marketsvc samples from this server; None: measure them
    here first (marketsvc alone), so that the ratio compares runs of one server."""
    result = WebhookResult()
    if plain is None:
        if plan.warmup:
            run_wrk(server.base, "place_order", plan, token, plan.warmup, counts)
        for n in range(plan.repeat):
            result.plain.append(placements(plan, server, token, counts))
            say(
                f"{backend} placement (no subscription) {n + 1}/{plan.repeat}: "
                f"{result.plain[-1].rps:.0f} req/s, worker CPU {result.plain[-1].cpu_us:.0f} us/req"
            )
    if wait_until(lambda: unfanned(url) == 0, CATCH_UP_S) is None:
        raise BenchError(f"{backend}: the webhook relay has not caught up with the feed")
    receiver = Receiver(free_port(), logdir / "receiver.log")
    try:
        status, body = call(
            server.base,
            SUBSCRIPTIONS,
            token,
            {"url": receiver.url, "description": "benchmark receiver"},
        )
        if status != 201 or not isinstance(body, dict):
            raise BenchError(f"{backend}: creating the subscription answered {status} {body!r}")
        subscription = body["id"]
        first_event = max_event_id(url)
        try:
            if plan.warmup:
                run_wrk(server.base, "place_order", plan, token, plan.warmup, counts)
            cpu_before = receiver.cpu_seconds()
            loaded_from = max_event_id(url)
            for n in range(plan.repeat):
                sample = placements(plan, server, token, counts)
                result.samples.append(sample)
                say(
                    f"{backend} placement with a subscription {n + 1}/{plan.repeat}: "
                    f"{sample.rps:.0f} req/s, worker CPU {sample.cpu_us:.0f} us/req, "
                    f"errors {sample.errors} {sample.statuses or ''}"
                )
            loaded = sum(s.requests for s in result.samples)
            result.receiver_cpu_us = (receiver.cpu_seconds() - cpu_before) / loaded * 1e6
            # where delivery stood when the load ended (warm-up placements are events too)
            result.received_at_end = receiver.counts()[1]
            result.unfanned_at_end = unfanned(url)
            result.pending_at_end = delivery_counts(url, subscription).get("pending", 0)
            result.loaded_events = events_after(url, loaded_from)
            result.events = events_after(url, first_event)

            def drained() -> bool:
                if unfanned(url) or delivery_counts(url, subscription).get("pending", 0):
                    return False
                result.events = events_after(url, first_event)
                return receiver.counts()[1] >= result.events

            result.drain_s = wait_until(drained, CATCH_UP_S)
            result.requests, result.received = receiver.counts()
            result.failed = delivery_counts(url, subscription).get("failed", 0)
        finally:
            delete(server.base, f"{SUBSCRIPTIONS}/{subscription}", token)
    finally:
        receiver.stop()
    say(
        f"{backend} webhooks: {result.events} events, {result.received_at_end} received by the "
        f"end of the load ({result.pending_at_end} deliveries pending, {result.unfanned_at_end} "
        f"events not fanned out), all {result.received} after "
        f"{'-' if result.drain_s is None else f'{result.drain_s:.1f}s'}"
    )
    return result


def placements(plan: Plan, server: Server, token: str, counts: tuple[int, int, int]) -> Sample:
    pids = server.worker_pids()
    cpu_before = worker_cpu_seconds(pids)
    sample = run_wrk(server.base, "place_order", plan, token, plan.duration, counts)
    sample.cpu_us = (worker_cpu_seconds(pids) - cpu_before) / sample.requests * 1e6
    return sample
