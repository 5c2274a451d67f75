"""The database goes away and comes back: 503 with Retry-After meanwhile, never 500, and the
service recovers without a restart.

Every window is produced for real, under load: a PostgreSQL cluster the test owns stopped with
``-m fast`` and ``-m immediate`` and restarted while a hundred clients have requests in flight;
its backends terminated mid-statement; ``max_connections`` exhausted; a statement cancelled by
``statement_timeout``; a server that accepts and then resets; SQLite's write lock held past the
writer queue's timeout. Each window's responses per status (and the 503s' causes) are printed.
SQLite's file is also replaced by a directory or by a file that is not a database, then put back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sqlite3
import struct
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import closing
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from marketsvc.app import create_app
from marketsvc.services.background import (
    BACKGROUND_DATABASE,
    BACKGROUND_POOL_SIZE,
    log_retry,
)
from marketsvc.settings import Settings
from marketsvc.store.migrate import upgrade
from marketsvc.store.outages import Outage, classify
from marketsvc.web.auth import TokenCodec
from marketsvc.web.keys import DATABASE as DATABASE_KEY
from tests.conftest import TEST_SECRET
from tests.dbs import fresh_database
from tests.ordering import order_body
from tests.pg_cluster import Cluster, temporary_cluster

BOUND = 5.0  # no request may hang this long: connect timeout (1 s) plus slack for a busy machine
CLIENTS = 200  # concurrent clients during each window: hundreds of requests in flight
ORDERS = "/api/v1/orders"
REQUEST_BOUND = 20.0  # under load a request waits for the pool too; beyond this it hangs


def admin() -> dict[str, str]:
    """Minted per use: a token made at import could expire before the PostgreSQL half runs."""
    token = TokenCodec(Settings(jwt_secret=TEST_SECRET)).issue("admin", "admin")
    return {"Authorization": f"Bearer {token}"}


def outage_settings(url: str, **overrides: object) -> Settings:
    options: dict[str, object] = {
        "database_url": url,
        "jwt_secret": TEST_SECRET,
        "connect_timeout": 1.0,
        "statement_timeout": 3.0,
        "pool_size": 4,
        "max_overflow": 6,
        "pool_timeout": 5.0,
    }
    return Settings(**(options | overrides))  # type: ignore[arg-type]


async def get(client: TestClient, path: str) -> tuple[int, str | None, str]:
    async with asyncio.timeout(BOUND):
        resp = await client.get(path)
        await resp.read()
    return resp.status, resp.headers.get("Retry-After"), resp.content_type


async def assert_unavailable(client: TestClient) -> None:
    for path in ("/api/v1/items", "/api/v1/items/1", "/readyz"):
        assert await get(client, path) == (503, "5", "application/problem+json"), path


async def assert_available(client: TestClient) -> None:
    assert await get(client, "/api/v1/items") == (200, None, "application/json")
    assert (await get(client, "/readyz"))[0] == 200


async def assert_recovers(client: TestClient, within: float = 30.0) -> None:
    """Available again soon after a fault, without a restart. Not at once: under load the
    requests queued on the pool while the server refused connections (each waits up to
    ``pool_timeout``) still have to drain; CI saw one 503 a second after max_connections freed,
    and on a slow machine a run still saw 503s 10 s after it, so the window is generous and
    the failure says what the service last answered."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        async with asyncio.timeout(BOUND):
            resp = await client.get("/api/v1/items")
            text = await resp.text()
        if resp.status == 200:
            break
        assert loop.time() < deadline, f"not recovered in {within} s: {resp.status} {text[:300]}"
        await asyncio.sleep(0.2)
    await assert_available(client)


_printed: list[str] = []


