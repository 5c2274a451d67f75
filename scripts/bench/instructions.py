"""Instructions per request, in-process, counted by callgrind: a steady figure on a busy machine.

    .venv/bin/python scripts/bench/instructions.py [--requests 1000] [--path /api/v1/customers/1]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres] [--server baseline]
        [--place [--webhook] [--concurrency 16]]

Runs this file twice under ``valgrind --tool=callgrind``: once serving no request, once serving
``--requests`` keep-alive GETs through the whole app (gunicorn's log configuration, the
multiprocess metrics, a seeded SQLite file or, with ``--postgres-url``, a seeded PostgreSQL
database of its own on that server, created and dropped, an admin token); prints the difference
divided by the number of requests. ``--place`` sends ``POST /api/v1/orders`` (three lines, the
items restocked) instead of GETs, ``--concurrency`` at once on as many connections (so the
webhook relay fans out several events a batch, though fewer than under load: callgrind slows
the app, not the clock); with ``--webhook`` both runs first subscribe a
receiver (``harness/receiver.py``, in a process of its own, not counted) to every event, and the
loaded run waits until every event is received and no delivery is pending: the instructions a
placement costs with its deliveries made and recorded (issue 16's budget, counted: compare with
``--place`` alone). ``--server baseline`` counts the raw baseline
(``scripts/bench/baseline``, its ``limit`` strategy) on the same data instead: the gap, counted.
Client-side instructions are counted too, the same for every revision: compare figures from this
script with each other only. Repeated runs of one revision differed by up to 2 % at 200
requests: the default, 1000, spreads start-up noise thinner.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def serve_and_load(
    requests: int, path: str, server: str, place: bool, concurrency: int, receiver: str | None
) -> None:
    """Inside valgrind: the app on a local port, ``requests`` requests on ``concurrency``
    keep-alive connections; with ``receiver``, a subscription of it first and the deliveries
    drained last."""
    import logging.config

    from aiohttp import web

    from marketsvc.app import create_app
    from marketsvc.ops.logs import gunicorn_log_config
    from marketsvc.settings import Settings
    from marketsvc.web.auth import TokenCodec

    logging.config.dictConfig(gunicorn_log_config("INFO"))
    if server == "baseline":
        sys.path.insert(0, str(ROOT / "scripts" / "bench"))
        from baseline.app import gunicorn_app as baseline_app
    settings = Settings.from_env()
    token = TokenCodec(settings).issue("admin", "admin")
    bodies = [_order(n).encode() for n in range(requests)] if place else []

    def request(n: int) -> bytes:
        if not place:
            return (
                f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
            )
        return _post("/api/v1/orders", token, bodies[n])

    async def exchange(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes
    ) -> bytes:
        writer.write(head)
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) != b"\r\n":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = await reader.readexactly(length)
        assert b" 200 " in status or b" 201 " in status, (status, body)
        return body

    async def main() -> None:
        app = create_app(settings) if server == "marketsvc" else await baseline_app()
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        if receiver is not None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            subscription = json.dumps({"url": receiver}).encode()
            await exchange(
                reader, writer, _post("/api/v1/webhooks/subscriptions", token, subscription)
            )
            writer.close()
            start = await _events(app)
        queue = iter(range(requests))

        async def connection() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for n in queue:
                await exchange(reader, writer, request(n))
            writer.close()

        await asyncio.gather(*(connection() for _ in range(concurrency)))
        if receiver is not None and requests:
            made = await _events(app) - start
            # the receiver counts in a process of its own: polled
            while await _received(receiver) < made or await _pending(app):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await runner.cleanup()

    import uvloop

    uvloop.run(main())


def _order(n: int) -> str:
    """Three lines of three different seeded items, a seeded customer."""
    first = n % 5 + 1
    lines = [{"item_id": (first + k - 1) % 5 + 1, "quantity": 1} for k in range(3)]
    return json.dumps({"customer_id": n % 10 + 1, "lines": lines})


def _post(path: str, token: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _events(app: Any) -> int:
    return await _scalar(app, "SELECT COUNT(*) FROM events")


async def _pending(app: Any) -> int:
    return await _scalar(app, "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'")


async def _scalar(app: Any, sql: str) -> int:
    from sqlalchemy import text

    from marketsvc.web.keys import DATABASE

    async with app[DATABASE].scan() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def _received(receiver: str) -> int:
    """POSTs the receiver has had (``harness/receiver.py``'s ``GET /count``)."""
    port = int(receiver.split(":")[2].split("/")[0])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /count HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.readuntil(b"\r\n\r\n")
    counts = json.loads(await reader.read(200))
    writer.close()
    return int(counts["requests"])


def count(
    requests: int, args: argparse.Namespace, env: dict[str, str], receiver: str | None
) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--inside",
        "--requests",
        str(requests),
        "--path",
        args.path,
        "--server",
        args.server,
        "--concurrency",
        str(args.concurrency),
        *(["--place"] if args.place else []),
        *(["--receiver", receiver] if receiver else []),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", done.stderr)[1])


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A fresh database on ``server_url``'s server (an asyncpg URL to it), dropped afterwards."""
    from sqlalchemy import make_url

    name = f"marketsvc_instructions_{os.getpid()}"
    url = make_url(server_url).set(drivername="postgresql+asyncpg")
    run_sql(url.render_as_string(hide_password=False), f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        statement = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        run_sql(url.render_as_string(hide_password=False), statement)


def run_sql(url: str, statement: str) -> None:
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(statement))
        await engine.dispose()

    asyncio.run(run())


def prepare(directory: Path, database_url: str | None = None) -> dict[str, str]:
    env = os.environ | {
        "MARKETSVC_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{directory / 'db.sqlite'}",
        "PROMETHEUS_MULTIPROC_DIR": str(directory / "metrics"),
        "MARKETSVC_LOG_FORMAT": "json",
        "MARKETSVC_JWT_SECRET": "instructions-only-secret-0123456789abcdef",  # both servers'
        "PYTHONPATH": str(ROOT),
    }
    (directory / "metrics").mkdir()
    py = [sys.executable, "-m", "marketsvc"]
    subprocess.run([*py, "migrate"], env=env, check=True, cwd=ROOT, capture_output=True)
    seed = ["seed", "--customers", "10", "--items", "5", "--orders", "5", "--users", "1"]
    subprocess.run([*py, *seed], env=env, check=True, cwd=ROOT, capture_output=True)
    run_sql(env["MARKETSVC_DATABASE_URL"], "UPDATE items SET stock = 1000000000")  # --place
    return env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--path", default="/api/v1/customers/1")
    parser.add_argument("--postgres-url", help="measure on PostgreSQL (a server to create on)")
    parser.add_argument("--server", choices=("marketsvc", "baseline"), default="marketsvc")
    parser.add_argument("--place", action="store_true", help="POST /api/v1/orders instead")
    parser.add_argument("--webhook", action="store_true", help="with a subscription (--place)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--receiver", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        serve_and_load(
            args.requests, args.path, args.server, args.place, args.concurrency, args.receiver
        )
        return
    if args.webhook and not (args.place and args.server == "marketsvc"):
        parser.error("--webhook needs --place, on marketsvc")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        url = (
            stack.enter_context(postgres_database(args.postgres_url)) if args.postgres_url else None
        )
        env = prepare(Path(tmp), url)
        receiver = stack.enter_context(receiving(Path(tmp))) if args.webhook else None
        if receiver is not None:
            env |= {"MARKETSVC_ENV": "development", "MARKETSVC_WEBHOOK_ALLOW_PRIVATE": "1"}
        idle = count(0, args, env, receiver)
        loaded = count(args.requests, args, env, receiver)
    per_request = (loaded - idle) / args.requests
    what = "POST /api/v1/orders" if args.place else args.path
    if args.webhook:
        what += " with a webhook subscription"
    print(
        f"{args.server} {what}: {per_request:,.0f} instructions per request "
        f"({args.requests} requests, {args.concurrency} at once)"
    )


@contextmanager
def receiving(directory: Path) -> Iterator[str]:
    """``harness/receiver.py`` on a free port, in a process of its own: its URL."""
    sys.path.insert(0, str(ROOT / "scripts" / "bench"))
    from harness.receiver import Receiver
    from harness.servers import free_port

    receiver = Receiver(free_port(), directory / "receiver.log")
    try:
        yield receiver.url
    finally:
        receiver.stop()


if __name__ == "__main__":
    main()
