"""Command-line options of ``scripts/bench/run``."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "scripts" / "bench"
BACKENDS = ("sqlite", "postgresql")
ROUTES = ("customer", "order", "order_total", "totals", "place_order")
# marketsvc only (the baseline has no search), on a catalogue grown to --search-items
SEARCH_ROUTES = ("search_word", "search_words", "search_phrase", "search_price")
# marketsvc only: placement again with a webhook subscription to every event (issue 16's 10 %)
WEBHOOK_ROUTE = "place_order_webhook"
# GET customer under 1, 2, 4 workers, and two instances on PostgreSQL (issue 19 item 4)
SCALING = "scaling"
OTHER_ROUTES = (WEBHOOK_ROUTE, "stream", "feed", SCALING)
STOCK = 1_000_000_000  # restocked to this once after seeding: POST rounds never run out
JWT_SECRET = "benchmark-only-secret-0123456789abcdef0123456789"


# the baseline's BASELINE_STRATEGY (scripts/bench/baseline/app.py says what each does)
BASELINE_STRATEGIES = {
    "limit": "one aiosqlite connection per worker for reads, one sqlite3 writer thread (a whole "
    "placement per call); an asyncpg pool "
    "of 8 per worker",
    "like": "marketsvc's pool settings on both databases",
}


@dataclass(frozen=True)
class Plan:
    customers: int
    items: int
    search_items: int
    orders: int
    million: int
    duration: int
    warmup: int
    connections: int
    threads: int
    search_connections: int
    workers: int
    backends: tuple[str, ...]
    routes: tuple[str, ...]
    repeat: int
    pg_url: str
    workdir: Path
    results: Path
    keep: bool
    reuse: bool
    profile: int
    baseline: str = "limit"
    scaling_workers: tuple[int, ...] = (1, 2, 4)


def parse(argv: list[str] | None = None) -> Plan:
    p = argparse.ArgumentParser(
        prog="scripts/bench/run",
        description="marketsvc against a raw aiohttp + driver baseline, side by side.",
    )
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument(
        "--million",
        action="store_const",
        const=1_000_000,
        default=0,
        help="afterwards append customers up to 1M: seed rate, and the stream again at 1M",
    )
    p.add_argument("--grow-to", type=int, dest="million", help=argparse.SUPPRESS)
    p.add_argument("--items", type=int, default=1_000)
    p.add_argument(
        "--search-items",
        type=int,
        default=100_000,
        help="before the search routes, grow the catalogue to this many items",
    )
    p.add_argument("--orders", type=int, default=200_000, help="each with 3 lines")
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    p.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per route and server")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument(
        "--search-connections",
        type=int,
        default=16,
        help="wrk connections for the search routes (issue 18's condition: 16)",
    )
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gunicorn workers")
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--routes", default=",".join((*ROUTES, *SEARCH_ROUTES, *OTHER_ROUTES)))
    p.add_argument("--repeat", type=int, default=3, help="runs per server; the median is shown")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL URL allowed to CREATE and DROP DATABASE (env BENCH_PG_URL)",
    )
    p.add_argument("--workdir", type=Path, default=Path("/tmp/marketsvc-bench"))
    p.add_argument("--results", type=Path, default=BENCH / "results")
    p.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    p.add_argument("--reuse", action="store_true", help="reuse kept databases of the same size")
    p.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="SECONDS",
        help="afterwards, py-spy every marketsvc and every baseline worker per route for SECONDS "
        "(not measured)",
    )
    p.add_argument(
        "--baseline",
        choices=BASELINE_STRATEGIES,
        default="limit",
        help="limit: the baseline's best connection strategy per database; like: marketsvc's",
    )
    p.add_argument(
        "--no-scaling",
        action="store_true",
        help="leave out the scaling rows (the `scaling` route name: 1, 2, 4 workers; 2 instances)",
    )
    p.add_argument(
        "--scaling-workers",
        default="1,2,4",
        help="gunicorn worker counts of the scaling rows (GET customer)",
    )
    a = p.parse_args(argv)
    backends = tuple(b for b in a.backends.split(",") if b)
    routes = tuple(r for r in a.routes.split(",") if r and not (a.no_scaling and r == SCALING))
    try:
        scaling_workers = tuple(int(w) for w in a.scaling_workers.split(",") if w)
    except ValueError:
        p.error(f"--scaling-workers takes numbers separated by commas, not {a.scaling_workers!r}")
    if not scaling_workers or min(scaling_workers) < 1:
        p.error("--scaling-workers needs at least one count, each at least 1")
    for b in backends:
        if b not in BACKENDS:
            p.error(f"unknown backend {b!r}; choose from {', '.join(BACKENDS)}")
    for r in routes:
        if r not in (*ROUTES, *SEARCH_ROUTES, *OTHER_ROUTES):
            p.error(f"unknown route {r!r}")
    return Plan(
        customers=a.customers,
        items=a.items,
        search_items=a.search_items,
        orders=a.orders,
        million=a.million,
        duration=a.duration,
        warmup=a.warmup,
        connections=a.connections,
        threads=min(a.threads, a.connections),
        search_connections=a.search_connections,
        workers=a.workers,
        backends=backends,
        routes=routes,
        repeat=a.repeat,
        pg_url=a.pg_url,
        workdir=a.workdir,
        results=a.results,
        keep=a.keep,
        reuse=a.reuse,
        profile=a.profile,
        baseline=a.baseline,
        scaling_workers=scaling_workers,
    )
