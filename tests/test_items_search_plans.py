"""The plans: a search walks the full-text index (GIN on PostgreSQL, FTS5 on SQLite) and a
price range walks the price index; neither scans the items table. A page of a search by
relevance reads its tiers in id order and stops when the page is full."""

from __future__ import annotations

import re

import asyncpg
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import create_async_engine

from marketsvc.db_accessor.item_listing import (
    WALK_IDS,
    ItemListing,
    ItemSort,
    listing_query,
    listing_statement,
)
from marketsvc.schemas.search_text import parse
from marketsvc.store.compiled_select import CompiledSelect
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
def postgresql_only(backend: str) -> None:
    """Listed before ``catalogue``: SQLite skips before a catalogue is seeded for nothing."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's plans: SQLite's statements are planned for their values")


@pytest.fixture
async def catalogue(settings, client, admin) -> str:
    await seed(settings, CATALOGUE, progress=False)
    body = {"name": "Brass Samovar", "description": "Tea for twelve", "price": "80.00", "stock": 1}
    assert (await client.post("/api/v1/items", json=body, headers=admin)).status == 201
    # VACUUM too: the tests before left dead rows behind (tests/dbs.py empties tables with
    # DELETE), and the planner would cost the table with them
    engine = create_async_engine(settings.database_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        postgresql = conn.dialect.name == "postgresql"
        await conn.execute(text("VACUUM ANALYZE" if postgresql else "ANALYZE"))
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


async def generic_plan(url: str, listing: ItemListing) -> str:
    """EXPLAIN ANALYZE of the plan PostgreSQL makes once for any values, as it does for a
    statement asyncpg has prepared and run five times (the service's case, under load)."""
    stmt, params = listing_query("postgresql", listing, 21)
    sql, values = CompiledSelect(stmt, asyncpg_dialect()).query(params)
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        types = ", ".join(t.name for t in (await conn.prepare(sql)).get_parameters())
        await conn.execute(f"PREPARE page({types}) AS {sql}")
        # EXPLAIN EXECUTE takes no parameters: the values as literals (words and numbers)
        arguments = ", ".join(
            "'" + v.replace("'", "''") + "'" if isinstance(v, str) else str(v) for v in values
        )
        explain = f"EXPLAIN ANALYZE EXECUTE page({arguments})"
        return "\n".join(row[0] for row in await conn.fetch(explain))
    finally:
        await conn.close()


async def test_a_generic_plan_walks_the_ids_and_parses_the_query_once(
    postgresql_only, catalogue
) -> None:
    """The plan asyncpg's prepared statements end up with: the search text is unaccented and
    parsed once per statement (an InitPlan: ``fulltext._name_query``), not again for every row
    a filter or recheck tests; a common word's page walks the primary key, testing each row's
    vector in the form no index answers (``fulltext._unindexed``: on the benchmark's
    catalogue the plan read the GIN index instead, twice the cost), and stops with the page."""
    shown = await generic_plan(catalogue, ItemListing(q=parse("kettle"), sort=ItemSort.RELEVANCE))
    run = shown[: shown.index("(never executed)")]  # what ran before the first arm it skipped
    assert "Index Scan using pk_items" in run, shown
    assert "Filter: (COALESCE(name_vector, ''::tsvector) @@ $0)" in run, shown
    assert "BitmapAnd" not in shown, shown
    assert "InitPlan" in shown, shown
    tested = [line for line in shown.splitlines() if re.search(r"Filter:|Recheck Cond:", line)]
    assert tested, shown
    assert not any("unaccent" in line for line in tested), shown


@pytest.mark.parametrize(
    ("q", "lists"),
    [("walnut kettle", 1), ("walnut kettle -brass", 1), ("oak walnut kettle", 2)],
)
async def test_a_generic_plan_of_words_reads_their_name_lists(
    postgresql_only, catalogue, q, lists
) -> None:
    """Several words on PostgreSQL: the name tier reads the words' lists from
    ``item_name_terms``, two words to a list (each in id order from its primary key; two lists
    merged) and reads the page's items by id, instead of building the GIN index's bitmap of
    every match and sorting it (about 1 ms a page on the benchmark's 100k items, against 0.3)."""
    shown = await generic_plan(catalogue, ItemListing(q=parse(q), sort=ItemSort.RELEVANCE))
    first_tier = shown[: shown.index("Subquery Scan", shown.index("Subquery Scan") + 1)]
    assert ("Merge Join" in first_tier) == (lists > 1), shown
    assert first_tier.count("Index Only Scan using pk_item_name_terms") == lists, shown
    assert "Index Scan using pk_items" in first_tier, shown
    assert "ix_items_name_vector" not in first_tier, shown
    assert "Sort" not in first_tier, shown


@pytest.mark.parametrize("q", ['"walnut kettle"', '"café au lait" bowl', '"soft matte" -oak'])
async def test_a_generic_plan_of_a_phrase_reads_a_pair_list(postgresql_only, catalogue, q) -> None:
    """A phrase on PostgreSQL: both tiers read the list of one of its word pairs from
    ``item_bigrams`` in id order, instead of a GIN bitmap of every item holding the words, each
    read again to test their positions (5 ms for a phrase no item holds, on the benchmark's
    catalogue, against 0.2)."""
    shown = await generic_plan(catalogue, ItemListing(q=parse(q), sort=ItemSort.RELEVANCE))
    assert shown.count("Index Only Scan using pk_item_bigrams") == 2, shown
    assert "Bitmap" not in shown, shown
    assert "Sort" not in shown, shown


@pytest.fixture
async def fresh_catalogue(settings) -> str:
    """The catalogue as a bulk load leaves it: ANALYZE, no VACUUM (autovacuum may not have run
    yet), so PostgreSQL's visibility map says nothing is all-visible."""
    await seed(settings, CATALOGUE, progress=False)
    engine = create_async_engine(settings.database_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
    await engine.dispose()
    return settings.database_url


@pytest.mark.parametrize("q", ["walnut kettle", '"walnut kettle"'])
async def test_the_lists_are_read_in_order_before_any_vacuum(
    postgresql_only, fresh_catalogue, q
) -> None:
    """Without the visibility map an index-only scan reads the heap too: still the lists in id
    order, in the order the seed's COPY trigger wrote them (sorted per statement), not a bitmap
    of each list sorted by id (13 ms a page on the benchmark's catalogue)."""
    listing = ItemListing(q=parse(q), sort=ItemSort.RELEVANCE)
    shown = await generic_plan(fresh_catalogue, listing)
    first_tier = shown[: shown.index("Subquery Scan", shown.index("Subquery Scan") + 1)]
    index = "pk_item_bigrams" if q.startswith('"') else "pk_item_name_terms"
    assert first_tier.count(f"Index Only Scan using {index}") == 1, shown
    assert "Sort" not in first_tier, shown
    assert "Bitmap" not in first_tier, shown
