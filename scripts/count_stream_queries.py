"""Count the SQL statements behind streaming GET /api/v1/pets and /api/v1/users over real HTTP.

    python -m marketsvc migrate && python -m marketsvc seed --users 25000 --pets-per-user 4 \
        --customers 0 --orders 0 --items 0
    python scripts/count_stream_queries.py --chunk-rows 500

Reads MARKETSVC_DATABASE_URL like the service. Every statement the app's engine sends is
counted with SQLAlchemy's ``before_cursor_execute`` event while the whole body is read.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import time

import orjson
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from sqlalchemy import event

from marketsvc.app import create_app
from marketsvc.settings import Settings
from marketsvc.web.auth import TokenCodec
from marketsvc.web.keys import DATABASE


async def measure(path: str, chunk_rows: int) -> None:
    settings = dataclasses.replace(Settings.from_env(), stream_chunk_rows=chunk_rows)
    token = TokenCodec(settings).issue("admin", "admin")
    app = create_app(settings)
    async with TestServer(app) as server, ClientSession() as http:
        statements: list[str] = []
        engine = app[DATABASE].engine.sync_engine
        event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        started = time.perf_counter()
        async with http.get(
            server.make_url(path),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/x-ndjson"},
        ) as resp:
            rows = [orjson.loads(line) async for line in resp.content if line.strip()]
        elapsed = time.perf_counter() - started
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    chunks = math.ceil(len(rows) / chunk_rows)
    related = sum(1 for r in rows if r.get("user") or r.get("pets"))
    print(
        f"{settings.database_url.split(':')[0]:<20} GET {path:<14} rows={len(rows):>6} "
        f"with-related={related:>6} chunk_rows={chunk_rows:>4} chunks={chunks:>4} "
        f"statements={len(statements):>3} selects={len(selects):>3} "
        f"selects/chunk={len(selects) / chunks:.3f} {elapsed:.2f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunk-rows", type=int, nargs="+", default=[500])
    args = parser.parse_args()
    for chunk_rows in args.chunk_rows:
        for path in ("/api/v1/pets", "/api/v1/users"):
            asyncio.run(measure(path, chunk_rows))


if __name__ == "__main__":
    main()
