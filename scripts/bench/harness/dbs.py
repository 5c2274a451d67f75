"""The two databases of each backend: create, migrate, seed, restock, check, drop."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from harness.config import ROOT, STOCK, Plan

SERVERS = ("marketsvc", "baseline")
# PostgreSQL databases are {PG_PREFIX}_marketsvc and {PG_PREFIX}_baseline: runs side by side
# (each with its own --workdir) need their own prefix
PG_PREFIX = os.environ.get("BENCH_PG_PREFIX", "bench")


class BenchError(RuntimeError):
    """Something the benchmark needs is missing or broken; the message says what."""


@dataclass
class Seeded:
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def database_urls(plan: Plan, backend: str) -> dict[str, str]:
    if backend == "sqlite":
        return {s: f"sqlite+aiosqlite:///{plan.workdir / f'{s}.db'}" for s in SERVERS}
    parts = urlsplit(plan.pg_url)
    return {
        s: urlunsplit(parts._replace(scheme="postgresql+asyncpg", path=f"/{PG_PREFIX}_{s}"))
        for s in SERVERS
    }


def query(url: str, sql: str, *args: Any) -> list[tuple]:
    """Run one statement on ``url`` (either backend) and return its rows."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split(":///", 1)[1], timeout=30) as conn:
            return conn.execute(sql.replace("$1", "?"), args).fetchall()
    return asyncio.run(_pg_query(url.replace("+asyncpg", ""), sql, *args))


async def _pg_query(dsn: str, sql: str, *args: Any) -> list[tuple]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return [tuple(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


def check_postgres(plan: Plan) -> str:
    try:
        return query(plan.pg_url, "SHOW server_version")[0][0]
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchError(
            f"PostgreSQL is not reachable at {plan.pg_url} ({exc}); start it, pass --pg-url, "
            "or run with --backends sqlite"
        ) from None


def exists(plan: Plan, backend: str, url: str) -> bool:
    if backend == "sqlite":
        return (plan.workdir / url.rsplit("/", 1)[1]).exists()
    name = urlsplit(url).path.lstrip("/")
    return bool(query(plan.pg_url, "SELECT 1 FROM pg_database WHERE datname = $1", name))


def recreate(plan: Plan, backend: str, url: str) -> None:
    drop(plan, backend, url)
    if backend == "postgresql":
        query(plan.pg_url, f'CREATE DATABASE "{urlsplit(url).path.lstrip("/")}"')


def drop(plan: Plan, backend: str, url: str) -> None:
    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            (plan.workdir / (url.rsplit("/", 1)[1] + suffix)).unlink(missing_ok=True)
    else:
        name = urlsplit(url).path.lstrip("/")
        query(plan.pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def marketsvc_cli(url: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "marketsvc", *args],
        cwd=ROOT,
        env={**env, "MARKETSVC_DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise BenchError(f"marketsvc {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done


def seed(url: str, env: dict[str, str], customers: int, items: int, orders: int) -> Seeded:
    """``python -m marketsvc seed`` timed from the outside (process start included)."""
    args = ["--customers", str(customers), "--items", str(items), "--orders", str(orders)]
    start = time.perf_counter()
    out = marketsvc_cli(url, "seed", *args, "--users", "0", "--random-seed", "1", env=env)
    seconds = time.perf_counter() - start
    report = out.stderr.rsplit("seed:", 1)[-1]
    rows = sum(int(n) for n in re.findall(r"(\d+) [a-z_]+", report))
    return Seeded(rows, seconds)


def restock(url: str) -> None:
    query(url, f"UPDATE items SET stock = {STOCK}")


def analyze(url: str) -> None:
    """Planner statistics and, on PostgreSQL, dead rows cleared, as autovacuum would leave a live
    database: right after a bulk load PostgreSQL has no statistics and may plan POST
    /orders/totals as a scan of every line; and right after the restock of 100k appended items
    (one UPDATE of each) a search walked as many dead row versions as live ones (one word: 751
    req/s instead of about 1,900)."""
    query(url, "ANALYZE" if url.startswith("sqlite") else "VACUUM ANALYZE")


def max_order_id(url: str) -> int:
    return query(url, "SELECT COALESCE(MAX(id), 0) FROM orders")[0][0]


def count(url: str, table: str) -> int:
    return query(url, f"SELECT COUNT(*) FROM {table}")[0][0]


def oversold_items(url: str, after_order: int) -> int:
    """Items whose stock does not equal the restocked amount minus what new orders took."""
    # one pass over the new lines, joined (a subquery per item scanned every line for each of the
    # search rows' 100k items on PostgreSQL: minutes)
    sql = (
        "SELECT COUNT(*) FROM items i LEFT JOIN (SELECT item_id, SUM(quantity) AS taken"
        " FROM order_lines WHERE order_id > $1 GROUP BY item_id) t ON t.item_id = i.id"
        f" WHERE i.stock <> {STOCK} - COALESCE(t.taken, 0)"
    )
    return query(url, sql, after_order)[0][0]