@pytest.fixture(autouse=True)
def _report_windows(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """The windows' counts go to the terminal even when output is captured."""
    yield
    with capsys.disabled():
        for line in _printed:
            print("\n" + line)
    _printed.clear()


def report(line: str) -> None:
    _printed.append(line)


class Load:
    """``CLIENTS`` clients, each placing an order or reading an item again and again."""

    def __init__(self, client: TestClient, body: dict) -> None:
        self.client, self.body = client, body
        self.statuses: Counter[int | str] = Counter()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Load:
        self._tasks = [asyncio.create_task(self._one(i)) for i in range(CLIENTS)]
        await asyncio.sleep(0.5)  # requests are in flight and the pool holds connections
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _one(self, n: int) -> None:
        headers, item_id = admin(), self.body["lines"][0]["item_id"]
        while not self._stop.is_set():
            try:
                async with asyncio.timeout(REQUEST_BOUND):
                    if n % 2:
                        resp = await self.client.post(ORDERS, json=self.body, headers=headers)
                    else:
                        resp = await self.client.get(f"/api/v1/items/{item_id}")
                    await resp.read()
                self.statuses[resp.status] += 1
                if resp.status == 503:
                    assert resp.headers["Retry-After"] == "5"
                    await asyncio.sleep(0.05)  # a polite client; still hundreds per window
            except TimeoutError:
                self.statuses["hung"] += 1


async def shop(client: TestClient) -> dict:
    """A customer and an item with stock enough for every order the windows place."""
    customer = await client.post("/api/v1/customers", headers=admin(), json={
        "name": "Buyer", "email": f"buyer-{uuid.uuid4().hex[:8]}@example.com",
        "address": {"street": "1 Main St", "city": "Leeds", "post_code": "LS1", "country": "GB"},
    })  # fmt: skip
    item = await client.post("/api/v1/items", headers=admin(), json={
        "name": "Mug", "price": "3.00", "stock": 10_000_000,
    })  # fmt: skip
    assert (customer.status, item.status) == (201, 201)
    return order_body((await customer.json())["id"], ((await item.json())["id"], 1))


Fault = Callable[[], Awaitable[None]]


async def window(
    name: str, client: TestClient, body: dict, fault: Fault, caplog: pytest.LogCaptureFixture
) -> Counter[int | str]:
    """Run ``fault`` under load; print and check what the clients got; check recovery."""
    caplog.clear()
    async with Load(client, body) as load:
        await fault()
        await asyncio.sleep(1.0)  # the service meets the database as it is again
    causes = Counter(
        r.getMessage().split(":")[0].removeprefix("database ")
        + ":" + r.getMessage().split(":")[1]
        for r in caplog.records if r.name == "marketsvc.errors" and r.levelno == logging.WARNING
    )  # fmt: skip
    total = sum(load.statuses.values())
    by_status = dict(sorted(load.statuses.items(), key=str))
    report(f"window {name!r}: {total} responses, by status {by_status}; 503 causes {dict(causes)}")
    assert load.statuses[500] == 0
    assert load.statuses["hung"] == 0
    assert load.statuses[503] > 0, "the fault never reached a request"
    assert total >= 200
    assert not [
        r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("marketsvc")
    ]
    await assert_recovers(client)
    return load.statuses


@pytest.fixture(scope="module")
def module_cluster() -> Iterator[Cluster]:
    with temporary_cluster() as cluster:
        upgrade(cluster.url)
        yield cluster


@pytest.fixture
def cluster(module_cluster: Cluster) -> Iterator[Cluster]:
    yield module_cluster
    module_cluster.stop("immediate")  # whatever a test left, the next one starts it afresh
    module_cluster.start()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgresql_shutdown_under_load_is_503_never_500(
    aiohttp_client, cluster: Cluster, caplog, mode: str
) -> None:
    """Transactions in flight meet AdminShutdownError or a connection closed mid-statement;
    then connections are refused; after ``-m immediate`` the server also recovers first."""
    client = await aiohttp_client(create_app(outage_settings(cluster.url)))
    body = await shop(client)

    async def fault() -> None:
        await asyncio.to_thread(cluster.stop, mode)
        await asyncio.sleep(1.0)  # connection refused meanwhile
        await asyncio.to_thread(cluster.start)

    await window(f"stop -m {mode}, start", client, body, fault, caplog)


async def test_postgresql_restart_under_load_is_503_never_500(
    aiohttp_client, cluster: Cluster, caplog
) -> None:
    client = await aiohttp_client(create_app(outage_settings(cluster.url)))
    body = await shop(client)

    async def fault() -> None:
        await asyncio.to_thread(cluster.stop)  # what pg_ctl restart does, with the log kept
        await asyncio.to_thread(cluster.start)

    await window("pg_ctl restart", client, body, fault, caplog)


async def test_backends_terminated_mid_statement_are_503_never_500(
    aiohttp_client, cluster: Cluster, caplog
) -> None:
    """pg_terminate_backend on the service's connections: AdminShutdownError (57P01) for the
    statements in flight, a closed connection for the rest."""
    client = await aiohttp_client(create_app(outage_settings(cluster.url)))
    body = await shop(client)
    admin_conn = await asyncpg.connect(cluster.dsn)
    terminate = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = 'marketsvc' AND pid <> pg_backend_pid()"
    )

    async def fault() -> None:
        for _ in range(5):
            await admin_conn.fetchval(terminate)
            await asyncio.sleep(0.3)

    try:
        await window("pg_terminate_backend x5", client, body, fault, caplog)
    finally:
        await admin_conn.close()


