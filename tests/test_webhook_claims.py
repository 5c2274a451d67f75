"""Claiming deliveries: concurrent senders never take the same one, and only the oldest
pending delivery of each (subscription, subject) is eligible (db_accessor.webhooks)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect

from marketsvc.db_accessor import webhooks
from marketsvc.settings import Settings
from marketsvc.store.compiled_select import CompiledSelect
from marketsvc.store.engine import BACKGROUND_SERVER_SETTINGS, Database
from marketsvc.store.models import utcnow


def _deliveries(subscription_id: int, events: list[tuple[int, str, int]]) -> list[dict[str, Any]]:
    """Delivery rows of ``(event row, event id, order id)``s, in that order."""
    return [
        {
            "subscription_id": subscription_id,
            "event_row": row,
            "event_id": event_id,
            "subject": f"orders/{order}",
            "type": "com.marketsvc.order.paid.v1",
            "body": "{}",
        }
        for row, event_id, order in events
    ]


@pytest.fixture
async def databases(settings: Settings) -> AsyncIterator[list[Database]]:
    """Two instances' worth of engines on one database."""
    dbs = [Database(dataclasses.replace(settings)) for _ in range(2)]
    yield dbs
    for db in dbs:
        await db.dispose()


async def test_concurrent_claims_are_disjoint_and_take_only_each_subjects_head(
    databases: list[Database],
) -> None:
    a, _ = databases
    async with a.change_rows() as conn:
        sub = await webhooks.create_subscription(conn, "https://1.1.1.1/", None, "", "whsec_AA==")
        events = [(n, f"e-{subject}-{n}", subject) for n in range(3) for subject in range(10)]
        await webhooks.insert_deliveries(conn, _deliveries(sub.id, events))

    async def claim(db: Database, owner: str) -> list[str]:
        now = utcnow()
        async with db.change_rows() as conn:
            got = await webhooks.claim_due(conn, owner, now, now + timedelta(minutes=1), 4)
        return [row.event_id for row in got]

    claims = await asyncio.gather(*(claim(databases[i % 2], f"sender-{i}") for i in range(8)))
    taken = [event_id for claim_ in claims for event_id in claim_]
    assert len(taken) == len(set(taken)), claims  # nobody took one twice
    assert sorted(taken) == sorted(f"e-{s}-0" for s in range(10))  # the heads, all of them


async def test_background_commits_do_not_wait_for_the_flush(backend, settings) -> None:
    """The companion pool's transactions (claims, attempt records, fan-out) are safe to lose in
    a crash, so on PostgreSQL they commit without waiting for the WAL flush; requests' do. And
    the companion's sessions plan no bitmap scans and every statement for its values (the
    claims: the test below)."""
    if backend != "postgresql":
        pytest.skip("a PostgreSQL setting")
    database = Database(settings)
    background = database.companion(1)
    try:
        for db, expected in ((background, "off"), (database, "on")):
            async with db.scan() as conn:
                assert (await conn.execute(text("SHOW synchronous_commit"))).scalar() == expected
                assert (await conn.execute(text("SHOW enable_bitmapscan"))).scalar() == expected
                plans = (await conn.execute(text("SHOW plan_cache_mode"))).scalar()
                assert plans == ("force_custom_plan" if db is background else "auto")
    finally:
        await background.dispose()
        await database.dispose()


async def _analyze(database: Database) -> None:
    """Statistics; on PostgreSQL after a VACUUM, which also cuts an emptied table to no pages
    (as autovacuum, or the benchmark, leaves one)."""
    async with database.scan() as conn:
        postgresql = conn.dialect.name == "postgresql"
        await conn.execute(text("VACUUM ANALYZE webhook_deliveries" if postgresql else "ANALYZE"))


async def _with_history(database: Database, delivered: int) -> None:
    """A subscription with ``delivered`` deliveries done, then 400 pending over 300 subjects
    (100 behind an older pending one)."""
    async with database.change_rows() as conn:
        sub = await webhooks.create_subscription(conn, "https://1.1.1.1/", None, "", "whsec_AA==")
        events = [(n, f"e-{n}", n % 300) for n in range(delivered + 400)]
        await webhooks.insert_deliveries(conn, _deliveries(sub.id, events))
        await conn.execute(
            text("UPDATE webhook_deliveries SET status = 'delivered' WHERE event_row < :n"),
            {"n": delivered},
        )


def _rows_read(plan: str) -> int:
    """The most rows any node of an EXPLAIN ANALYZE returned or filtered out, over its loops."""
    loops = re.findall(r"actual [^)]*rows=(\d+) loops=(\d+)", plan)
    counts = [int(rows) * int(n) for rows, n in loops]
    counts += [int(n) for n in re.findall(r"Rows Removed by [\w ]+: (\d+)", plan)]
    return max(counts)


