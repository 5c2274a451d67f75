"""SQLite's plans for the feed's range reads: they seek the position in the feed's indexes, so a
relay's poll or a backlog count costs what it reads, not the length of the feed before it (a
row-value range ``(txid, id) > (0, n)`` seeks on ``txid`` alone and read the feed from its start:
``outbox.after_position``)."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import Select, make_url
from sqlalchemy.dialects import sqlite

from marketsvc.db_accessor import consumer_lag, outbox
from marketsvc.db_accessor.outbox import FeedFilter

POSITION = (0, 41_000)


def sqlite_plan(url: str, stmt: Select) -> str:
    sql = str(stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with sqlite3.connect(make_url(url).database) as conn:
        return "\n".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))


@pytest.mark.parametrize(
    ("where", "index"),
    [
        (FeedFilter(), "ix_events_txid_id (txid=? AND id>?)"),
        (FeedFilter(scope=7), "ix_events_customer_id_txid_id (customer_id=? AND txid=? AND id>?)"),
        (
            FeedFilter(subject="order/9"),
            "ix_events_subject_txid_id (subject=? AND txid=? AND id>?)",
        ),
    ],
    ids=["feed", "a customer's", "a subject's"],
)
def test_a_feed_read_seeks_its_position(backend, migrated_url, where, index) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's plans: PostgreSQL seeks a row comparison on both columns")
    shown = sqlite_plan(migrated_url, outbox.feed_statement("sqlite", POSITION, where, 100))
    assert index in shown, shown


def test_a_backlog_count_seeks_its_position(backend, migrated_url) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's plans: tests/test_consumer_lag.py has PostgreSQL's")
    stmt = consumer_lag.count_statement("sqlite", POSITION, consumer_lag.FIRST_CAP)
    shown = sqlite_plan(migrated_url, stmt)
    assert "ix_events_txid_id (txid=? AND id>?)" in shown, shown