async def test_too_many_connections_is_503_never_500(
    aiohttp_client, cluster: Cluster, caplog
) -> None:
    """Every connection slot taken by someone else: TooManyConnectionsError on connect."""
    await asyncio.to_thread(cluster.stop)
    await asyncio.to_thread(cluster.start, "max_connections=4", "superuser_reserved_connections=0")
    client = await aiohttp_client(create_app(outage_settings(cluster.url)))
    body = await shop(client)
    await client.app[DATABASE_KEY].engine.dispose()  # requests hold no connection now
    # background work at its busiest: every connection its pool allows opened at once, then
    # kept idle. With the feed listener, they must leave the requests a slot (a pool of 4 took
    # them all: 503 "too many clients" long after the fault, one CI run in a few)
    async with contextlib.AsyncExitStack() as busiest:
        for _ in range(BACKGROUND_POOL_SIZE):
            await busiest.enter_async_context(client.app[BACKGROUND_DATABASE].scan())
    held: list[asyncpg.Connection] = []

    async def fault() -> None:
        while True:
            try:
                held.append(await asyncpg.connect(cluster.dsn))
            except asyncpg.TooManyConnectionsError:
                break
        await asyncio.sleep(2.0)
        for conn in held:
            await conn.close()

    await window("max_connections exhausted", client, body, fault, caplog)


async def test_statement_timeout_is_503_never_500(aiohttp_client, cluster: Cluster, caplog) -> None:
    """A placement waits on a row lock until the server cancels it (QueryCanceledError)."""
    client = await aiohttp_client(create_app(outage_settings(cluster.url)))
    body = await shop(client)
    admin = await asyncpg.connect(cluster.dsn)
    await admin.execute("ALTER ROLE postgres SET statement_timeout = '300ms'")
    await client.app[DATABASE_KEY].engine.dispose()  # new connections take the setting
    # the holder takes the locks however long a placement holds them first (a loaded machine)
    holder = await asyncpg.connect(cluster.dsn, server_settings={"statement_timeout": "0"})

    async def fault() -> None:
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM items FOR UPDATE")
            await asyncio.sleep(2.0)

    try:
        await window("statement_timeout on a locked row", client, body, fault, caplog)
    finally:
        await admin.execute("ALTER ROLE postgres RESET statement_timeout")
        await admin.close()
        await holder.close()


async def test_a_keyed_request_cut_short_by_an_outage_keeps_no_key(
    aiohttp_client, cluster: Cluster
) -> None:
    """The key, the order and the answer roll back together: the retry places the order afresh,
    once, and only a retry after that is a replay."""
    client = await aiohttp_client(create_app(outage_settings(cluster.url)))
    body = await shop(client)
    admin_conn = await asyncpg.connect(cluster.dsn)
    await admin_conn.execute("ALTER ROLE postgres SET statement_timeout = '300ms'")
    await client.app[DATABASE_KEY].engine.dispose()
    headers = admin() | {"Idempotency-Key": "cut-short"}
    try:
        async with admin_conn.transaction():
            await admin_conn.execute("SELECT 1 FROM items FOR UPDATE")
            cut = await client.post(ORDERS, json=body, headers=headers)
            assert cut.status == 503
    finally:
        await admin_conn.execute("ALTER ROLE postgres RESET statement_timeout")
    first = await client.post(ORDERS, json=body, headers=headers)
    again = await client.post(ORDERS, json=body, headers=headers)
    assert (first.status, again.status) == (201, 201)
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    mine = "SELECT count(*) FROM orders WHERE customer_id = $1"
    assert await admin_conn.fetchval(mine, body["customer_id"]) == 1
    await admin_conn.close()


async def test_a_server_that_resets_connections_is_503(aiohttp_client, caplog) -> None:
    """It accepts, then closes with RST (SO_LINGER 0): ConnectionResetError on connect."""

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    client = await aiohttp_client(create_app(outage_settings(url)))
    async with server:
        caplog.clear()
        statuses = Counter()
        for _ in range(10):
            for path in ("/api/v1/items", "/api/v1/items/1", "/readyz"):
                statuses[(await get(client, path))[0]] += 1
        report(f"window 'accept then reset': {dict(statuses)}")
        assert statuses == {503: 30}
    assert not [
        r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("marketsvc")
    ]


async def test_postgresql_stopped_then_started(aiohttp_client, cluster: Cluster) -> None:
    client = await aiohttp_client(create_app(outage_settings(cluster.url)))
    await assert_available(client)  # the pool now holds connections that are about to die
    await asyncio.to_thread(cluster.stop)
    await assert_unavailable(client)
    await assert_unavailable(client)  # again: nothing broken is kept in the pool
    await asyncio.to_thread(cluster.start)
    await assert_available(client)


