"""Finding items: words (stemmed, accents ignored), prices, stock, sorts and cursors.

The expected sets are literals, and every test runs on SQLite and PostgreSQL: both databases
give the same items for the same query on this corpus.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

import pytest

from tests.links import MAX_PAGES, next_query

CORPUS = [  # name, description, price, stock; created in this order: ids 1..8 by position
    ("Steel Kettle", "Boils 1.7 litres of water fast", "24.99", 12),
    ("Electric Kettles Set", "Two kettles for the office", "49.00", 0),
    ("Café Table", "A small round table for a café terrace", "120.00", 3),
    ("Ceramic Teapot", "Brews tea for four; goes with the kettle", "18.50", 7),
    ("Desk Lamp", "Warm light for reading", "35.00", 0),
    ("Crème Brûlée Torch", "Caramelises sugar on a crème brûlée", "22.00", 5),
    ("Wool Scarf", "Soft merino wool, hand knitted", "29.00", 20),
    ("Reading Glasses", "Light frames for reading in bed", "15.00", 40),
]
NAMES = {n: name for n, (name, *_) in enumerate(CORPUS, 1)}


@pytest.fixture
async def corpus(client, admin) -> dict[int, int]:
    """Position in CORPUS (1-based) -> the id the database gave it."""
    ids = {}
    for n, (name, description, price, stock) in enumerate(CORPUS, 1):
        body = {"name": name, "description": description, "price": price, "stock": stock}
        resp = await client.post("/api/v1/items", json=body, headers=admin)
        assert resp.status == 201
        ids[n] = (await resp.json())["id"]
    return ids


async def found(client, corpus, query: str) -> list[int]:
    """The CORPUS positions a query lists, in the order it lists them."""
    resp = await client.get("/api/v1/items?" + query)
    assert resp.status == 200, await resp.text()
    position = {item_id: n for n, item_id in corpus.items()}
    return [position[item["id"]] for item in await resp.json()]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("kettle", {1, 2, 4}),
        ("Kettles", {1, 2, 4}),  # stemmed
        ("KETTLE", {1, 2, 4}),
        ("cafe", {3}),  # accents ignored
        ("café", {3}),
        ("creme brulee", {6}),
        ('"crème brûlée"', {6}),
        ("reading light", {5, 8}),  # every word, in any field, in any order
        ('"reading glasses"', {8}),
        ('"glasses reading"', set()),  # a phrase keeps its order
        ("knitting", {7}),
        ("brewing teapots", {4}),
        ("kettle -teapot", {1, 2}),
        ('kettle -"electric kettles"', {1, 4}),
        ("scarf or lamp", {5, 7}),
        ("wool or kettle -electric", {1, 4, 7}),
        ("the", set()),  # only stop words: nothing to find
        ("of the and", set()),
        ("-", set()),
        ("kettle AND (", {1, 2, 4}),  # operators are words here, never syntax errors
        ('kettle" OR "lamp', {1, 2, 4, 5}),
        ("NEAR(kettle teapot, 2)", set()),
        ("teapot* ^lamp:", set()),
        ('"unterminated', set()),
        ("kettle:* | !lamp & <->", set()),  # kettle and lamp: no item has both
        ("wi-fi", set()),
        ("litre water", {1}),
        ("nothing-like-this", set()),
    ],
)
async def test_words_find_the_same_items_on_both_databases(client, corpus, q, expected) -> None:
    assert set(await found(client, corpus, urlencode({"q": q}))) == expected


async def test_relevance_puts_name_matches_first_and_breaks_ties_by_id(client, corpus) -> None:
    listed = await found(client, corpus, "q=kettle")
    assert listed[-1] == 4  # "kettle" only in its description
    assert set(listed[:2]) == {1, 2}
    assert await found(client, corpus, "q=kettle&sort=relevance") == listed


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sort=price", [8, 4, 6, 1, 7, 5, 2, 3]),
        ("sort=-price", [3, 2, 5, 7, 1, 6, 4, 8]),
        ("sort=name", [3, 4, 6, 5, 2, 8, 1, 7]),
        ("sort=-created", [8, 7, 6, 5, 4, 3, 2, 1]),
        ("", [1, 2, 3, 4, 5, 6, 7, 8]),
        ("min_price=20&max_price=35.00&sort=price", [6, 1, 7, 5]),
        ("min_price=120", [3]),
        ("max_price=15", [8]),
        ("in_stock=true&sort=-price", [3, 7, 1, 6, 4, 8]),
        ("in_stock=false", [2, 5]),
        ("q=reading&sort=price", [8, 5]),
        ("q=kettle&in_stock=true&sort=-price", [1, 4]),
        ("q=kettle&max_price=20", [4]),
    ],
)
async def test_filters_and_sorts(client, corpus, query, expected) -> None:
    assert await found(client, corpus, query) == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sort=cheapest", "sort"),
        ("sort=relevance", "sort"),  # relevance needs q
        ("sort=price&sort=name", "sort"),
        ("min_price=abc", "min_price"),
        ("max_price=-1", "max_price"),
        ("min_price=10&max_price=5", "max_price"),
        ("in_stock=yes", "in_stock"),
        ("q=", "q"),
        ("q=%20%20", "q"),
        ("q=" + "a" * 201, "q"),
        ("q=-kettle", "q"),  # only exclusions: nothing to find
        ("q=lamp%20or%20-kettle", "q"),
        ("q=kettle&after_id=3", "after_id"),
        ("sort=price&after_id=3", "after_id"),
        ("limit=0", "limit"),
        ("colour=red", "colour"),
    ],
)
async def test_bad_parameters_are_422_naming_them(client, query, field) -> None:
    resp = await client.get("/api/v1/items?" + query)
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    assert f"query.{field}" in (await resp.json())["errors"]


async def walk(client, query: str, headers: dict | None = None) -> list[dict]:
    """Follow Link rel="next" from the first page to the last."""
    seen: list[dict] = []
    resp = await client.get("/api/v1/items?" + query, headers=headers)
    for _ in range(MAX_PAGES):
        assert resp.status == 200, await resp.text()
        seen += await resp.json()
        query = next_query(resp)
        if query is None:
            return seen
        resp = await client.get("/api/v1/items?" + query, headers=headers)
    raise AssertionError(f"still a next page after {MAX_PAGES}: the cursor does not advance")


@pytest.mark.parametrize(
    "query",
    [
        "",
        "sort=price",
        "sort=-price",
        "sort=name",
        "sort=-created",
        "q=kettle or reading or wool",
        "q=kettle or reading or wool&sort=price",
        "in_stock=true&sort=name",
    ],
)
@pytest.mark.parametrize("limit", [1, 3])
async def test_pages_follow_link_through_the_same_order(client, corpus, query, limit) -> None:
    everything = await (await client.get("/api/v1/items?" + query)).json()
    paged = await walk(client, f"{query}&limit={limit}")
    assert paged == everything


async def test_a_full_last_page_has_no_link(client, corpus) -> None:
    resp = await client.get("/api/v1/items?sort=price&limit=8")
    assert len(await resp.json()) == 8
    assert "Link" not in resp.headers
    first = await client.get("/api/v1/items?sort=price&limit=7")
    assert next_query(first) is not None


async def test_pages_come_as_ndjson_too(client, corpus) -> None:
    resp = await client.get(
        "/api/v1/items?sort=-price&limit=2", headers={"Accept": "application/x-ndjson"}
    )
    assert resp.content_type == "application/x-ndjson"
    assert len((await resp.text()).splitlines()) == 2
    assert next_query(resp) is not None


async def test_a_cursor_is_bound_to_its_query(client, corpus) -> None:
    first = await client.get("/api/v1/items?sort=price&min_price=1&limit=2")
    cursor = parse_qs(next_query(first))["cursor"][0]
    same = await client.get(f"/api/v1/items?sort=price&min_price=1&limit=5&cursor={cursor}")
    assert same.status == 200  # another page size is fine
    for other in ("sort=-price", "sort=price&min_price=2", "sort=price&min_price=1&q=lamp"):
        resp = await client.get(f"/api/v1/items?{other}&cursor={cursor}")
        assert resp.status == 400
        assert "query.cursor" in (await resp.json())["errors"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"),
        lambda c: ("A" if c[0] != "A" else "B") + c[1:],
        lambda c: c[:10],
        lambda c: "x",
        lambda c: "é" * 5,
        lambda c: c + "====",
        lambda c: "WzEsMV0",  # base64 of [1,1], with no signature
    ],
)
async def test_a_tampered_cursor_is_400(client, corpus, tamper) -> None:
    first = await client.get("/api/v1/items?sort=price&limit=2")
    cursor = parse_qs(next_query(first))["cursor"][0]
    resp = await client.get("/api/v1/items", params={"sort": "price", "cursor": tamper(cursor)})
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    assert "query.cursor" in (await resp.json())["errors"]


async def test_after_id_still_pages_the_id_order(client, corpus) -> None:
    page = await (await client.get(f"/api/v1/items?after_id={corpus[2]}&limit=2")).json()
    assert [item["id"] for item in page] == [corpus[3], corpus[4]]


async def test_renames_and_deletes_reach_the_index(client, admin, corpus) -> None:
    resp = await client.patch(
        f"/api/v1/items/{corpus[5]}", json={"name": "Desk Lantern"}, headers=admin
    )
    assert resp.status == 200
    assert await found(client, corpus, "q=lamp") == []
    assert await found(client, corpus, "q=lanterns") == [5]
    await client.patch(f"/api/v1/items/{corpus[1]}", json={"price": "1.00"}, headers=admin)
    assert set(await found(client, corpus, "q=kettle")) == {1, 2, 4}
