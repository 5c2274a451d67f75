"""Cursors under writes: paging through any sort while the catalogue changes between pages
neither repeats nor skips an item that was there, unchanged, throughout."""

from __future__ import annotations

import asyncio
import random
from urllib.parse import urlencode

import pytest
from sqlalchemy import text

from marketsvc.web.keys import DATABASE
from tests.links import MAX_PAGES, next_query

WORDS = ["kettle", "lamp", "teapot", "scarf", "café", "mug", "chair", "clock"]
PRICES = ["5.00", "9.99", "12.50", "20.00", "35.00"]  # few prices: many ties, broken by id


def item_body(rng: random.Random, n: int) -> dict:
    words = rng.sample(WORDS, 2)
    return {
        "name": f"{words[0].title()} {n}",
        "description": f"A {words[1]} with a {rng.choice(WORDS)}, " + "very " * rng.randint(0, 4),
        "price": rng.choice(PRICES),
        "stock": rng.randint(0, 3),
    }


class Writer:
    """Inserts, reprices, renames and deletes its own items; never touches the stable ones."""

    def __init__(self, client, admin, rng: random.Random) -> None:
        self.client, self.admin, self.rng = client, admin, rng
        self.owned: list[int] = []
        self.made = 0

    async def insert(self) -> None:
        self.made += 1
        body = item_body(self.rng, 1000 + self.made)
        resp = await self.client.post("/api/v1/items", json=body, headers=self.admin)
        self.owned.append((await resp.json())["id"])

    async def step(self) -> None:
        for _ in range(2):
            await self.insert()
        for item_id in self.rng.sample(self.owned, 2):
            change = {"price": self.rng.choice(PRICES)}
            if self.rng.random() < 0.5:
                change["name"] = f"{self.rng.choice(WORDS).title()} renamed {item_id}"
            resp = await self.client.patch(
                f"/api/v1/items/{item_id}", json=change, headers=self.admin
            )
            assert resp.status == 200
        await self.delete(self.owned.pop(self.rng.randrange(len(self.owned))))

    async def delete(self, item_id: int) -> None:
        """No DELETE route yet: the test removes the row as an admin tool would."""
        async with self.client.app[DATABASE].change() as session:
            await session.execute(text("DELETE FROM items WHERE id = :id"), {"id": item_id})


QUERIES = [
    {},
    {"sort": "price"},
    {"sort": "-price"},
    {"sort": "name"},
    {"sort": "-created"},
    {"q": "kettle"},
    {"q": "kettle or lamp", "sort": "relevance"},
    {"q": "cafe", "sort": "-price"},
    {"min_price": "9.99", "max_price": "20.00", "sort": "price"},
    {"in_stock": "true", "sort": "name"},
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: urlencode(q) or "id-order")
async def test_paging_while_the_catalogue_changes(client, admin, query) -> None:
    rng = random.Random(18)
    stable = set()
    for n in range(40):
        resp = await client.post("/api/v1/items", json=item_body(rng, n), headers=admin)
        stable.add((await resp.json())["id"])
    writer = Writer(client, admin, rng)
    for _ in range(20):
        await writer.insert()

    seen: list[int] = []
    page_query = urlencode(query | {"limit": 4})
    for _ in range(MAX_PAGES):
        if page_query is None:
            break
        resp = await client.get("/api/v1/items?" + page_query)
        assert resp.status == 200, await resp.text()
        seen += [item["id"] for item in await resp.json()]
        page_query = next_query(resp)
        await writer.step()
    assert page_query is None, "the cursor does not advance"

    final = await (await client.get("/api/v1/items?" + urlencode(query))).json()
    expected = [item["id"] for item in final if item["id"] in stable]
    assert expected, "the query must list some stable items"
    assert [i for i in seen if i in stable] == expected  # each once, in the sort's order


@pytest.mark.parametrize(
    "query",
    [{"sort": "price"}, {"sort": "-created"}, {"q": "kettle or mug"}],
    ids=lambda q: urlencode(q),
)
async def test_paging_while_a_writer_runs_concurrently(client, admin, query) -> None:
    """The same, with the writer racing the pages instead of taking turns with them."""
    rng = random.Random(7)
    stable = set()
    for n in range(30):
        resp = await client.post("/api/v1/items", json=item_body(rng, n), headers=admin)
        stable.add((await resp.json())["id"])
    writer = Writer(client, admin, rng)
    for _ in range(10):
        await writer.insert()
    paging_done = asyncio.Event()

    async def write_until_done() -> int:
        steps = 0
        while not paging_done.is_set():
            await writer.step()
            steps += 1
        return steps

    async def page_through() -> list[int]:
        seen: list[int] = []
        page_query = urlencode(query | {"limit": 3})
        for _ in range(MAX_PAGES):
            resp = await client.get("/api/v1/items?" + page_query)
            seen += [item["id"] for item in await resp.json()]
            page_query = next_query(resp)
            if page_query is None:
                break
            await asyncio.sleep(0.01)  # let the writer in between pages too
        paging_done.set()
        return seen

    steps, seen = await asyncio.gather(write_until_done(), page_through())
    assert steps > 0
    final = await (await client.get("/api/v1/items?" + urlencode(query))).json()
    expected = [item["id"] for item in final if item["id"] in stable]
    assert expected
    assert [i for i in seen if i in stable] == expected