async def test_postgresql_restarted_between_requests_fails_none(aiohttp_client, cluster) -> None:
    """The pool's connections died with the old server; none of them may reach a request.

    A dead pooled connection fails at once (asyncpg: the connection is closed); what may be slow
    is a new one to the restarted server, on a busy machine: a full CI run saw three of four
    time out at the 1 s connect timeout. So this test gives the new connections 10 s."""
    settings = outage_settings(cluster.url, connect_timeout=10.0)
    client = await aiohttp_client(create_app(settings))
    for _ in range(3):  # the pool now holds connections (pool_size=4)
        await asyncio.gather(*(assert_available(client) for _ in range(4)))
    await asyncio.to_thread(cluster.stop)
    await asyncio.to_thread(cluster.start)
    await asyncio.gather(*(assert_available(client) for _ in range(4)))


async def test_postgresql_that_never_answers_is_503_within_the_connect_timeout(
    aiohttp_client,
) -> None:
    with closing(socket.create_server(("127.0.0.1", 0))) as silent:  # accepts, never speaks
        port = silent.getsockname()[1]
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
        client = await aiohttp_client(create_app(outage_settings(url)))
        await assert_unavailable(client)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("sqlite", tmp_path) as url:
        yield url


async def test_sqlite_locked_past_the_writer_timeout_is_503(
    aiohttp_client, sqlite_url: str, caplog
) -> None:
    """Another process holds the write lock; queued writers give up after pool_timeout."""
    client = await aiohttp_client(create_app(outage_settings(sqlite_url, pool_timeout=1.0)))
    body = await shop(client)
    path = sqlite_url.removeprefix("sqlite+aiosqlite:///")

    async def fault() -> None:
        # the app's writers hold the lock in turns under load: wait for one, then keep it
        with closing(sqlite3.connect(path, isolation_level=None, timeout=30)) as other:
            other.execute("BEGIN IMMEDIATE")
            await asyncio.sleep(3.0)
            other.execute("ROLLBACK")

    await window("SQLite write lock held 3 s", client, body, fault, caplog)


async def test_sqlite_errors_are_classified_by_result_code(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Real sqlite3 errors through SQLAlchemy: busy is an outage, a bad statement is a bug; and
    a background step that meets them (``background.log_retry``) logs the outage as a warning,
    the bug as an error with its stack."""
    path = sqlite_url.removeprefix("sqlite+aiosqlite:///")
    engine = create_async_engine(sqlite_url, connect_args={"timeout": 0})
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(DBAPIError) as locked:
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM items"))
        other.execute("ROLLBACK")
    async with engine.connect() as conn:
        with pytest.raises(DBAPIError) as missing:
            await conn.execute(text("SELECT * FROM no_such_table"))
        with pytest.raises(DBAPIError) as syntax:
            await conn.execute(text("SELEC 1"))
    await engine.dispose()
    assert "database is locked" in str(locked.value)
    assert classify(locked.value) is Outage.TIMEOUT
    assert classify(missing.value) is Outage.NOT_MIGRATED
    assert classify(syntax.value) is None
    log = logging.getLogger("tests.background_step")
    with caplog.at_level(logging.WARNING, logger=log.name):
        log_retry(log, "a step", locked.value)
        log_retry(log, "a step", syntax.value)
    outage, bug = [r for r in caplog.records if r.name == log.name]
    assert (outage.levelno, outage.exc_info) == (logging.WARNING, None)
    assert "a step failed (database timeout), will retry" in outage.getMessage()
    assert bug.levelno == logging.ERROR
    assert bug.exc_info is not None
    assert bug.exc_info[1] is syntax.value


@pytest.mark.parametrize("replacement", ["directory", "not a database"])
async def test_sqlite_file_gone_then_back(aiohttp_client, sqlite_url, replacement) -> None:
    """An open SQLite connection keeps its file even when the path changes, so the outage is
    what new connections meet; the service starts during it and recovers once the file is back."""
    path = Path(sqlite_url.removeprefix("sqlite+aiosqlite:///"))
    away = replace_file(path, replacement)
    client = await aiohttp_client(create_app(outage_settings(sqlite_url)))
    await assert_unavailable(client)
    put_back(away, path)
    await assert_available(client)


def replace_file(path: Path, replacement: str) -> Path:
    away = path.rename(path.with_suffix(".away"))
    if replacement == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"this is not a database\n" * 512)
    return away


def put_back(away: Path, path: Path) -> None:
    path.rmdir() if path.is_dir() else path.unlink()
    away.rename(path)


@pytest.fixture
def unmigrated_url(backend: str, tmp_path: Path) -> Iterator[str]:
    with fresh_database(backend, tmp_path, migrate=False) as url:
        yield url


async def test_an_unmigrated_database_is_503_not_500(aiohttp_client, unmigrated_url) -> None:
    client = await aiohttp_client(create_app(Settings(database_url=unmigrated_url)))
    for path in ("/api/v1/items", "/api/v1/items/1", "/readyz"):
        resp = await client.get(path)
        assert resp.status == 503, (path, await resp.text())
        assert resp.headers["Retry-After"]
