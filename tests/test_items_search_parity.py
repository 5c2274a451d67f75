"""The same words find the same items on SQLite and PostgreSQL: one seeded catalogue in each
database, the same queries against both, the answers compared (needs both databases)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from marketsvc.app import create_app
from marketsvc.settings import Settings
from marketsvc.store.seed import SeedPlan, seed
from tests.conftest import TEST_SECRET
from tests.dbs import POSTGRES_URL, fresh_database

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="MARKETSVC_TEST_POSTGRES_URL not set")

CATALOGUE = SeedPlan(customers=0, items=600, orders=0, users=0, pets_per_user=0, random_seed=18)
QUERIES = [
    "kettle",
    "kettles",
    "Kettles copper",
    "cafe",
    "café bowl",
    "creme brulee",
    "crème",
    "naive",
    "montreal",
    "pinata",
    "jalapeno jars",
    "glasses",
    "wine glass",
    '"wine glass"',
    '"oak kettle"',
    '"made by hand"',
    "handmade -oak",
    'kettle -"oak kettle"',
    "kettle or teapot",
    "rug or vase -wool",
    "scandinavian tradition",
    "drinks hot",
    "folding chairs",
    "dishwasher-safe",
    "art deco",
    "recycled",
    "lifetime lovers",
    "bouclé cushions",
    "steel -steel",
    "the of and",
    "a kettle for the home",  # stop words: ignored by both
    "with walnut",
    "grinders",
    "sauté pans",
]


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with (
        fresh_database("sqlite", Path(tmp_path_factory.mktemp("parity"))) as sqlite_url,
        fresh_database("postgresql", Path(tmp_path_factory.mktemp("parity"))) as pg_url,
    ):
        yield {"sqlite": sqlite_url, "postgresql": pg_url}


@pytest.fixture
async def seeded(aiohttp_client, urls) -> dict:
    """A client per database, over the same seeded catalogue (seeded by the first test)."""
    clients = {}
    for backend, url in urls.items():
        settings = Settings(database_url=url, jwt_secret=TEST_SECRET)
        client = await aiohttp_client(create_app(settings))
        if not await (await client.get("/api/v1/items?limit=1")).json():
            await seed(settings, CATALOGUE, progress=False)
        clients[backend] = client
    return clients


async def listed(client, query: dict[str, str]) -> list[int]:
    resp = await client.get("/api/v1/items?" + urlencode(query))
    assert resp.status == 200, await resp.text()
    return [item["id"] for item in await resp.json()]


@pytest.mark.parametrize("q", QUERIES)
async def test_the_same_words_find_the_same_items_on_both_databases(seeded, q) -> None:
    found = {b: await listed(client, {"q": q, "sort": "price"}) for b, client in seeded.items()}
    assert found["sqlite"] == found["postgresql"]


async def test_the_queries_find_something(seeded) -> None:
    """The comparison above proves little on empty answers: most queries find items."""
    client = seeded["sqlite"]
    empty = [q for q in QUERIES if not await listed(client, {"q": q})]
    assert set(empty) <= {"steel -steel", "the of and"}, empty
