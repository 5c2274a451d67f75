"""Prometheus metrics, correct across gunicorn workers.

Under gunicorn the arbiter exports ``PROMETHEUS_MULTIPROC_DIR`` before any worker forks (see
``gunicorn_conf``): every worker then writes its values to files there and a scrape of any worker
sums them all. prometheus_client picks its value store when first imported, so nothing the arbiter
imports before that may import this module.
"""

from __future__ import annotations

import asyncio
import bisect
import os
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy.pool import QueuePool

from marketsvc.web.keys import DATABASE, SETTINGS

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
REQUESTS = Counter(
    "marketsvc_http_requests_total",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "marketsvc_http_request_duration_seconds",
    "Time to produce the response (to its last byte for streams)",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "marketsvc_http_requests_in_flight",
    "Requests being handled right now",
    multiprocess_mode="livesum",
)
POOL_CHECKED_OUT = Gauge(
    "marketsvc_db_pool_checked_out",
    "Database connections checked out of the pool",
    multiprocess_mode="livesum",
)
POOL_OVERFLOW = Gauge(
    "marketsvc_db_pool_overflow",
    "Checked-out database connections beyond the pool size (overflow connections in use)",
    multiprocess_mode="livesum",
)
ROWS_STREAMED = Counter(
    "marketsvc_rows_streamed_total", "Rows written by streaming list responses", ["route"]
)
IDEMPOTENT_REPLAYS = Counter(
    "marketsvc_idempotent_replays_total",
    "Answers replayed for a retried Idempotency-Key, by method and route template",
    ["method", "route"],
)
ORDER_OUTCOMES = ("placed", "out_of_stock", "invalid", "conflict")
ORDERS_PLACED = Counter(
    "marketsvc_orders_placed_total",
    "Order placement attempts by outcome: " + ", ".join(ORDER_OUTCOMES),
    ["outcome"],
)
for _outcome in ORDER_OUTCOMES:  # every series exists from zero, so rates work from the start
    ORDERS_PLACED.labels(_outcome)


PUBLISH_SECONDS = 1.0


class RequestTallies:
    """This worker's request counts and latency buckets, in plain Python.

    Why: every prometheus_client update in multiprocess mode is a write to a memory-mapped file
    under a lock; a request cost five (in-flight up and down, the count, the latency sum and
    its bucket). Here a request adds to a list in a dict, and ``publish`` moves the totals into
    the multiprocess files every second and before a scrape, so ``/metrics`` still sums over
    workers, each worker's counts at most a second old. The in-flight gauge stays live (its two
    writes per request): it says what is happening now, and a value a second old can miss a
    burst entirely (``tests/test_shutdown.py`` waits for 200 requests in flight). Measured with
    ``scripts/bench/instructions.py`` (callgrind, GET /api/v1/customers/1 on SQLite): with the
    in-flight gauge tallied too, 35k-55k fewer instructions per request (1,007k -> 971k at 1000
    requests; 1,226k -> 1,173k at 200); keeping it live gives back 7k-14k of that.

    ``publish`` writes a histogram's sum and buckets through its private ``_sum`` and
    ``_buckets`` (prometheus_client has no batch ``observe``; the version is pinned), and
    ``tests/test_metrics.py`` checks that the exposed buckets, sum and count add up.
    """

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        # (method, route template, status) -> [count, latency sum, then one count per bucket]
        self._pending: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        tally = self._pending.get(key)
        if tally is None:
            tally = self._pending[key] = [0.0] * (len(self._bounds) + 2)
        tally[0] += 1
        tally[1] += seconds
        tally[2 + bisect.bisect_left(self._bounds, seconds)] += 1  # le: the first bound >= it

    def publish(self) -> None:
        pending, self._pending = self._pending, {}
        for (method, route, status), tally in pending.items():
            labels = (method, route, str(status))
            REQUESTS.labels(*labels).inc(tally[0])
            latency = LATENCY.labels(*labels)
            latency._sum.inc(tally[1])
            for bucket, count in zip(latency._buckets, tally[2:], strict=True):
                if count:
                    bucket.inc(count)


TALLIES = RequestTallies((*LATENCY_BUCKETS, float("inf")))  # prometheus adds the +Inf bucket


def publish_pool(app: web.Application) -> None:
    """This process's pool gauges, as of now."""
    pool = app[DATABASE].engine.pool  # a QueuePool: the engine is made with a pool_size
    checked_out = pool.checkedout() if isinstance(pool, QueuePool) else 0
    POOL_CHECKED_OUT.set(checked_out)
    POOL_OVERFLOW.set(max(0, checked_out - app[SETTINGS].pool_size))


def publish(app: web.Application) -> None:
    """Everything this worker keeps in plain Python, into the shared metrics, as of now."""
    publish_pool(app)
    TALLIES.publish()


async def metrics_publisher(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: publish every second (and on every scrape, see the handler) rather than
    on every request, checkout and checkin; and once more when the worker stops."""

    async def every_second() -> None:
        while True:
            publish(app)
            await asyncio.sleep(PUBLISH_SECONDS)

    task = asyncio.create_task(every_second())
    yield
    task.cancel()
    TALLIES.publish()


def exposition() -> bytes:
    """Every worker's metrics when under gunicorn, else this process's own."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


EVENTS_WRITTEN = Counter(
    "marketsvc_events_written_total",
    "Events committed with the change they describe, by type",
    ["type"],
)
FEED_READERS = Gauge(
    "marketsvc_feed_readers",
    "Event feed readers connected: long-polls waiting and Server-Sent Event streams",
    ["mode"],
    multiprocess_mode="livesum",
)
WAKEUP_LATENCY = Histogram(
    "marketsvc_feed_wakeup_seconds",
    "From an event's time to its delivery to a reader that was waiting for it",
    ["mode"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

WEBHOOK_OUTCOMES = ("delivered", "retrying", "failed")
WEBHOOK_DELIVERIES = Counter(
    "marketsvc_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: " + ", ".join(WEBHOOK_OUTCOMES),
    ["outcome"],
)
for _outcome in WEBHOOK_OUTCOMES:
    WEBHOOK_DELIVERIES.labels(_outcome)
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "marketsvc_webhook_attempt_duration_seconds",
    "Time from sending a webhook POST to its answer, timeout or error",
    buckets=LATENCY_BUCKETS,
)
WEBHOOK_DISABLED = Gauge(
    "marketsvc_webhook_subscriptions_disabled",
    "Webhook subscriptions disabled after failing for too long (as the database last said)",
    multiprocess_mode="max",
)
OUTBOX_BACKLOG = Gauge(
    "marketsvc_outbox_backlog_events",
    "Events after each feed consumer's position (not yet published or fanned out), counted up "
    "to 100000",
    ["consumer"],
    multiprocess_mode="livemostrecent",
)
OUTBOX_OLDEST_AGE = Gauge(
    "marketsvc_outbox_oldest_unpublished_age_seconds",
    "Age of the next event each feed consumer has yet to handle (0: none waiting)",
    ["consumer"],
    multiprocess_mode="livemostrecent",
)
NATS_PUBLISHED = Counter(
    "marketsvc_nats_published_total",
    "Events acknowledged by NATS JetStream: stored, or duplicate (a re-publish it dropped)",
    ["outcome"],
)
NATS_FAILURES = Counter(
    "marketsvc_nats_publish_failures_total",
    "NATS relay attempts that failed (connection, stream, or acks) and will be retried",
)
for _outcome in ("stored", "duplicate"):
    NATS_PUBLISHED.labels(_outcome)
