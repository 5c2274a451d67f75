"""PostgreSQL point reads run their checkout, statement and check-in in one greenlet
(store/pg_point_reads.py): counted with greenlet's own trace hook while the app answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import greenlet
import pytest
from sqlalchemy import func, literal, make_url, select, text

from marketsvc.db_accessor import customers, orders
from marketsvc.db_accessor.item_listing import ItemListing, ItemSort, listing_query
from marketsvc.schemas.search_text import parse
from marketsvc.web.keys import DATABASE
from tests.ordering import place


def _task_name() -> str:
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop in this greenlet
        return ""
    return "" if task is None else task.get_coro().__qualname__


@contextmanager
def greenlet_switches() -> Iterator[list[str]]:
    """The switches made for requests: the app's background tasks (webhook sender, relays,
    backlog gauges) read on their own pool meanwhile and are not counted."""
    seen: list[str] = []

    def trace(event: str, _args: object) -> None:
        if "RequestHandler" in _task_name():
            seen.append(event)

    previous = greenlet.settrace(trace)
    try:
        yield seen
    finally:
        greenlet.settrace(previous)


async def test_a_point_read_is_one_greenlet(backend, client, admin, new_customer, new_item) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL's: SQLite's point reads use no greenlet at all")
    customer, item = await new_customer(), await new_item()
    order = await place(client, admin, customer["id"], (item["id"], 2))
    routes = [
        f"/api/v1/customers/{customer['id']}",
        f"/api/v1/orders/{order['id']}",
        f"/api/v1/orders/{order['id']}/total",
    ]
    for path in routes:
        await client.get(path, headers=admin)  # statement prepared, connection pooled
        with greenlet_switches() as switches:
            resp = await client.get(path, headers=admin)
        assert resp.status == 200
        # into the read's greenlet, out to await asyncpg's answer, back in, and out when done
        # (the async path: checkout, execute and close each a greenlet, 8 switches)
        assert len(switches) == 4, (path, switches)


async def test_compiled_reads_give_sqlalchemys_rows(
    backend, client, admin, new_customer, new_item
) -> None:
    """Every statement ``Database.read()`` runs, compiled once and handed to asyncpg, against
    SQLAlchemy's own execution of it: the same keys, values and types (a numeric score, a
    timestamp, an array of ids, a missing row)."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's executor")
    customer = await new_customer()
    cheap, dear = await new_item("0.10", name="Copper kettle"), await new_item("12.34")
    order = await place(client, admin, customer["id"], (cheap["id"], 3), (dear["id"], 1))
    database = client.app[DATABASE]
    reads = database.pg_reads
    page, page_params = listing_query(
        "postgresql", ItemListing(q=parse("kettle"), sort=ItemSort.RELEVANCE), 21
    )
    cases = [
        (customers._CUSTOMER_BY_ID, {"customer_id": customer["id"]}),
        (customers._CUSTOMER_BY_ID, {"customer_id": 999}),
        (orders._ORDER_ROWS, {"order_id": order["id"]}),
        (orders._ORDER_ROWS_IN_SCOPE, {"order_id": order["id"], "scope": customer["id"]}),
        (orders._TOTAL, {"order_id": order["id"]}),
        (orders._TOTAL_IN_SCOPE, {"order_id": order["id"], "scope": 999}),
        (orders._TOTALS[True, False], {"order_ids": [order["id"], 999]}),
        (orders._TOTALS[True, True], {"order_ids": [order["id"]], "scope": customer["id"]}),
        (page, page_params),
    ]
    before = (reads.stats.compiled, reads.stats.sqlalchemy)
    for stmt, params in cases:
        compiled = (await reads.execute(stmt, params)).all()
        async with database.scan() as conn:
            theirs = (await conn.execute(stmt, params)).all()
        assert compiled == theirs, stmt
        assert [r._mapping for r in compiled] == [r._mapping for r in theirs]
        assert [list(map(type, r)) for r in compiled] == [list(map(type, r)) for r in theirs]
    assert (reads.stats.compiled, reads.stats.sqlalchemy) == (before[0] + len(cases), before[1])
    assert any(type(row.score) is float for row in compiled)  # the page's, last
    # what it cannot compile runs on SQLAlchemy's path: text()
    assert (await reads.execute(text("SELECT 1 AS one"))).all() == [(1,)]
    assert reads.stats.sqlalchemy == before[1] + 1


async def test_a_read_on_a_connection_that_died_is_an_outage_and_the_next_is_served(
    backend, client, admin, new_customer
) -> None:
    """The server ends the pooled connections: a read on one that is already handed out fails
    as an outage would (503), the dead connection is not handed out again, and the next read
    answers."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's executor")
    customer = await new_customer()
    path = f"/api/v1/customers/{customer['id']}"
    assert (await client.get(path, headers=admin)).status == 200
    # from a connection of the test's own, not the pool's
    url = make_url(client.app[DATABASE].settings.database_url).set(drivername="postgresql")
    other = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        ended = await other.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'marketsvc' AND datname = current_database()"
        )
    finally:
        await other.close()
    assert ended
    assert all(row[0] for row in ended)
    statuses = [(await client.get(path, headers=admin)).status for _ in range(3)]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[-1] == 200, statuses


async def test_a_read_cancelled_midway_leaves_no_busy_connection_in_the_pool(
    backend, client
) -> None:
    """A request that goes away cancels its read while asyncpg waits for the answer: asyncpg
    cancels the statement, and the connection goes back to the pool sound (the reads after it,
    on every idle connection, run on the compiled path without a failure)."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's executor")
    reads = client.app[DATABASE].pg_reads
    slow = select(func.pg_sleep(0.5).label("slept"))
    quick = select(literal(1).label("one"))
    assert (await reads.execute(quick)).scalar() == 1
    before = (reads.stats.compiled, reads.stats.fell_back)
    read = asyncio.ensure_future(reads.execute(slow))
    await asyncio.sleep(0.1)
    read.cancel()
    with pytest.raises(asyncio.CancelledError):
        await read
    for _ in range(5):  # more than the pool's idle connections, each read on one
        assert (await reads.execute(quick)).scalar() == 1
    assert reads.stats.compiled == before[0] + 6
    assert reads.stats.fell_back == before[1]  # no read met a busy connection


async def test_a_connection_ended_mid_read_is_discarded_and_the_read_runs_again(
    backend, client
) -> None:
    """The server ends the connection while a compiled read waits on it: the connection is
    invalidated and the read runs again on SQLAlchemy's path, on a new connection, and answers."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's executor")
    reads = client.app[DATABASE].pg_reads
    slow = select(func.pg_sleep(0.3).label("slept"), func.pg_backend_pid().label("pid"))
    before = reads.stats.fell_back
    read = asyncio.ensure_future(reads.execute(slow))
    url = make_url(client.app[DATABASE].settings.database_url).set(drivername="postgresql")
    other = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        for _ in range(100):  # until the read is running on the server
            sleeping = await other.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' "
                "AND pid <> pg_backend_pid() AND datname = current_database()"
            )
            if sleeping is not None:
                break
            await asyncio.sleep(0.01)
        assert sleeping is not None
        assert await other.fetchval("SELECT pg_terminate_backend($1)", sleeping)
    finally:
        await other.close()
    row = (await asyncio.wait_for(read, 10)).one()
    assert row.pid != sleeping  # answered on another connection
    assert reads.stats.fell_back == before + 1
