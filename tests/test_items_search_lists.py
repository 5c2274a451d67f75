"""PostgreSQL's search lists (migrations 0011 and 0012): ``item_name_terms`` (the lexemes of
every item's name, and every two of them) and ``item_bigrams`` (its neighbouring lexemes), kept
in step by triggers; and the
searches read from them (the name tier of several words, both tiers of a phrase) finding
exactly what the items' vectors find, in id order, page after page."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import asyncpg
import pytest
from sqlalchemy import make_url, text

from marketsvc.db_accessor import fulltext
from marketsvc.schemas.search_text import parse
from marketsvc.store.seed import SeedPlan, seed
from marketsvc.web.keys import DATABASE
from tests.links import MAX_PAGES, next_query

CATALOGUE = SeedPlan(customers=0, items=800, orders=0, users=0, pets_per_user=0, random_seed=11)

# what the tables must hold: one row per lexeme of each item's name and per two of them (in
# byte order, the vector's), and per two lexemes at neighbouring positions of its search vector
TERMS = """(
    SELECT term, id FROM items, unnest(tsvector_to_array(name_vector)) AS term
    UNION ALL
    SELECT one || ' ' || other, id FROM items, unnest(tsvector_to_array(name_vector)) AS one,
        unnest(tsvector_to_array(name_vector)) AS other
    WHERE one < other COLLATE "C"
)"""
BIGRAMS = "SELECT bigram, id FROM items, marketsvc_bigrams(search_vector) AS bigram"
DRIFT = f"""
    (SELECT term, item_id FROM item_name_terms EXCEPT {TERMS})
    UNION ALL ({TERMS} EXCEPT SELECT term, item_id FROM item_name_terms)
    UNION ALL (SELECT bigram, item_id FROM item_bigrams EXCEPT {BIGRAMS})
    UNION ALL ({BIGRAMS} EXCEPT SELECT bigram, item_id FROM item_bigrams)
