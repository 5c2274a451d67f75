"""A consumer's backlog: counted over the range after its position, never over the whole feed."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from marketsvc.db_accessor import consumer_lag, outbox
from marketsvc.settings import Settings
from marketsvc.store.engine import BACKGROUND_SERVER_SETTINGS, Database

TRANSACTIONS, PER_TRANSACTION = 200, 100  # 20,000 events over 200 feed positions' txids


async def _append(database: Database, transactions: int) -> None:
    for _ in range(transactions):
        async with database.change_rows() as conn:
            await conn.execute(
                text(
                    "INSERT INTO events (event_id, type, subject, sequence, time, data)"
                    " SELECT gen_random_uuid(), 't', 'orders/' || n, 1, now(), '{}'"
                    " FROM generate_series(1, :n) AS n"
                ),
                {"n": PER_TRANSACTION},
            )


async def _feed(database: Database, analyze_first: bool) -> tuple[int, int]:
    """20,000 events from 200 transactions, and the planner's statistics after them, or
    before (``analyze_first``: those of an empty feed, until autovacuum comes round); the
    position before the last 50."""
    if analyze_first:
        async with database.scan() as conn:
            await conn.execute(text("ANALYZE events"))
    await _append(database, TRANSACTIONS)
    async with database.scan() as conn:
        if not analyze_first:
            await conn.execute(text("ANALYZE events"))
        count = TRANSACTIONS * PER_TRANSACTION
        row = (
            await conn.execute(
                text("SELECT txid, id FROM events ORDER BY txid, id OFFSET :k"), {"k": count - 51}
            )
        ).first()
    assert row is not None
    return row.txid, row.id


@pytest.mark.parametrize("analyze_first", [False, True], ids=["statistics", "young-statistics"])
async def test_the_backlog_is_counted_over_the_range_after_the_position(
    backend, settings: Settings, analyze_first: bool
) -> None:
    """What PostgreSQL runs for the count, in the background pool's session: the range after
    the position, through the feed's index, 50 rows; not a scan of the 20,000 (as the plan made
    for any position did: with generic plans allowed in that session, this fails). Not
    reproduced here: the bench
    database's statistics of an empty feed, under which the unordered count scanned 40,000
    events (30 ms) and the ordered one read the index (0.4 ms; EXPLAIN on that database)."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's plans: SQLite's statements are planned for their values")
    database = Database(settings)
    try:
        position = await _feed(database, analyze_first)
        async with database.scan() as conn:
            lag = await consumer_lag.lag_after(conn, position)
            everything = await consumer_lag.lag_after(conn, outbox.START)  # past the first cap
    finally:
        await database.dispose()
    assert lag.events == 50
    assert everything.events == TRANSACTIONS * PER_TRANSACTION
    # the statement as the service sends it, in the session of the background pool that
    # measures the backlog, run past the five runs after which PostgreSQL may keep one plan
    compiled = consumer_lag.count_statement("postgresql", position, consumer_lag.FIRST_CAP).compile(
        dialect=asyncpg_dialect(), compile_kwargs={"render_postcompile": True}
    )
    values = [compiled.params[name] for name in compiled.positiontup or ()]
    url = make_url(settings.database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(
        url.render_as_string(False), server_settings=BACKGROUND_SERVER_SETTINGS
    )
    try:
        types = ", ".join(t.name for t in (await conn.prepare(compiled.string)).get_parameters())
        await conn.execute(f"PREPARE lag({types}) AS {compiled.string}")
        arguments = ", ".join(str(int(v)) for v in values)
        for _ in range(6):
            await conn.execute(f"EXECUTE lag({arguments})")
        shown = "\n".join(
            row[0] for row in await conn.fetch(f"EXPLAIN ANALYZE EXECUTE lag({arguments})")
        )
    finally:
        await conn.close()
    assert "ix_events_txid_id" in shown, shown
    assert "Seq Scan" not in shown, shown
