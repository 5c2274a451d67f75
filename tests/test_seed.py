"""Demo data: deterministic per seed, appended after existing rows, usable by the API at once."""

from __future__ import annotations

import asyncio
import dataclasses

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from marketsvc.store.models import ORDER_STATUSES
from marketsvc.store.seed import SeedPlan, seed
from tests.dbs import fresh_database

PLAN = SeedPlan(customers=40, items=12, orders=60, users=5, pets_per_user=2, random_seed=7)
TABLES = ("customers", "addresses", "items", "orders", "order_lines", "users", "pets")


async def dump(url: str) -> dict[str, list[tuple]]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        rows = {
            t: [tuple(r) for r in await conn.execute(text(f"SELECT * FROM {t} ORDER BY id"))]
            for t in TABLES
        }
        seeded = text("SELECT * FROM sellers WHERE id > 1 ORDER BY id")  # 1: the migration's
        rows["sellers"] = [tuple(r) for r in await conn.execute(seeded)]
    await engine.dispose()
    return rows


def test_same_seed_gives_the_same_rows(settings, backend, tmp_path) -> None:
    asyncio.run(seed(settings, PLAN, progress=False))
    first = asyncio.run(dump(settings.database_url))
    with fresh_database(backend, tmp_path) as other_url:
        other = dataclasses.replace(settings, database_url=other_url)
        asyncio.run(seed(other, PLAN, progress=False))
        assert asyncio.run(dump(other_url)) == first
        asyncio.run(seed(other, dataclasses.replace(PLAN, random_seed=8), progress=False))
        different = asyncio.run(dump(other_url))
    assert different["customers"][:40] == first["customers"]  # appended after, not replaced
    assert len(different["customers"]) == 80
    assert different["customers"][40:] != first["customers"]


async def test_seeded_data_covers_every_order_status_and_pet_owners(settings) -> None:
    counts = await seed(settings, dataclasses.replace(PLAN, orders=400), progress=False)
    assert counts["order_lines"] == 400 * PLAN.lines_per_order
    rows = await dump(settings.database_url)
    assert {order[2] for order in rows["orders"]} == set(ORDER_STATUSES)
    assert all(pet[2] is not None for pet in rows["pets"])


async def test_api_creates_after_seeded_ids(client, admin, settings) -> None:
    await seed(settings, PLAN, progress=False)
    resp = await client.post(
        "/api/v1/items", json={"name": "New", "price": "1.00", "stock": 1}, headers=admin
    )
    assert (await resp.json())["id"] == PLAN.items + 1


async def test_items_go_round_the_sellers_so_most_orders_span_two_or_three(settings) -> None:
    plan = dataclasses.replace(PLAN, sellers=5, items=50, orders=200)
    counts = await seed(settings, plan, progress=False)
    assert counts["sellers"] == 5
    engine = create_async_engine(settings.database_url)
    async with engine.connect() as conn:
        counted = text("SELECT seller_id, COUNT(*) FROM items GROUP BY seller_id")
        per_seller = {seller: n for seller, n in await conn.execute(counted)}
        parts = (
            await conn.execute(
                text(
                    "SELECT COUNT(DISTINCT i.seller_id) FROM order_lines l"
                    " JOIN items i ON i.id = l.item_id GROUP BY l.order_id"
                )
            )
        ).scalars()
        spans = [int(n) for n in parts]
        sellers = (await conn.execute(text("SELECT id, status FROM sellers ORDER BY id"))).all()
    await engine.dispose()
    assert [tuple(s) for s in sellers] == [(i, "active") for i in range(1, 7)]  # 1: default
    assert per_seller == {2: 10, 3: 10, 4: 10, 5: 10, 6: 10}
    assert len(spans) == 200
    assert sum(n >= 2 for n in spans) > 0.8 * len(spans)
    assert set(spans) <= {1, 2, 3}


async def test_seeding_without_new_sellers_uses_the_ones_there_are(settings) -> None:
    await seed(settings, dataclasses.replace(PLAN, sellers=0), progress=False)
    engine = create_async_engine(settings.database_url)
    async with engine.connect() as conn:
        owners = (await conn.execute(text("SELECT DISTINCT seller_id FROM items"))).all()
    await engine.dispose()
    assert [tuple(o) for o in owners] == [(1,)]