@pytest.mark.parametrize("analyze_first", [False, True], ids=["statistics", "young-statistics"])
async def test_a_claim_reads_the_pending_deliveries_not_the_history(
    backend, settings, analyze_first
) -> None:
    """With 20,000 deliveries done and 400 pending, the claim's plan walks the partial indexes
    of pending deliveries, whatever the statistics: no node of it reads the history. On
    PostgreSQL in the sender's session, with the statement prepared and run while the table was
    still empty (a plan cached then was the service's: seq scans of every delivery, 0.4-1.2 s a
    claim on the bench database). Before: 20,020 rows from the index of due deliveries and a
    scan of 20,000 for the older pending ones (4.3 ms); with a young table's statistics and
    bitmap scans, every entry of the due index for each pending delivery (411 ms)."""
    now = utcnow() + timedelta(seconds=1)
    if backend == "sqlite":
        database = Database(settings)
        try:
            if analyze_first:
                await _analyze(database)
            await _with_history(database, 20_000)
            if not analyze_first:
                await _analyze(database)
        finally:
            await database.dispose()
        sql, values = CompiledSelect(webhooks._due(8), sqlite_dialect()).query({"now": now})
        with closing(sqlite3.connect(make_url(settings.database_url).database)) as conn:
            shown = "\n".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", values))
        assert "USING INDEX ix_webhook_deliveries_pending_due (next_attempt_at<?)" in shown, shown
        assert "TEMP B-TREE" not in shown, shown  # the walk is in order: it stops at the limit
        subject = "ix_webhook_deliveries_pending_subject (subscription_id=? AND subject=?)"
        assert subject in shown, shown
        return
    shape = CompiledSelect(webhooks._due(8, lock=True), asyncpg_dialect())
    sql, values = shape.query({"now": now})
    url = make_url(settings.database_url).set(drivername="postgresql")
    # the sender's session: the background pool's settings
    conn = await asyncpg.connect(
        url.render_as_string(False), server_settings=BACKGROUND_SERVER_SETTINGS
    )
    database = Database(settings)
    try:
        if analyze_first:  # the statistics of an empty table, kept: autovacuum has not come
            await _analyze(database)
        types = ", ".join(t.name for t in (await conn.prepare(sql)).get_parameters())
        await conn.execute(f"PREPARE claim({types}) AS {sql}")
        # EXECUTE takes no parameters: the values as literals
        arguments = ", ".join(f"'{v}'" if isinstance(v, str | datetime) else str(v) for v in values)
        for _ in range(6):  # past the five runs after which PostgreSQL may keep a generic plan
            await conn.execute(f"EXECUTE claim({arguments})")
        await _with_history(database, 20_000)
        if not analyze_first:
            await _analyze(database)
        explain = f"EXPLAIN ANALYZE EXECUTE claim({arguments})"
        async with conn.transaction():  # FOR UPDATE: the rows it locks are let go at the end
            shown = "\n".join(row[0] for row in await conn.fetch(explain))
        # without the subject index, the head lookup still may not use the due index (its
        # predicate), whatever the statistics: it scans (the index is put back at the rollback)
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("DROP INDEX ix_webhook_deliveries_pending_subject")
            without = "\n".join(row[0] for row in await conn.fetch(explain))
        finally:
            await tx.rollback()
    finally:
        await conn.close()
        await database.dispose()
    assert "Index Scan using ix_webhook_deliveries_pending_due" in shown, shown
    assert "Sort" not in shown, shown  # the walk is in order: it stops at the limit
    assert "ix_webhook_deliveries_pending_subject" in shown, shown
    assert _rows_read(shown) <= 100, shown
    assert without.count("ix_webhook_deliveries_pending_due") == 1, without


async def test_recording_a_batch_marks_the_delivered_and_keeps_a_lease_that_passed_on(
    databases: list[Database],
) -> None:
    """``record_attempts``: a delivered one gets its attempt, status, count, first attempt
    (the oldest attempt row's time) and delivery time, and its lease goes; one whose lease
    another sender took meanwhile keeps that lease and its status, its attempt still logged;
    one retrying gets its outcome row by row."""
    db, _ = databases
    async with db.change_rows() as conn:
        sub = await webhooks.create_subscription(conn, "https://1.1.1.1/", None, "", "whsec_AA==")
        events = [(n, f"e-{n}", n) for n in range(3)]
        await webhooks.insert_deliveries(conn, _deliveries(sub.id, events))
    now = utcnow()
    async with db.change_rows() as conn:
        claimed = await webhooks.claim_due(conn, "me", now, now + timedelta(minutes=1), 3)
    assert [row.event_id for row in claimed] == ["e-0", "e-1", "e-2"]
    assert {(row.url, row.secret) for row in claimed} == {("https://1.1.1.1/", "whsec_AA==")}
    done, passed_on, retrying = (row.id for row in claimed)
    async with db.change_rows() as conn:
        await conn.execute(
            text("UPDATE webhook_deliveries SET lease_owner = 'other' WHERE id = :id"),
            {"id": passed_on},
        )
    at, later = now - timedelta(seconds=2), now + timedelta(seconds=5)

    def attempt(code: int) -> dict[str, Any]:
        error = None if code == 204 else f"answered {code}"
        return {"at": at, "status_code": code, "latency_ms": 3, "error": error}

    async with db.change_rows() as conn:
        await webhooks.record_attempts(
            conn,
            "me",
            [(done, attempt(204)), (passed_on, attempt(204)), (retrying, attempt(500))],
            delivered=[done, passed_on],
            now=now,
            outcomes=[
                (retrying, {"attempts": 1, "first_attempt_at": at, "next_attempt_at": later})
            ],
        )
    async with db.read() as conn:
        rows = {
            row.id: row
            for row in [await webhooks.get_delivery(conn, i) for i in (done, passed_on, retrying)]
        }
        logged = await webhooks.delivery_with_attempts(conn, passed_on)
    assert rows[done].status == "delivered"
    assert (rows[done].attempts, rows[done].first_attempt_at, rows[done].delivered_at) == (
        1,
        at,
        now,
    )
    assert (rows[done].lease_owner, rows[done].lease_until) == (None, None)
    assert (rows[passed_on].status, rows[passed_on].lease_owner) == ("pending", "other")
    assert [a.status_code for a in logged["attempt_log"]] == [204]
    assert (rows[retrying].status, rows[retrying].next_attempt_at) == ("pending", later)
    assert (rows[retrying].attempts, rows[retrying].lease_owner) == (1, None)
