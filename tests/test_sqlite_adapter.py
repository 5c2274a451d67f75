"""SQLite statements cross to aiosqlite's thread once each, and an idle COMMIT/ROLLBACK not at all.

Each crossing is counted where aiosqlite makes it (``Connection._execute``) while the real app
answers over HTTP on a real database file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import aiosqlite
import pytest
from sqlalchemy import event

from marketsvc.web.keys import DATABASE


@pytest.fixture(autouse=True)
def _sqlite_only(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the adapter is SQLite's")


@contextmanager
def thread_hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    hops: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn, *args, **kwargs):
        hops.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(aiosqlite.Connection, "_execute", counted)
        yield hops


@contextmanager
def statements(client) -> Iterator[list[str]]:
    sent: list[str] = []
    engine = client.app[DATABASE].engine.sync_engine

    def before(_conn, _cursor, statement, *_args) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", before)


async def test_a_read_on_the_async_path_is_one_hop(client, admin, new_item, monkeypatch) -> None:
    """An ORM point read (``Database.load()``); Core point reads (``Database.read()``) take no
    hop at all: tests/test_sqlite_sync_reads.py."""
    item = await new_item()
    await client.get(f"/api/v1/items/{item['id']}")  # pool warm
    with thread_hops(monkeypatch) as hops:
        resp = await client.get(f"/api/v1/items/{item['id']}")
        assert resp.status == 200
        assert (await resp.json())["name"] == item["name"]
    assert hops == ["_run"]


async def test_a_write_is_one_hop_per_statement_plus_commit(
    client, admin, new_item, monkeypatch
) -> None:
    """A write on the async path (an item's edit); placements run in the writer thread
    instead: tests/test_sqlite_writer.py."""
    item = await new_item(stock=5)
    with thread_hops(monkeypatch) as hops, statements(client) as sent:
        resp = await client.patch(f"/api/v1/items/{item['id']}", json={"stock": 7}, headers=admin)
        assert resp.status == 200, await resp.text()
    assert sent[0] == "BEGIN IMMEDIATE"
    assert hops == ["_run"] * len(sent) + ["commit"]  # no idle ROLLBACK at check-in


async def test_results_errors_and_rowcounts_come_through(client, admin, new_item) -> None:
    item = await new_item(stock=1)
    changed = await client.patch(f"/api/v1/items/{item['id']}", json={"stock": 7}, headers=admin)
    assert (await changed.json())["stock"] == 7
    refused = await client.post(
        "/api/v1/orders",
        json={"customer_id": 1, "lines": [{"item_id": item["id"], "quantity": 1}]},
        headers=admin,
    )  # no customer 1: the foreign key or the existence check refuses it, never a 500
    assert refused.status == 422
    async with client.app[DATABASE].load() as session:
        conn = await session.connection()
        assert (await conn.exec_driver_sql("SELECT 1 UNION ALL SELECT 2")).all() == [(1,), (2,)]
        with pytest.raises(Exception, match="no such table"):
            await conn.exec_driver_sql("SELECT * FROM missing")
