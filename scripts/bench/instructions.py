"""Instructions per request, in-process, counted by callgrind: a steady figure on a busy machine.

    .venv/bin/python scripts/bench/instructions.py [--requests 1000] [--path /api/v1/customers/1]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres] [--server baseline]

Runs this file twice under ``valgrind --tool=callgrind``: once serving no request, once serving
``--requests`` keep-alive GETs through the whole app (gunicorn's log configuration, the
multiprocess metrics, a seeded SQLite file or, with ``--postgres-url``, a seeded PostgreSQL
database of its own on that server, created and dropped, an admin token); prints the difference
divided by the number of requests. ``--server baseline`` counts the raw baseline
(``scripts/bench/baseline``, its ``limit`` strategy) on the same data instead: the gap, counted.
Client-side instructions are counted too, the same for every revision: compare figures from this
script with each other only. Repeated runs of one revision differed by up to 2 % at 200
requests: the default, 1000, spreads start-up noise thinner.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def serve_and_load(requests: int, path: str, server: str) -> None:
    """Inside valgrind: the app on a local port, ``requests`` GETs on one connection."""
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
    head = f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()

    async def main() -> None:
        app = create_app(settings) if server == "marketsvc" else await baseline_app()
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(requests):
            writer.write(head)
            status = await reader.readline()
            assert b" 200 " in status, status
            length = 0
            while (line := await reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
        writer.close()
        await runner.cleanup()

    import uvloop

    uvloop.run(main())


def count(requests: int, path: str, server: str, env: dict[str, str]) -> int:
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
        path,
        "--server",
        server,
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
    return env


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--path", default="/api/v1/customers/1")
    parser.add_argument("--postgres-url", help="measure on PostgreSQL (a server to create on)")
    parser.add_argument("--server", choices=("marketsvc", "baseline"), default="marketsvc")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        serve_and_load(args.requests, args.path, args.server)
        return
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        url = (
            stack.enter_context(postgres_database(args.postgres_url)) if args.postgres_url else None
        )
        env = prepare(Path(tmp), url)
        idle = count(0, args.path, args.server, env)
        loaded = count(args.requests, args.path, args.server, env)
    per_request = (loaded - idle) / args.requests
    print(
        f"{args.server} {args.path}: {per_request:,.0f} instructions per request "
        f"({args.requests} requests)"
    )


if __name__ == "__main__":
    main()
