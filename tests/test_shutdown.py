"""SIGTERM under load: every in-flight request finishes, new connections are refused.

200 requests are made to be in flight at once, for as long as the test wants: 190 writes wait
for a table lock the test holds, 10 long streams wait for a client that does not read yet. The
server's own in-flight gauge says when all 200 are inside handlers; then SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import make_url

from tests.conftest import TEST_SECRET
from tests.dbs import fresh_database
from tests.live import live_server
from tests.test_serve import cli

# A stream of them (~5 MB) outgrows the socket buffers, so its handler blocks until the client
# reads: the server's send buffer grows to tcp_wmem's 4 MB at most, and the client's receive
# buffer is pinned at 64 KB (``small_receive_buffer``; left alone it grows to tcp_rmem's maximum,
# 32 MB on some machines, and 10,000 customers, 1.8 MB, finished before the writes were in).
CUSTOMERS = 30_000
RECEIVE_BUFFER = 64 * 1024
STREAMS = 10
WRITES = 190
# requests queue for pool connections and locks while the test holds them: no early give-up
PATIENT = {"MARKETSVC_DB_POOL_TIMEOUT": "60", "MARKETSVC_DB_TIMEOUT": "60"}


@asynccontextmanager
async def customers_locked(url: str) -> AsyncIterator[None]:
    """Writers to ``customers`` wait until the block ends; readers do not."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        conn = sqlite3.connect(parsed.database, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    conn = await asyncpg.connect(parsed.set(drivername="postgresql").render_as_string(False))
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE customers IN EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def in_flight(base: str) -> float:
    async with aiohttp.ClientSession() as scrape, scrape.get(f"{base}/metrics") as resp:
        families = text_string_to_metric_families(await resp.text())
    gauge = next(f for f in families if f.name == "marketsvc_http_requests_in_flight")
    return sum(s.value for s in gauge.samples)


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll another process; the bound only stops a broken server from hanging the run."""
    async with asyncio.timeout(30):
        while not await condition():  # noqa: ASYNC110 (the state lives in the server)
            await asyncio.sleep(0.05)


async def refuses(base: str) -> bool:
    where = urlsplit(base)
    try:
        _, writer = await asyncio.open_connection(where.hostname, where.port)
    except (ConnectionRefusedError, ConnectionResetError):  # reset: the listener closed with
        return True  # this connection still in its backlog (a full CI run saw it once)
    writer.close()
    return False


def small_receive_buffer(addr_info: tuple) -> socket.socket:
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=kind, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    return sock


async def stream(session: aiohttp.ClientSession, url: str, gate: asyncio.Event) -> tuple:
    async with session.get(url) as resp:
        await gate.wait()
        ids = [c["id"] for c in json.loads(await resp.read())]
    # keyset-paged, so rows committed meanwhile may join the end: whole, ordered, none missing
    return resp.status, ids[:CUSTOMERS] == list(range(1, CUSTOMERS + 1)), sorted(set(ids)) == ids


async def write(session: aiohttp.ClientSession, url: str, n: int) -> tuple:
    address = {"street": "1 Quay", "flat_number": None, "city": "Hull", "post_code": "HU1 1AA",
               "country": "GB"}  # fmt: skip
    body = {"name": f"Late {n}", "email": f"late{n}@example.com", "address": address}
    async with session.post(url, json=body) as resp:
        return resp.status, (await resp.json())["email"]


@pytest.fixture
def own_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own: it runs and stops real servers on it, sharing nothing."""
    with fresh_database(backend, tmp_path) as url:
        yield url


async def test_sigterm_lets_200_in_flight_requests_finish(own_database, tmp_path) -> None:
    database_url = own_database
    cli("seed", "--customers", str(CUSTOMERS), "--items", "0", "--orders", "0",
            "--users", "0", database_url=database_url)  # fmt: skip
    token = cli("token", "--admin", database_url=database_url).stdout.strip()
    gate = asyncio.Event()
    with live_server(database_url, tmp_path, 2, PATIENT, TEST_SECRET) as server:
        url = f"{server.url}/api/v1/customers"
        async with (
            aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {token}"},
                connector=aiohttp.TCPConnector(
                    limit=0, force_close=True, socket_factory=small_receive_buffer
                ),
            ) as session,
        ):
            async with customers_locked(database_url):
                tasks = [asyncio.create_task(stream(session, url, gate)) for _ in range(STREAMS)]
                tasks += [asyncio.create_task(write(session, url, n)) for n in range(WRITES)]
                await until(lambda: _at_least(in_flight(server.url), 200 + 1))  # + the scrape
                server.process.send_signal(signal.SIGTERM)
                await until(lambda: refuses(server.url))
                gate.set()
            results = await asyncio.gather(*tasks)
        assert server.process.wait(timeout=30) == 0
    assert results[:STREAMS] == [(200, True, True)] * STREAMS
    assert sorted(results[STREAMS:]) == sorted((201, f"late{n}@example.com") for n in range(WRITES))
    assert "Traceback" not in server.log()
    assert server.log().count("database connections closed") == 2  # one per worker


async def _at_least(value: Awaitable[float], floor: float) -> bool:
    return await value >= floor


async def test_an_upload_cut_off_during_shutdown_is_the_clients_loss(
    database_url, tmp_path
) -> None:
    """aiohttp stops reading a connection once shutdown begins, so a body still on its way never
    arrives. The upload that dies is logged as the client's loss (499), never as a database
    outage (503) or an error."""
    token = cli("token", "--admin", database_url=database_url).stdout.strip()
    with live_server(database_url, tmp_path, 1, None, TEST_SECRET) as server:
        _, writer = await asyncio.open_connection(*urlsplit(server.url).netloc.split(":"))
        writer.write(
            b"POST /api/v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\n".encode()
            + b'{"name": '
        )
        await until(lambda: _at_least(in_flight(server.url), 1 + 1))
        server.process.send_signal(signal.SIGTERM)
        await until(lambda: refuses(server.url))
        writer.close()
        assert await asyncio.to_thread(server.process.wait, 30) == 0
    lines = [json.loads(line) for line in server.log().splitlines()]
    [upload] = [line for line in lines if line.get("route") == "/api/v1/items"]
    assert upload["status"] == 499
    assert not [line for line in lines if line["level"] in ("WARNING", "ERROR")]
