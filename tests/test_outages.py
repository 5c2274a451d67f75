"""The database goes away and comes back: 503 with Retry-After meanwhile, recovery without restart.

PostgreSQL runs as a throwaway cluster (initdb + pg_ctl on a temporary directory and a free port)
that the test stops and starts. SQLite's file is replaced by a directory or by a file that is not
a database (root ignores permissions, so chmod would prove nothing), then put back.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from marketsvc.app import create_app
from marketsvc.settings import Settings
from marketsvc.store.migrate import upgrade
from tests.dbs import fresh_database
from tests.live import free_port

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
BOUND = 5.0  # no request may hang this long: connect timeout (1 s) plus slack for a busy machine


class Cluster:
    def __init__(self, bin_dir: str, data: Path, port: int) -> None:
        self.bin_dir, self.data, self.port = bin_dir, data, port
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"

    def ctl(self, *args: str) -> None:
        subprocess.run(_as_postgres(f"{self.bin_dir}/pg_ctl", "-D", str(self.data), *args),
                       check=True, capture_output=True, timeout=60)  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -F"
        self.ctl("-o", options, "-l", str(self.data / "server.log"), "-w", "start")

    def stop(self) -> None:
        self.ctl("-m", "fast", "-w", "stop")


def _as_postgres(*argv: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)


@contextmanager
def temporary_cluster() -> Iterator[Cluster]:
    if not PG_BIN:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    data = Path(tempfile.mkdtemp(prefix="marketsvc-pg-"))
    if os.geteuid() == 0:  # initdb refuses root; the cluster belongs to postgres
        shutil.chown(data, "postgres", "postgres")
    cluster = Cluster(PG_BIN[-1], data, free_port())
    try:
        subprocess.run(_as_postgres(f"{cluster.bin_dir}/initdb", "-D", str(data), "-A", "trust",
                                    "-U", "postgres", "--no-sync"),
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        cluster.start()
        yield cluster
    finally:
        subprocess.run(_as_postgres(f"{cluster.bin_dir}/pg_ctl", "-D", str(data), "-m",
                                    "immediate", "stop"), capture_output=True)  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)


def outage_settings(url: str) -> Settings:
    return Settings(
        database_url=url, connect_timeout=1.0, statement_timeout=3.0, pool_size=2, max_overflow=5
    )


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


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with temporary_cluster() as cluster:
        upgrade(cluster.url)
        yield cluster


async def test_postgresql_stopped_then_started(aiohttp_client, cluster: Cluster) -> None:
    client = await aiohttp_client(create_app(outage_settings(cluster.url)))
    await assert_available(client)  # the pool now holds connections that are about to die
    await asyncio.to_thread(cluster.stop)
    await assert_unavailable(client)
    await assert_unavailable(client)  # again: nothing broken is kept in the pool
    await asyncio.to_thread(cluster.start)
    await assert_available(client)


async def test_postgresql_restarted_between_requests_fails_none(aiohttp_client, cluster) -> None:
    """The pool's connections died with the old server; none of them may reach a request."""
    client = await aiohttp_client(create_app(outage_settings(cluster.url)))
    for _ in range(3):  # the pool now holds connections (pool_size=2)
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