"""


@pytest.fixture
async def pg(settings, backend) -> Any:
    if backend != "postgresql":
        pytest.skip("PostgreSQL's table: SQLite's FTS5 needs none")
    url = make_url(settings.database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(False))
    yield conn
    await conn.close()


async def test_the_terms_follow_every_change_of_the_names(pg, settings, client, admin) -> None:
    await seed(settings, CATALOGUE, progress=False)  # COPY: the statement trigger
    assert await pg.fetch(DRIFT) == []
    assert await pg.fetchval("SELECT count(*) FROM item_name_terms") > 3 * CATALOGUE.items
    assert await pg.fetchval("SELECT count(*) FROM item_bigrams") > 3 * CATALOGUE.items

    body = {"name": "Zyzzyva Kettles", "description": "Hammered copper", "price": "9", "stock": 3}
    resp = await client.post("/api/v1/items", json=body, headers=admin)
    assert resp.status == 201, await resp.text()
    item = (await resp.json())["id"]
    terms = (
        'SELECT array_agg(term ORDER BY term COLLATE "C") FROM item_name_terms WHERE item_id = $1'
    )
    assert await pg.fetchval(terms, item) == ["kettl", "kettl zyzzyva", "zyzzyva"]
    pairs = "SELECT array_agg(bigram ORDER BY bigram) FROM item_bigrams WHERE item_id = $1"
    assert await pg.fetchval(pairs, item) == ["hammer copper", "kettl hammer", "zyzzyva kettl"]

    patch = {"name": "Quokka Café Lamp"}
    resp = await client.patch(f"/api/v1/items/{item}", json=patch, headers=admin)
    assert resp.status == 200, await resp.text()
    renamed = ["cafe", "cafe lamp", "cafe quokka", "lamp", "lamp quokka", "quokka"]
    assert await pg.fetchval(terms, item) == renamed
    assert "quokka cafe" in await pg.fetchval(pairs, item)
    patch = {"description": "Brushed brass", "stock": 7}
    resp = await client.patch(f"/api/v1/items/{item}", json=patch, headers=admin)
    assert resp.status == 200, await resp.text()
    assert await pg.fetchval(terms, item) == renamed
    assert "brush brass" in await pg.fetchval(pairs, item)
    assert await pg.fetch(DRIFT) == []

    await pg.execute("UPDATE items SET name = name || ' deluxe' WHERE id % 7 = 0")
    await pg.execute(
        "DELETE FROM items WHERE id % 5 = 0 AND NOT EXISTS"
        " (SELECT FROM order_lines WHERE order_lines.item_id = items.id)"
    )
    assert await pg.fetch(DRIFT) == []
    assert await pg.fetchval("SELECT count(*) FROM item_name_terms WHERE term = 'delux'") > 0

    await pg.execute("TRUNCATE items CASCADE")
    assert await pg.fetchval("SELECT count(*) FROM item_name_terms") == 0
    assert await pg.fetchval("SELECT count(*) FROM item_bigrams") == 0


# two words, phrases, exclusions, stop words, words that stem alike (fewer lexemes than lists),
# accents, more words than the lists take, a word in no name, a phrase no item holds
QUERIES = [
    "walnut kettle",
    "Kettles walnut",
    '"walnut kettle"',
    '"brass lamp"',
    '"brass lamps" walnut',
    'lamp -"brass lamp"',
    '"café au lait bowl"',
    '"made by hand"',
    '"soft matte finish"',
    '"oak bottle"',
    "kettle -oak",
    "nordic velvet",
    "linen chairs",
    "a kettle for the walnut",
    "kettle kettles",
    "kettles walnut kettle",
    "glass café bowl",
    "blue glass cafe au lait bowl",
    "kettle zyzzyva",
]


async def paged(client, q: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    query: str | None = urlencode({"q": q, "limit": 7})
    while query is not None:
        assert len(found) <= CATALOGUE.items, "paging goes round in circles"
        resp = await client.get("/api/v1/items?" + query)
        assert resp.status == 200, await resp.text()
        found += await resp.json()
        query = next_query(resp)
    return found


async def test_the_lists_find_what_the_vectors_find(pg, settings, client) -> None:
    """Paged by relevance (a keyset every 7 items), against the two tiers computed from the
    vectors: the names that hold the words (and, with exclusions, are found), in id order, then
    every other item found, in id order. One catalogue for all the queries (seeded once)."""
    await seed(settings, CATALOGUE, progress=False)
    for q in QUERIES:
        text = parse(q)
        in_name = "name_vector @@ to_tsquery('english', marketsvc_unaccent($1))"
        found = "search_vector @@ websearch_to_tsquery('english', marketsvc_unaccent($2))"
        name_tier = in_name
        if fulltext.kind(text) == fulltext.EXCLUDING:  # the name holds the words and is found
            name_tier = f"{in_name} AND {found}"
        values = (fulltext.tsquery_in_name(text), fulltext.websearch(text))
        first = await pg.fetch(
            f"SELECT id FROM items WHERE {name_tier} AND $2::text IS NOT NULL ORDER BY id", *values
        )
        rest = await pg.fetch(
            f"SELECT id FROM items WHERE {found} AND NOT ({name_tier}) ORDER BY id", *values
        )
        expected = [r["id"] for r in first] + [r["id"] for r in rest]
        assert [item["id"] for item in await paged(client, q)] == expected, q
        if q in ('"soft matte finish"', '"made by hand"'):
            assert rest, f"{q}: descriptions hold the phrase"
        elif q not in ("kettle zyzzyva", '"oak bottle"', '"brass lamps" walnut'):
            assert first, f"{q}: names hold the words, so the lists are exercised"


@pytest.mark.parametrize("q", ['"walnut kettle"', "kettle walnut"])
async def test_paging_the_lists_while_a_writer_races(client, admin, q) -> None:
    """A phrase (its pair's list) and two words (the name lists' merge), paged by 3 while a
    writer inserts items that match, renames some away and back, and deletes some, between and
    during the pages: each item that matched throughout is listed once, in id order. On SQLite
    the same pages come from FTS5."""
    stable: list[int] = []
    body = {"description": "Turned walnut", "price": "30.00", "stock": 2}
    for n in range(24):
        name = f"Walnut kettle {n}" if n % 3 else f"Small walnut kettle {n}"
        resp = await client.post("/api/v1/items", json=body | {"name": name}, headers=admin)
        assert resp.status == 201, await resp.text()
        stable.append((await resp.json())["id"])
    paging_done = asyncio.Event()
    owned: list[int] = []

    async def write_until_done() -> int:
        steps = 0
        while not paging_done.is_set():
            steps += 1
            resp = await client.post(
                "/api/v1/items", json=body | {"name": f"Walnut kettle w{steps}"}, headers=admin
            )
            owned.append((await resp.json())["id"])
            renamed = owned[steps % len(owned)]
            name = "Oak lamp" if steps % 2 else "Walnut kettle again"
            resp = await client.patch(
                f"/api/v1/items/{renamed}", json={"name": name}, headers=admin
            )
            assert resp.status == 200, await resp.text()
            if steps % 3 == 0:
                gone = owned.pop(0)
                async with client.app[DATABASE].change() as session:
                    await session.execute(text("DELETE FROM items WHERE id = :id"), {"id": gone})
        return steps

    async def page_through() -> list[int]:
        seen: list[int] = []
        query: str | None = urlencode({"q": q, "limit": 3})
        for _ in range(MAX_PAGES):
            resp = await client.get("/api/v1/items?" + str(query))
            assert resp.status == 200, await resp.text()
            seen += [item["id"] for item in await resp.json()]
            query = next_query(resp)
            if query is None:
                break
            await asyncio.sleep(0.01)  # let the writer in between pages too
        paging_done.set()
        return seen

    steps, seen = await asyncio.gather(write_until_done(), page_through())
    assert steps > 3
    assert [i for i in seen if i in stable] == stable  # each once, in id order
