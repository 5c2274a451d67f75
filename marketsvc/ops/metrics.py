"""Prometheus metrics, correct across gunicorn workers.

Under gunicorn the arbiter exports ``PROMETHEUS_MULTIPROC_DIR`` before any worker forks (see
``gunicorn_conf``): every worker then writes its values to files there and a scrape of any worker
sums them all. prometheus_client picks its value store when first imported, so nothing the arbiter
imports before that may import this module.
"""

from __future__ import annotations

import asyncio
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

REQUESTS = Counter(
    "marketsvc_http_requests_total",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "marketsvc_http_request_duration_seconds",
    "Time to produce the response (to its last byte for streams)",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
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


POOL_SAMPLE_SECONDS = 1.0


def publish_pool(app: web.Application) -> None:
    """This process's pool gauges, as of now."""
    pool = app[DATABASE].engine.pool  # a QueuePool: the engine is made with a pool_size
    checked_out = pool.checkedout() if isinstance(pool, QueuePool) else 0
    POOL_CHECKED_OUT.set(checked_out)
    POOL_OVERFLOW.set(max(0, checked_out - app[SETTINGS].pool_size))


async def pool_sampler(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: refresh the pool gauges every second (and on every scrape, see the
    handler) rather than on every checkout and checkin, which cost each request two updates."""

    async def sample() -> None:
        while True:
            publish_pool(app)
            await asyncio.sleep(POOL_SAMPLE_SECONDS)

    task = asyncio.create_task(sample())
    yield
    task.cancel()


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
