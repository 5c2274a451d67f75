"""Migration 0007 on a database that already holds items and orders: every item goes to the
default seller, orders stay as they were, search still finds the items (and keeps finding new
and renamed ones: SQLite's FTS5 triggers survive the table rebuild), and the downgrade gives
the data back as it was."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from marketsvc.app import create_app
from marketsvc.settings import Settings
from marketsvc.store.migrate import alembic_config
from marketsvc.web.auth import TokenCodec
from tests.conftest import TEST_SECRET
from tests.dbs import fresh_database

SELLERS = "0007_sellers"
ITEMS = [  # id, name, description, price_cents, stock
    (1, "Copper Kettle", "Boils water on any hob", 2499, 12),
    (2, "Oak Chair", "A chair for the kitchen table", 8900, 3),
    (3, "Wool Scarf", "Hand knitted", 2900, 0),
]
ORDERS = [(1, 1, "paid", "2026-03-01 10:00:00"), (2, 1, "pending", "2026-03-02 11:30:00")]
LINES = [  # id, order_id, item_id, name, unit_price_cents, quantity
    (1, 1, 1, "Copper Kettle", 2499, 2),
    (2, 1, 2, "Oak Chair", 8900, 1),
    (3, 2, 3, "Wool Scarf", 2900, 4),
]
FILL = [
    "INSERT INTO customers (id, name, email) VALUES (1, 'Ada', 'ada@example.com')",
    "INSERT INTO addresses (id, customer_id, street, city, post_code, country)"
    " VALUES (1, 1, '1 High St', 'Leeds', 'LS1', 'GB')",
    *(
        "INSERT INTO items (id, name, description, price_cents, stock)"
        f" VALUES ({i}, '{name}', '{description}', {price}, {stock})"
        for i, name, description, price, stock in ITEMS
    ),
    *(
        f"INSERT INTO orders (id, customer_id, status, placed_at) VALUES ({i}, {c}, '{s}', '{t}')"
        for i, c, s, t in ORDERS
    ),
    *(
        "INSERT INTO order_lines (id, order_id, item_id, name, unit_price_cents, quantity)"
        f" VALUES ({i}, {o}, {item}, '{name}', {price}, {quantity})"
        for i, o, item, name, price, quantity in LINES
    ),
]
SEQUENCES = [  # PostgreSQL: the rows above were given their ids, as a restored dump's are
    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
    for table in ("customers", "addresses", "items", "orders", "order_lines")
]
ORDERS_AS_THEY_WERE = (
    "SELECT o.id, o.customer_id, o.status, l.id, l.item_id, l.name, l.unit_price_cents,"
    " l.quantity FROM orders o JOIN order_lines l ON l.order_id = o.id ORDER BY l.id"
)


def revision_before(revision: str) -> str:
    script = ScriptDirectory.from_config(alembic_config("unused://"))
    down = script.get_revision(revision).down_revision
    assert isinstance(down, str)
    return down


async def run_sql(url: str, statements: list[str]) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql))]
    finally:
        await engine.dispose()


async def searched(url: str, word: str) -> list[int]:
    """Item ids the full-text index finds for one word, asked in SQL (the app of this
    revision is not the app of the one before)."""
    if url.startswith("sqlite"):
        sql = f"SELECT rowid FROM items_fts WHERE items_fts MATCH '{word}' ORDER BY rowid"
    else:
        sql = (
            "SELECT id FROM items WHERE search_vector @@"
            f" to_tsquery('english', '{word}') ORDER BY id"
        )
    return [row[0] for row in await query(url, sql)]


async def migrate(url: str, revision: str, down: bool = False) -> None:
    action = command.downgrade if down else command.upgrade
    await asyncio.to_thread(action, alembic_config(url), revision)  # alembic runs its own loop


@pytest.fixture
def empty_url(backend: str, tmp_path: Path):
    with fresh_database(backend, tmp_path, migrate=False) as url:
        yield url


async def test_existing_items_go_to_the_default_seller_and_come_back(
    empty_url: str, aiohttp_client
) -> None:
    before = revision_before(SELLERS)
    await migrate(empty_url, before)
    await run_sql(empty_url, FILL + ([] if empty_url.startswith("sqlite") else SEQUENCES))
    orders = await query(empty_url, ORDERS_AS_THEY_WERE)
    items = await query(
        empty_url, "SELECT id, name, description, price_cents, stock FROM items ORDER BY id"
    )
    assert len(orders) == len(LINES)
    assert len(items) == len(ITEMS)
    assert await searched(empty_url, "kettle") == [1]

    await migrate(empty_url, SELLERS)
    assert await query(empty_url, "SELECT id, name, status, commission_bps FROM sellers") == [
        (1, "Marketplace", "active", 0)
    ]
    assert await query(empty_url, "SELECT id, seller_id FROM items ORDER BY id") == [
        (1, 1),
        (2, 1),
        (3, 1),
    ]
    assert await query(empty_url, ORDERS_AS_THEY_WERE) == orders
    assert await searched(empty_url, "kettle") == [1]

    await migrate(empty_url, "head")  # the app of today, on the data of before
    settings = Settings(database_url=empty_url, jwt_secret=TEST_SECRET, pool_size=2)
    app = create_app(settings)
    client = await aiohttp_client(app)
    admin = {"Authorization": f"Bearer {TokenCodec(settings).issue('admin', 'admin')}"}
    found = await (await client.get("/api/v1/items?q=kettle")).json()
    assert [(i["id"], i["seller_id"]) for i in found] == [(1, 1)]
    order = await (await client.get("/api/v1/orders/1", headers=admin)).json()
    assert [(line["item_id"], line["quantity"]) for line in order["lines"]] == [(1, 2), (2, 1)]
    # the triggers work after the rebuild: a new item and a renamed one are found
    new = await client.post(
        "/api/v1/items",
        json={"name": "Steel Kettle", "price": "9.99", "stock": 1},
        headers=admin,
    )
    assert new.status == 201, await new.text()
    renamed = await client.patch("/api/v1/items/2", json={"name": "Oak Kettle"}, headers=admin)
    assert renamed.status == 200
    found = await (await client.get("/api/v1/items?q=kettle&sort=price")).json()
    assert [i["id"] for i in found] == [4, 1, 2]
    placed = await client.post(
        "/api/v1/orders",
        json={"customer_id": 1, "lines": [{"item_id": 1, "quantity": 1}]},
        headers=admin,
    )
    assert placed.status == 201, await placed.text()
    await client.close()

    await migrate(empty_url, before, down=True)
    tables = await query(
        empty_url,
        "SELECT name FROM sqlite_master WHERE name = 'sellers'"
        if empty_url.startswith("sqlite")
        else "SELECT tablename FROM pg_tables WHERE tablename = 'sellers'",
    )
    assert tables == []
    after = await query(
        empty_url, "SELECT id, name, description, price_cents, stock FROM items ORDER BY id"
    )
    assert after[2] == items[2]  # the scarf, untouched
    assert after[0] == (*items[0][:4], items[0][4] - 1)  # the kettle sold one
    assert after[1] == (2, "Oak Kettle", *items[1][2:])
    assert after[3] == (4, "Steel Kettle", "", 999, 1)
    assert (await query(empty_url, ORDERS_AS_THEY_WERE))[: len(LINES)] == orders
    assert await searched(empty_url, "kettle") == [1, 2, 4]  # the FTS triggers are back
    await run_sql(
        empty_url, ["UPDATE items SET name = 'Wool Kettle Cosy' WHERE id = 3"]
    )  # and keep the index in step
    assert await searched(empty_url, "kettle") == [1, 2, 3, 4]

    await migrate(empty_url, "head")  # and up again, with that data
    assert await query(empty_url, "SELECT DISTINCT seller_id FROM items") == [(1,)]
