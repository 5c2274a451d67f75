"""Placement with a webhook subscription active (issue 16: within 10 % of placement without).

On the marketsvc server of the placement row, after it, ``--repeat`` rounds: wait until the
webhook relay has fanned out every event so far, run the placement load; wait again, subscribe
the receiver (``harness.receiver``) to every event type (``POST /api/v1/webhooks/subscriptions``),
run the placement load, read where delivery stood when the load ended (received by the receiver,
deliveries pending, events not yet fanned out) and how long it took to drain, and delete the
subscription (its deliveries go with it). The ratio compares the runs of these rounds.
marketsvc only: the baseline has no webhooks.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import dbs
from harness.config import Plan
from harness.dbs import BenchError
from harness.load import Sample, call, run_wrk, worker_cpu_seconds
from harness.profile import profile_route
from harness.receiver import Receiver
from harness.servers import Server, free_port

SUBSCRIPTIONS = "/api/v1/webhooks/subscriptions"
DESCRIPTION = "benchmark receiver"  # marks the harness's own subscriptions
CATCH_UP_S = 60.0  # at most this long for the relay to fan out what came before, or to drain


@dataclass
class WebhookResult:
    """Summed over the rounds; ``samples`` and ``plain`` one per round."""

    samples: list[Sample] = field(default_factory=list)  # placement with a subscription
    plain: list[Sample] = field(default_factory=list)  # placement without, the same rounds
    events: int = 0  # events made while subscribed, requests in flight when wrk stopped
    # included: counted once they are all delivered
    loaded_events: int = 0  # events made during the subscribed runs
    received_at_end: int = 0  # distinct webhook-ids the receiver got by the end of each load
    pending_at_end: int = 0  # deliveries not yet delivered when each load ended
    unfanned_at_end: int = 0  # events the relay had not yet turned into deliveries then
    received: int = 0  # distinct webhook-ids at the end of the last drain
    requests: int = 0  # POSTs received (duplicates included)
    failed: int = 0  # deliveries failed (after retries) at the end of the drains
    drains: list[float | None] = field(default_factory=list)  # seconds from the end of each
    # load until all were received; None: not within CATCH_UP_S
    receiver_cpu_us: float = 0.0  # the receiver's CPU per placement, during the loads
    # the workers' CPU from the start of each subscribed load to the end of its drain, per
    # placement: what a subscribed placement costs in all, whether its delivery was made during
    # the load or after it (a sender that falls behind does part of it after)
    drained_cpu_us: list[float] = field(default_factory=list)

    @property
    def drain_s(self) -> float | None:
        """The longest drain; None if one did not end."""
        if not self.drains or None in self.drains:
            return None
        return max(d for d in self.drains if d is not None)


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
    say: Any,
) -> WebhookResult:
    """Rounds of placement without and with a subscription (each first in turn), on one
    server: each run starts with the relay caught up and no delivery pending (runs one after the
    other inherited the last one's backlog: 609 -> 422 -> 313 req/s in three subscribed runs on
    one machine while the plain ones rose), and the subscription of each round is deleted once
    its deliveries drained."""
    result = WebhookResult()
    stale = delete_leftovers(backend, server, token)
    if stale:
        say(f"{backend}: deleted {stale} subscription(s) left by an interrupted benchmark")
    if plan.warmup:
        run_wrk(server.base, "place_order", plan, token, plan.warmup, counts)
    receiver = Receiver(free_port(), logdir / "receiver.log")
    receiver_cpu = 0.0

    def plain(n: int) -> None:
        caught_up(backend, url)
        result.plain.append(placements(plan, server, token, counts))
        say(
            f"{backend} placement (no subscription) {n + 1}/{plan.repeat}: "
            f"{result.plain[-1].rps:.0f} req/s, worker CPU {result.plain[-1].cpu_us:.0f} us/req"
        )

    def with_subscription(n: int) -> None:
        nonlocal receiver_cpu
        caught_up(backend, url)
        cpu_before = receiver.cpu_seconds()
        subscribed(plan, backend, server, url, token, counts, receiver, result)
        receiver_cpu += receiver.cpu_seconds() - cpu_before
        sample = result.samples[-1]
        say(
            f"{backend} placement with a subscription {n + 1}/{plan.repeat}: "
            f"{sample.rps:.0f} req/s, worker CPU {sample.cpu_us:.0f} us/req "
            f"({result.drained_cpu_us[-1]:.0f} through the drain), "
            f"errors {sample.errors} {sample.statuses or ''}"
        )

    try:
        for n in range(plan.repeat):
            # A B B A: the machine's drift and the growing database weigh on both sides alike
            # (always without first, the subscribed runs came later in every round)
            for run in (plain, with_subscription) if n % 2 == 0 else (with_subscription, plain):
                run(n)
    finally:
        receiver.stop()
    result.receiver_cpu_us = receiver_cpu / sum(s.requests for s in result.samples) * 1e6
    say(
        f"{backend} webhooks: {result.events} events, {result.received_at_end} received by the "
        f"ends of the loads ({result.pending_at_end} deliveries pending, "
        f"{result.unfanned_at_end} events not fanned out), all {result.received} after "
        f"{'-' if result.drain_s is None else f'{result.drain_s:.1f}s'} at most"
    )
    return result


def caught_up(backend: str, url: str) -> None:
    if wait_until(lambda: unfanned(url) == 0, CATCH_UP_S) is None:
        raise BenchError(f"{backend}: the webhook relay has not caught up with the feed")


def subscribed(
    plan: Plan,
    backend: str,
    server: Server,
    url: str,
    token: str,
    counts: tuple[int, int, int],
    receiver: Receiver,
    result: WebhookResult,
) -> None:
    """One placement run with a new subscription of ``receiver`` to every event: where delivery
    stood when the load ended, then the drain, then the subscription deleted."""
    with subscription_of(receiver, backend, server, token) as subscription:
        first_event = max_event_id(url)
        received_before = receiver.counts()[1]
        pids = server.worker_pids()
        cpu_before = worker_cpu_seconds(pids)
        result.samples.append(placements(plan, server, token, counts))
        # where delivery stood when the load ended
        result.received_at_end += receiver.counts()[1] - received_before
        result.unfanned_at_end += unfanned(url)
        result.pending_at_end += delivery_counts(url, subscription).get("pending", 0)
        made = events_after(url, first_event)
        result.loaded_events += made

        def drained() -> bool:
            nonlocal made
            if unfanned(url) or delivery_counts(url, subscription).get("pending", 0):
                return False
            made = events_after(url, first_event)  # requests in flight when wrk stopped too
            return receiver.counts()[1] - received_before >= made

        result.drains.append(wait_until(drained, CATCH_UP_S))
        cpu = worker_cpu_seconds(pids) - cpu_before
        result.drained_cpu_us.append(cpu / result.samples[-1].requests * 1e6)
        result.events += made
        result.requests, result.received = receiver.counts()
        result.failed += delivery_counts(url, subscription).get("failed", 0)


def profile_webhook(
    plan: Plan,
    backend: str,
    server: Server,
    token: str,
    counts: tuple[int, int, int],
    logdir: Path,
    target: Path,
) -> None:
    """py-spy on every marketsvc worker during placement with a subscription (not measured): where
    the time that the subscription adds goes. The subscription is deleted afterwards."""
    receiver = Receiver(free_port(), logdir / "receiver-profile.log")
    try:
        with subscription_of(receiver, backend, server, token):
            profile_route(server, "place_order", plan, token, counts, target)
    finally:
        receiver.stop()


@contextmanager
def subscription_of(receiver: Receiver, backend: str, server: Server, token: str) -> Iterator[int]:
    """A subscription of ``receiver`` to every event, its id; deleted afterwards (its deliveries
    go with it)."""
    body = {"url": receiver.url, "description": DESCRIPTION}
    status, created = call(server.base, SUBSCRIPTIONS, token, body)
    if status != 201 or not isinstance(created, dict):
        raise BenchError(f"{backend}: creating the subscription answered {status} {created!r}")
    try:
        yield created["id"]
    finally:
        delete(server.base, f"{SUBSCRIPTIONS}/{created['id']}", token)


def delete_leftovers(backend: str, server: Server, token: str) -> int:
    """Delete the subscriptions of an earlier run that was killed before it deleted its own
    (``--reuse`` keeps the database): their deliveries, to a receiver long gone, would retry
    through this run's loads (seen: 1,211 pending, a measured run slower for it)."""
    status, listed = call(server.base, SUBSCRIPTIONS, token)
    if status != 200 or not isinstance(listed, list):
        raise BenchError(f"{backend}: listing the subscriptions answered {status} {listed!r}")
    stale = [s["id"] for s in listed if s.get("description") == DESCRIPTION]
    for subscription_id in stale:
        delete(server.base, f"{SUBSCRIPTIONS}/{subscription_id}", token)
    return len(stale)


def placements(plan: Plan, server: Server, token: str, counts: tuple[int, int, int]) -> Sample:
    pids = server.worker_pids()
    cpu_before = worker_cpu_seconds(pids)
    sample = run_wrk(server.base, "place_order", plan, token, plan.duration, counts)
    sample.cpu_us = (worker_cpu_seconds(pids) - cpu_before) / sample.requests * 1e6
    return sample
