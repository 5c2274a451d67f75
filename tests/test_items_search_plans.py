"""The plans: a search walks the full-text index (GIN on PostgreSQL, FTS5 on SQLite) and a
price range walks the price index; neither scans the items table. A page of a search by
relevance reads its tiers in id order and stops when the page is full."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from marketsvc.db_accessor.item_listing import (
    WALK_IDS,
    ItemListing,
    ItemSort,
    listing_statement,
)
from marketsvc.schemas.search_text import parse
from marketsvc.store.seed import SeedPlan, seed
from tests.links import next_query

CATALOGUE = SeedPlan(customers=0, items=5000, orders=0, users=0, pets_per_user=0)


async def plan(url: str, listing: ItemListing, analyze: bool = False) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            stmt = listing_statement(conn.dialect.name, listing, 21)
            sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            if conn.dialect.name == "postgresql":
                rows = await conn.exec_driver_sql(
                    ("EXPLAIN ANALYZE " if analyze else "EXPLAIN ") + sql
                )
                return "\n".join(row[0] for row in rows)
            rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
            return "\n".join(row[-1] for row in rows)
    finally:
        await engine.dispose()


@pytest.fixture
async def catalogue(settings, client, admin) -> str:
    await seed(settings, CATALOGUE, progress=False)
    body = {"name": "Brass Samovar", "description": "Tea for twelve", "price": "80.00", "stock": 1}
    assert (await client.post("/api/v1/items", json=body, headers=admin)).status == 201
    engine = create_async_engine(settings.database_url)
    async with engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    await engine.dispose()
    return settings.database_url


@pytest.mark.parametrize("sort", [ItemSort.RELEVANCE, ItemSort.PRICE, ItemSort.NEWEST])
async def test_a_search_uses_the_full_text_index(catalogue, backend, sort) -> None:
    shown = await plan(catalogue, ItemListing(q=parse("samovars"), sort=sort, in_stock=True))
    if backend == "postgresql":
        assert "Bitmap Index Scan on ix_items_search_vector" in shown, shown
        if sort == ItemSort.RELEVANCE:  # the first tier: the name's own index
            assert "Bitmap Index Scan on ix_items_name_vector" in shown, shown
        assert "Seq Scan" not in shown, shown
    else:
        assert re.search(r"SCAN items_fts VIRTUAL TABLE INDEX \d+:M", shown), shown
        assert "SEARCH items USING INTEGER PRIMARY KEY" in shown, shown
        assert not any(line.strip() == "SCAN items" for line in shown.splitlines()), shown


async def test_a_price_range_sorted_by_price_uses_the_price_index(catalogue, backend) -> None:
    listing = ItemListing(
        min_price_cents=1000, max_price_cents=1100, sort=ItemSort.PRICE, after=(1000, 5)
    )
    shown = await plan(catalogue, listing)
    assert "ix_items_price_cents_id" in shown, shown
    assert "Seq Scan" not in shown, shown
    assert not any(line.strip() == "SCAN items" for line in shown.splitlines()), shown


async def test_a_page_of_a_common_word_reads_a_page_not_every_match(catalogue, backend) -> None:
    """Some 170 of the 5000 items have "kettle" in their name: the first page comes from the
    first tier alone, walked in id order; nothing scores and sorts every match."""
    shown = await plan(catalogue, ItemListing(q=parse("kettle"), sort=ItemSort.RELEVANCE), True)
    if backend == "postgresql":
        # the second tier (found through the description) is never run, whichever way the
        # first tier is read
        assert "(never executed)" in shown, shown
        assert "ts_rank" not in shown, shown
    else:
        # FTS5 hands on its matches in rowid order (idxNum 64: ORDER BY rowid consumed), so
        # each tier stops after a page; the tiers run one after the other (no merge, no sort)
        assert shown.count("SCAN items_fts VIRTUAL TABLE INDEX 64:M") == 2, shown
        assert "COMPOUND QUERY" in shown, shown
        assert "MERGE" not in shown, shown
        assert "B-TREE" not in shown, shown


async def test_a_word_pages_past_the_walk_through_the_index(catalogue, client, backend) -> None:
    """One word on PostgreSQL: each tier walks ``WALK_IDS`` ids, then reads the GIN index for
    the rest. Paging through a word found in some 300 names and 600 descriptions of the 5000
    items finds each match once, name matches first, each tier in id order."""
    paged: list[dict] = []
    query: str | None = "q=walnut&limit=100"
    while query is not None:
        resp = await client.get("/api/v1/items?" + query)
        assert resp.status == 200, await resp.text()
        paged += await resp.json()
        query = next_query(resp)
    unranked = await (await client.get("/api/v1/items?q=walnut&sort=-created")).json()
    assert sorted(item["id"] for item in paged) == sorted(item["id"] for item in unranked)
    in_name = [item for item in paged if "walnut" in item["name"].lower()]
    others = paged[len(in_name) :]
    assert paged[: len(in_name)] == in_name, "name matches first"
    for tier in (in_name, others):
        ids = [item["id"] for item in tier]
        assert ids == sorted(ids)
        assert ids[-1] > 2 * WALK_IDS, "the catalogue reaches past the walk"
