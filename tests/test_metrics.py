"""/metrics: counts by route template and status, pool use, rows streamed; summed over workers."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from contextlib import AsyncExitStack

import aiohttp
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from marketsvc.app import create_app
from marketsvc.ops import metrics
from marketsvc.ops.metrics import PUBLISH_SECONDS
from marketsvc.web.keys import DATABASE
from tests.live import live_server


def parse(exposition: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


async def scrape(client: TestClient) -> dict[tuple[str, frozenset], float]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    return parse(await resp.text())


def sample(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_counted_by_route_template_and_status(client, new_item) -> None:
    item = await new_item()
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get(f"/api/v1/items/{item['id']}")).status == 200
    assert (await client.get("/api/v1/items/999999")).status == 404
    assert (await client.get("/no/such/path/123")).status == 404
    after = await scrape(client)
    route = {"method": "GET", "route": "/api/v1/items/{id}"}

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("marketsvc_http_requests_total", **route, status="200") == 3
    assert delta("marketsvc_http_requests_total", **route, status="404") == 1
    assert delta("marketsvc_http_request_duration_seconds_count", **route, status="200") == 3
    assert delta("marketsvc_http_request_duration_seconds_sum", **route, status="200") > 0
    buckets = [  # cumulative: the +Inf bucket holds all three, no bucket holds more
        delta("marketsvc_http_request_duration_seconds_bucket", **route, status="200", le=le)
        for le in ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "+Inf")
    ]
    assert buckets == sorted(buckets)
    assert buckets[-1] == 3
    assert delta("marketsvc_http_requests_total", method="GET", route="<unmatched>", status="404")
    assert not [k for k in after if ("route", "/no/such/path/123") in k[1]]
    assert sample(after, "marketsvc_http_requests_in_flight") == 1  # the scrape itself


async def test_rows_streamed_are_counted(client, new_item) -> None:
    for n in range(4):
        await new_item(name=f"Item {n}")
    before = await scrape(client)
    assert len(await (await client.get("/api/v1/items")).json()) == 4
    after = await scrape(client)
    labels = {"route": "/api/v1/items"}
    assert (
        sample(after, "marketsvc_rows_streamed_total", **labels)
        - sample(before, "marketsvc_rows_streamed_total", **labels)
        == 4
    )


async def test_pool_checked_out_and_overflow(client, settings) -> None:
    database = client.server.app[DATABASE]
    async with AsyncExitStack() as held:
        for _ in range(settings.pool_size + 1):
            session = await held.enter_async_context(database.load())
            await session.execute(text("SELECT 1"))
        busy = await scrape(client)
    idle = await scrape(client)
    assert sample(busy, "marketsvc_db_pool_checked_out") == settings.pool_size + 1
    assert sample(busy, "marketsvc_db_pool_overflow") == 1
    assert sample(idle, "marketsvc_db_pool_checked_out") == 0
    assert sample(idle, "marketsvc_db_pool_overflow") == 0


async def test_orders_placed_counter_is_exposed_for_every_outcome(client) -> None:
    metrics = await scrape(client)
    for outcome in ("placed", "out_of_stock", "invalid", "conflict"):
        assert ("marketsvc_orders_placed_total", frozenset({("outcome", outcome)})) in metrics


async def test_orders_are_counted_by_outcome(client, admin, new_customer, new_item) -> None:
    customer, item = await new_customer(), await new_item(stock=1)
    order = {"customer_id": customer["id"], "lines": [{"item_id": item["id"], "quantity": 1}]}
    before = await scrape(client)
    keyed = admin | {"Idempotency-Key": "k-1"}
    assert (await client.post("/api/v1/orders", json=order, headers=keyed)).status == 201
    assert (await client.post("/api/v1/orders", json=order, headers=keyed)).status == 201
    assert (await client.post("/api/v1/orders", json=order, headers=admin)).status == 409
    assert (await client.post("/api/v1/orders", json={"lines": []}, headers=admin)).status == 422
    after = await scrape(client)

    def grew(outcome: str) -> float:
        series = ("marketsvc_orders_placed_total", frozenset({("outcome", outcome)}))
        return after[series] - before[series]

    labels = frozenset({("method", "POST"), ("route", "/api/v1/orders")})
    replays = ("marketsvc_idempotent_replays_total", labels)
    assert after[replays] - before.get(replays, 0) == 1
    assert {o: grew(o) for o in ("placed", "out_of_stock", "invalid", "conflict")} == {
        "placed": 1,
        "out_of_stock": 1,
        "invalid": 1,
        "conflict": 0,
    }


def requests_by_pid(log: str, route: str) -> Counter[int]:
    lines = [json.loads(line) for line in log.splitlines()]
    return Counter(line["pid"] for line in lines if line.get("route") == route)


async def fetch(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as resp:
        assert resp.status == 200
        return await resp.text()


async def test_two_workers_metrics_are_summed(database_url, tmp_path) -> None:
    with live_server(database_url, tmp_path, workers=2) as server:
        served = Counter[int]()
        connector = aiohttp.TCPConnector(limit=20, force_close=True)  # a new connection each
        async with aiohttp.ClientSession(connector=connector) as session, asyncio.timeout(60):
            while len(served) < 2:  # until both workers have answered some
                await asyncio.gather(*(fetch(session, f"{server.url}/healthz") for _ in range(40)))
                served = requests_by_pid(server.log(), "/healthz")
            # the worker that answers the scrape publishes its own counts then; the other's
            # are at most PUBLISH_SECONDS old
            await asyncio.sleep(PUBLISH_SECONDS + 0.5)
            metrics = parse(await fetch(session, f"{server.url}/metrics"))
    served = requests_by_pid(server.log(), "/healthz")  # whole: the workers flushed at exit
    total = sample(
        metrics, "marketsvc_http_requests_total", method="GET", route="/healthz", status="200"
    )
    assert len(served) == 2
    assert min(served.values()) > 0
    assert total == sum(served.values())


async def test_unknown_methods_share_one_series(client) -> None:
    """The HTTP parser passes some 30 methods (WebDAV's too); they share one series."""
    for method in ("PROPFIND", "MKCOL", "LOCK"):
        resp = await client.request(method, "/healthz")
        assert resp.status == 405
    metrics = await scrape(client)
    methods = {
        dict(labels)["method"]
        for name, labels in metrics
        if name == "marketsvc_http_requests_total"
    }
    assert "OTHER" in methods
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"}


async def test_a_request_is_tallied_in_its_worker_until_published(
    aiohttp_client, settings, monkeypatch
) -> None:
    """A request writes no shared count (only the live in-flight gauge): counts wait in
    ``TALLIES`` until the once-a-second publish (held off here) or a scrape."""
    monkeypatch.setattr(metrics, "PUBLISH_SECONDS", 3600)
    client = await aiohttp_client(create_app(settings))
    labels = {"method": "GET", "route": "/healthz", "status": "200"}

    def served() -> float:
        return sample(
            parse(metrics.exposition().decode()), "marketsvc_http_requests_total", **labels
        )

    before = served()
    assert (await client.get("/healthz")).status == 200
    assert served() == before
    metrics.publish(client.server.app)
    assert served() == before + 1
