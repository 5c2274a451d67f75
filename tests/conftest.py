"""Fixtures: every database test runs on SQLite and, when configured, on PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from marketsvc.app import create_app
from marketsvc.settings import Settings
from marketsvc.store.seed import SeedPlan, seed
from marketsvc.web.auth import TokenCodec
from tests.contract import SEEN, STREAMED, Contract
from tests.dbs import BACKENDS, POSTGRES_URL, empty_tables, fresh_database

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


def _backend_params() -> list[Any]:
    skip_pg = pytest.mark.skipif(not POSTGRES_URL, reason="MARKETSVC_TEST_POSTGRES_URL not set")
    return [pytest.param(b, marks=skip_pg if b == "postgresql" else ()) for b in BACKENDS]


@pytest.fixture(scope="session", params=_backend_params())
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def migrated_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database per backend per test run, built by ``alembic upgrade head``."""
    with fresh_database(backend, tmp_path_factory.mktemp(backend)) as url:
        yield url


@pytest.fixture
async def database_url(migrated_url: str) -> AsyncIterator[str]:
    """The migrated database, emptied after the test (tests commit for real)."""
    yield migrated_url
    await empty_tables(migrated_url)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, jwt_secret=TEST_SECRET, pool_size=5, max_overflow=5)


@pytest.fixture
def tokens(settings: Settings) -> TokenCodec:
    return TokenCodec(settings)


@pytest.fixture
def admin(tokens: TokenCodec) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.issue('admin', 'admin')}"}


@pytest.fixture
def as_customer(tokens: TokenCodec) -> Callable[[int], dict[str, str]]:
    def headers(customer_id: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens.issue(str(customer_id), 'customer')}"}

    return headers


@pytest.fixture
def as_seller(tokens: TokenCodec) -> Callable[[int], dict[str, str]]:
    def headers(seller_id: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens.issue(str(seller_id), 'seller')}"}

    return headers


@pytest.fixture
async def aiohttp_client(aiohttp_client: Any) -> AsyncIterator[Any]:
    """pytest-aiohttp's, with every response checked against the app's OpenAPI document."""
    contract = Contract()

    async def make(app: Any, *args: Any, **kwargs: Any) -> TestClient:
        if isinstance(app, web.Application):
            contract.watch(app)
        return await aiohttp_client(app, *args, **kwargs)

    yield make
    contract.assert_kept()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In a pytest-xdist worker: hand the contract counts to the controller's summary."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["contract_seen"] = dict(SEEN)
        workeroutput["contract_streamed"] = dict(STREAMED)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist's controller, as each worker ends: add its contract counts."""
    output = getattr(node, "workeroutput", {})
    SEEN.update(output.get("contract_seen", {}))
    STREAMED.update(output.get("contract_streamed", {}))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    _backend_summary(terminalreporter)
    if SEEN:
        terminalreporter.write_line(
            f"contract: {sum(SEEN.values())} responses checked against the OpenAPI document "
            f"({len(SEEN)} distinct operation/status pairs)"
        )
    if STREAMED:
        terminalreporter.write_line(
            "contract: streamed items checked: "
            + ", ".join(f"{n} {media_type}" for media_type, n in sorted(STREAMED.items()))
        )


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings))


SeededClient = Callable[..., Awaitable[tuple[web.Application, TestClient]]]


@pytest.fixture
def seeded_client(aiohttp_client: Any, settings: Settings) -> SeededClient:
    """``await seeded_client(SeedPlan(...), chunk_rows=N)``: the app, streaming ``N`` rows a
    chunk, over a database seeded by ``plan``, and its client."""

    async def make(plan: SeedPlan, chunk_rows: int = 100) -> tuple[web.Application, TestClient]:
        await seed(settings, plan, progress=False)
        app = create_app(dataclasses.replace(settings, stream_chunk_rows=chunk_rows))
        return app, await aiohttp_client(app)

    return make


NewCustomer = Callable[..., Awaitable[dict[str, Any]]]
NewItem = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def new_customer(client: TestClient, admin: dict[str, str]) -> NewCustomer:
    counter = iter(range(1, 1_000_000))

    async def make(**overrides: Any) -> dict[str, Any]:
        n = next(counter)
        body = {
            "name": f"Customer {n}",
            "email": f"customer{n}@example.com",
            "address": {
                "street": f"{n} High Street",
                "flat_number": None,
                "city": "Leeds",
                "post_code": "LS1 4AP",
                "country": "GB",
            },
        } | overrides
        resp = await client.post("/api/v1/customers", json=body, headers=admin)
        assert resp.status == 201, await resp.text()
        return await resp.json()

    return make


@pytest.fixture
def new_item(client: TestClient, admin: dict[str, str]) -> NewItem:
    async def make(price: str = "10.00", stock: int = 100, name: str = "Kettle") -> dict[str, Any]:
        body = {"name": name, "description": "", "price": price, "stock": stock}
        resp = await client.post("/api/v1/items", json=body, headers=admin)
        assert resp.status == 201, await resp.text()
        return await resp.json()

    return make


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _backend_summary(terminalreporter: Any) -> None:
    """One line per database: the report shows that the database tests ran on both."""
    counts: dict[str, dict[str, int]] = {b: {} for b in BACKENDS}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            for backend in BACKENDS:
                if (
                    f"[{backend}" in report.nodeid
                    or f"-{backend}]" in report.nodeid
                    or f"-{backend}-" in report.nodeid
                ):
                    counts[backend][outcome] = counts[backend].get(outcome, 0) + 1
    for backend, by_outcome in counts.items():
        if by_outcome:
            summary = ", ".join(f"{n} {outcome}" for outcome, n in by_outcome.items())
            terminalreporter.write_line(f"database tests on {backend}: {summary}")
