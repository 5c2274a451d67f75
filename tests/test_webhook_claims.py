"""Claiming deliveries: concurrent senders never take the same one, and only the oldest
pending delivery of each (subscription, subject) is eligible (db_accessor.webhooks)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from marketsvc.db_accessor import webhooks
from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from marketsvc.store.models import utcnow


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
        rows = [
            {
                "subscription_id": sub.id,
                "event_row": n,
                "event_id": f"e-{subject}-{n}",
                "subject": f"orders/{subject}",
                "type": "com.marketsvc.order.paid.v1",
                "body": "{}",
            }
            for n in range(3)
            for subject in range(10)
        ]
        await webhooks.insert_deliveries(conn, rows)

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
    a crash, so on PostgreSQL they commit without waiting for the WAL flush; requests' do."""
    if backend != "postgresql":
        pytest.skip("a PostgreSQL setting")
    database = Database(settings)
    background = database.companion(1)
    try:
        for db, expected in ((background, "off"), (database, "on")):
            async with db.scan() as conn:
                assert (await conn.execute(text("SHOW synchronous_commit"))).scalar() == expected
    finally:
        await background.dispose()
        await database.dispose()
