"""Chaos: shoppers place and cancel orders with keys and retries while workers are SIGKILLed,
the database restarts and the server restarts; afterwards the database must agree with every
answer the shoppers got. Run with ``-s`` to see the figures."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from marketsvc.settings import Settings
from marketsvc.store.migrate import upgrade
from marketsvc.web.auth import TokenCodec
from tests.chaos import Operation, Record, Server, shopper
from tests.conftest import TEST_SECRET
from tests.dbs import fresh_database
from tests.pg_cluster import Cluster, temporary_cluster

SHOPPERS = 32
LOAD_SECONDS = 32
DRAIN_SECONDS = 60  # after the load, unanswered operations keep retrying this long at most
LINES = "SELECT order_id, item_id, unit_price_cents, quantity FROM order_lines"
ITEMS = {"Mug": 100_000, "Kettle": 100_000, "Teapot": 100_000, "Rare print": 40}

pytestmark = pytest.mark.slow


@pytest.fixture
def chaos_database(backend: str, tmp_path: Path) -> Iterator[tuple[str, Cluster | None]]:
    if backend == "sqlite":
        with fresh_database("sqlite", tmp_path) as url:
            yield url, None
        return
    with temporary_cluster() as cluster:  # a real restart needs a server of our own
        upgrade(cluster.url)
        yield cluster.url, cluster


async def test_no_order_is_lost_or_doubled_whatever_fails(
    chaos_database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, cluster = chaos_database
    token = TokenCodec(Settings(jwt_secret=TEST_SECRET)).issue("admin", "admin")
    headers = {"Authorization": f"Bearer {token}"}
    server = Server(url, tmp_path, TEST_SECRET)
    await asyncio.to_thread(server.start)
    try:
        customers, items = await _shop(server.url, headers)
        record = Record()
        started = time.monotonic()
        stop_at, give_up = started + LOAD_SECONDS, started + LOAD_SECONDS + DRAIN_SECONDS
        shoppers = [
            shopper(n, customers[n], list(items), server, headers, record, stop_at, give_up)
            for n in range(SHOPPERS)
        ]
        await asyncio.gather(_faults(server, cluster, record), *shoppers)
    finally:
        await asyncio.to_thread(server.stop)
    backend = "sqlite" if cluster is None else "postgresql"

    def show(figures: dict[str, object]) -> None:
        with capsys.disabled():  # shown even when output is captured, and before any assert
            print(f"\nchaos on {backend}: {figures}")

    await _check(url, items, record, show)


async def _shop(url: str, headers: dict[str, str]) -> tuple[list[int], dict[int, int]]:
    """One customer per shopper and the items, with their initial stock."""
    async with aiohttp.ClientSession(url, headers=headers) as http:
        customers = []
        for n in range(SHOPPERS):
            address = {"street": "1 Main St", "city": "Leeds", "post_code": "L1", "country": "GB"}
            body = {"name": f"Shopper {n}", "email": f"shopper{n}@example.com", "address": address}
            async with http.post("/api/v1/customers", json=body) as resp:
                assert resp.status == 201, await resp.text()
                customers.append((await resp.json())["id"])
        items = {}
        for name, stock in ITEMS.items():
            body = {"name": name, "price": "2.35", "stock": stock}
            async with http.post("/api/v1/items", json=body) as resp:
                assert resp.status == 201, await resp.text()
                items[(await resp.json())["id"]] = stock
    return customers, items


async def _faults(server: Server, cluster: Cluster | None, record: Record) -> None:
    """Two worker kills, a database restart and a server restart, a few seconds apart."""
    for _ in range(2):
        await asyncio.sleep(5)
        await asyncio.to_thread(server.kill_a_worker)
        record.faults.append("SIGKILL a worker")
    await asyncio.sleep(5)
    if cluster is not None:
        await asyncio.to_thread(cluster.stop, "immediate")
        await asyncio.sleep(1)
        await asyncio.to_thread(cluster.start)
        record.faults.append("PostgreSQL stopped -m immediate and started")
    else:
        await asyncio.to_thread(server.kill_all)
        await asyncio.to_thread(server.start)
        record.faults.append("SIGKILL the whole server, SQLite writes in flight; started again")
    await asyncio.sleep(6)
    await asyncio.to_thread(server.stop)
    await asyncio.to_thread(server.start)
    record.faults.append("server stopped (SIGTERM) and started")


async def _check(
    url: str, items: dict[int, int], record: Record, show: Callable[[dict[str, object]], None]
) -> None:
    """What the database holds against what the shoppers were told."""
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.connect() as conn:
        orders = dict((await conn.execute(text("SELECT id, status FROM orders"))).all())
        lines = (await conn.execute(text(LINES))).all()
        stock = dict((await conn.execute(text("SELECT id, stock FROM items"))).all())
    await engine.dispose()
    by_order: dict[int, set[tuple[int, int, int]]] = {}
    for order_id, item_id, price, quantity in lines:
        by_order.setdefault(order_id, set()).add((item_id, price, quantity))

    ops = record.operations
    unanswered = [op for op in ops if op.answer is None]
    placed = [op for op in ops if op.kind == "place" and _status(op) == 201]
    cancelled = {_order_id(op) for op in ops if op.kind == "cancel" and _status(op) == 200}
    answered_ids = [_order_id(op) for op in placed]
    mismatched = [op.key for op in placed if not _agrees(op, orders, by_order)]
    unknown = set(orders) - set(answered_ids)
    duplicated = len(answered_ids) - len(set(answered_ids))
    expected = {i: "cancelled" if i in cancelled else "pending" for i in answered_ids}
    wrong_status = [i for i in answered_ids if orders.get(i) != expected[i]]
    taken = Counter[int]()
    for order_id, item_id, _, quantity in lines:
        if orders[order_id] != "cancelled":
            taken[item_id] += quantity
    drift = {i: items[i] - stock[i] - taken[i] for i in items if items[i] != stock[i] + taken[i]}
    replays_differ = [op.key for op in ops if len({(s, b) for s, b, _ in op.answers}) > 1]
    unmarked_replays = [op.key for op in ops if not all(r for _, _, r in op.answers[1:])]
    figures = {
        "attempted": len(ops),
        "placed": len(placed),
        "cancelled": len(cancelled),
        "refused (out of stock)": sum(1 for op in ops if op.kind == "place" and _status(op) == 409),
        "requests": sum(record.statuses.values()),
        "statuses": dict(sorted(record.statuses.items(), key=str)),
        "answers replayed": sum(1 for op in ops for _, _, replayed in op.answers if replayed),
        # done, but its answer never arrived (worker killed, connection reset): the retry replayed
        "answers lost, then replayed": sum(1 for op in ops if op.answer and op.answer[2]),
        "lost": len(unanswered) + len(mismatched),  # never answered, or unlike their answer
        "orders nobody was told about": len(unknown),  # a second order for a key would be one
        "duplicated": duplicated,  # one order answered to two keys
        "stock drift": sum(abs(d) for d in drift.values()),
        "5xx other than 503": sum(
            n for s, n in record.statuses.items() if isinstance(s, int) and s >= 500 and s != 503
        ),
        "faults injected": record.faults,
    }
    show(figures)
    assert len(record.faults) == 4
    assert record.statuses[500] == 0, figures
    assert not unanswered, f"{len(unanswered)} operations never got an answer: {figures}"
    assert not mismatched, f"orders unlike their 201 answers: {mismatched[:5]}"
    assert not unknown, f"orders nobody was told about: {sorted(unknown)[:10]}"
    assert duplicated == 0
    assert not wrong_status, f"orders unlike their answered status: {wrong_status[:10]}"
    assert not drift, f"stock drift per item: {drift}"
    assert not replays_differ, f"replays that differ from the first answer: {replays_differ[:5]}"
    assert not unmarked_replays
    assert len(placed) > 100, figures
    assert cancelled, figures


def _status(op: Operation) -> int:
    assert op.answer is not None
    return op.answer[0]


def _order_id(op: Operation) -> int:
    if op.kind == "cancel":
        return int(op.path.rsplit("/", 1)[1])
    assert op.answer is not None
    return int(orjson.loads(op.answer[1])["id"])


def _agrees(op: Operation, orders: dict[int, str], by_order: dict[int, set]) -> bool:
    """The order exists with exactly the answered lines, prices and total."""
    assert op.answer is not None
    answer = orjson.loads(op.answer[1])
    answered = {(line["item_id"], _cents(line["unit_price"]), line["quantity"])
                for line in answer["lines"]}  # fmt: skip
    total = sum(price * quantity for _, price, quantity in answered)
    return (
        answer["id"] in orders
        and by_order.get(answer["id"]) == answered
        and _cents(answer["total"]) == total
        and {(line["item_id"], line["quantity"]) for line in answer["lines"]}
        == {(line["item_id"], line["quantity"]) for line in op.body["lines"]}
    )


def _cents(money: str) -> int:
    whole, _, fraction = money.partition(".")
    return int(whole) * 100 + int(fraction.ljust(2, "0"))
