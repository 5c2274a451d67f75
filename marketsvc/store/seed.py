"""Deterministic demo data, inserted in bulk: COPY on PostgreSQL, executemany on SQLite."""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, NoReturn

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tqdm import tqdm

from marketsvc.settings import Settings
from marketsvc.store.engine import create_engine, transactional
from marketsvc.store.models import ORDER_STATUSES, Base, UTCDateTime, commission_of

BATCH = 20_000
FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Linus",
    "Guido",
    "Frances",
    "Ken",
    "Radia",
    "Tim",
    "Hedy",
    "Dennis",
    "Katherine",
    "Ívar",
    "Zoë",
    "Søren",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Torvalds",
    "van Rossum",
    "Allen",
    "Thompson",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "Ritchie",
    "Øster",
]
STREETS = [
    "High Street",
    "Station Road",
    "Church Lane",
    "Mill Road",
    "Kingsway",
    "Rue de Rivoli",
    "Hauptstraße",
    "Calle Mayor",
    "Via Roma",
    "Main Street",
]
CITIES = [
    ("London", "GB"),
    ("Leeds", "GB"),
    ("Paris", "FR"),
    ("Berlin", "DE"),
    ("Madrid", "ES"),
    ("Rome", "IT"),
    ("Dublin", "IE"),
    ("Boston", "US"),
    ("Oslo", "NO"),
    ("Turku", "FI"),
]
# Item names and descriptions: enough words (a few accented) that searching is worth trying.
GOODS = [
    "Kettle",
    "Lamp",
    "Chair",
    "Notebook",
    "Teapot",
    "Backpack",
    "Umbrella",
    "Headphones",
    "Mug",
    "Blanket",
    "Bicycle bell",
    "Desk",
    "Candle",
    "Scarf",
    "Clock",
    "Espresso cup",
    "Café au lait bowl",
    "Crème brûlée dish",
    "Sauté pan",
    "Fondue set",
    "Piñata",
    "Vase",
    "Rug",
    "Cutting board",
    "Water bottle",
    "Bookshelf",
    "Cushion",
    "Coffee grinder",
    "Wine glass",
    "Jalapeño jar",
]
ADJECTIVES = [
    "Blue",
    "Small",
    "Large",
    "Vintage",
    "Modern",
    "Rustic",
    "Handmade",
    "Nordic",
    "Bouclé",
    "Matte",
    "Glazed",
    "Folding",
    "Naïve",
    "Art déco",
]
MATERIALS = [
    "oak",
    "walnut",
    "steel",
    "copper",
    "brass",
    "wool",
    "linen",
    "ceramic",
    "porcelain",
    "glass",
    "marble",
    "bamboo",
    "cork",
    "terracotta",
    "velvet",
    "rattan",
]
FEATURES = [
    "dishwasher safe",
    "made by hand in Portugal",
    "for a small kitchen",
    "at home in a café or a studio",
    "with a soft matte finish",
    "from recycled glass and steel",
    "a gift for tea lovers",
    "keeps drinks hot for twelve hours",
    "folds flat for travel",
    "with a naïve hand-painted pattern",
    "smooth as crème caramel",
    "built to last a lifetime",
    "in the Scandinavian tradition",
    "as seen in the Montréal showroom",
]
PETS = ["Rex", "Mittens", "Bubbles", "Nibbles", "Biscuit", "Pepper", "Luna", "Ziggy", "Mochi"]
STATUS_WEIGHTS = (30, 25, 20, 15, 10)
COMMISSIONS_BPS = (500, 800, 1000, 1250, 1500)


@dataclass(frozen=True)
class SeedPlan:
    sellers: int = 5
    customers: int = 100
    items: int = 50
    orders: int = 300
    users: int = 20
    pets_per_user: int = 3
    lines_per_order: int = 3
    random_seed: int = 1


async def seed(settings: Settings, plan: SeedPlan, progress: bool | None = None) -> dict[str, int]:
    """Append ``plan``'s rows after whatever the database already holds; returns row counts."""
    engine = create_engine(settings)
    rng = random.Random(plan.random_seed)
    show = sys.stderr.isatty() if progress is None else progress
    counts: dict[str, int] = {}
    try:
        # a writer from the start (SQLite: BEGIN IMMEDIATE): a running service may write too
        async with transactional(engine, immediate=True).begin() as conn:
            tables = (
                *("sellers", "customers", "addresses", "items", "orders", "order_lines"),
                "seller_orders",
                *("users", "pets"),
            )
            start = {t: await _max_id(conn, t) for t in tables}
            s_ids = range(start["sellers"] + 1, start["sellers"] + plan.sellers + 1)
            c_ids = range(start["customers"] + 1, start["customers"] + plan.customers + 1)
            i_ids = range(start["items"] + 1, start["items"] + plan.items + 1)
            o_ids = range(start["orders"] + 1, start["orders"] + plan.orders + 1)
            u_ids = range(start["users"] + 1, start["users"] + plan.users + 1)
            all_customers = range(1, c_ids.stop)
            bar = tqdm(total=_total(plan), unit="rows", disable=not show, desc="seeding")
            with bar:
                writer = _Writer(conn, bar)
                counts["sellers"] = await writer.insert("sellers", _sellers(rng, s_ids))
                counts["customers"] = await writer.insert("customers", _customers(rng, c_ids))
                counts["addresses"] = await writer.insert(
                    "addresses", _addresses(rng, c_ids, start["addresses"])
                )
                # the new sellers, or whichever there are: items go round them in turn
                item_sellers = s_ids or range(1, start["sellers"] + 1)
                if plan.items and not item_sellers:
                    raise ValueError("items need a seller")
                counts["items"] = await writer.insert("items", _items(rng, i_ids, item_sellers))
                catalogue = (await conn.execute(text(CATALOGUE))).all()
                if plan.orders and (not all_customers or len(catalogue) < plan.lines_per_order):
                    raise ValueError("orders need customers and at least lines-per-order items")
                for key in ("orders", "seller_orders", "order_lines"):
                    counts[key] = 0
                next_ids = {"seller_orders": start["seller_orders"], "order_lines":
                            start["order_lines"]}  # fmt: skip
                for chunk in _chunks(o_ids, BATCH):
                    orders, parts, lines = _orders_with_parts(
                        rng, chunk, all_customers, catalogue, plan.lines_per_order, next_ids
                    )
                    for table, rows in (("orders", orders), ("seller_orders", parts),
                                        ("order_lines", lines)):  # fmt: skip
                        counts[table] += await writer.insert(table, iter(rows))
                counts["users"] = await writer.insert("users", _users(rng, u_ids))
                pets = _pets(rng, u_ids, plan.pets_per_user, start["pets"])
                counts["pets"] = await writer.insert("pets", pets)
            await _reset_sequences(conn)
        await _analyze(engine)
    finally:
        await engine.dispose()
    return counts


def _total(plan: SeedPlan) -> int:
    return (
        plan.sellers
        + 2 * plan.customers
        + plan.items
        + plan.orders * (1 + plan.lines_per_order)
        + plan.users * (1 + plan.pets_per_user)
    )


class _Writer:
    def __init__(self, conn: AsyncConnection, bar: tqdm[NoReturn]) -> None:
        self.conn = conn
        self.bar = bar
        self.postgres = conn.dialect.name == "postgresql"

    async def insert(self, table: str, rows: Iterator[tuple[Any, ...]]) -> int:
        """Insert ``rows`` in batches; the next batch is generated while the last one is written."""
        columns = [c.name for c in Base.metadata.tables[table].columns]
        timestamps = [
            i
            for i, c in enumerate(Base.metadata.tables[table].columns)
            if isinstance(c.type, UTCDateTime)
        ]
        count, pending = 0, None
        while batch := list(islice(rows, BATCH)):
            if timestamps and not self.postgres:
                batch = [_sqlite_timestamps(row, timestamps) for row in batch]
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(self._write(table, columns, batch))
            count += len(batch)
        if pending is not None:
            await pending
        return count

    async def _write(self, table: str, columns: list[str], batch: list[tuple[Any, ...]]) -> None:
        if self.postgres:
            raw = (await self.conn.get_raw_connection()).driver_connection
            assert raw is not None  # a checked-out connection has its driver's (asyncpg's)
            await raw.copy_records_to_table(table, records=batch, columns=columns)
        else:
            marks = ", ".join("?" * len(columns))
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
            await self.conn.exec_driver_sql(sql, batch)
        self.bar.update(len(batch))


def _sqlite_timestamps(row: tuple[Any, ...], positions: list[int]) -> tuple[Any, ...]:
    """SQLite stores UTCDateTime as naive UTC text, exactly as the model's type writes it."""
    values = list(row)
    for i in positions:
        values[i] = values[i].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return tuple(values)


async def _max_id(conn: AsyncConnection, table: str) -> int:
    return (await conn.scalar(text(f"SELECT COALESCE(MAX(id), 0) FROM {table}"))) or 0


async def _reset_sequences(conn: AsyncConnection) -> None:
    if conn.dialect.name != "postgresql":
        return
    for table, columns in ((t.name, t.c) for t in Base.metadata.sorted_tables):
        if "id" not in columns:  # keyed by something else (event_sequences)
            continue
        await conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )
        )


async def _analyze(engine: AsyncEngine) -> None:
    """Fresh planner statistics: without them PostgreSQL sorts a bulk-loaded table before
    streaming the first row instead of walking its primary key."""
    async with engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()


def _customers(rng: random.Random, ids: range) -> Iterator[tuple[Any, ...]]:
    names = [f"{first} {last}" for first in FIRST for last in LAST]
    pick = rng.random
    for i in ids:
        yield (i, names[int(pick() * len(names))], f"customer{i}@example.com")


def _addresses(rng: random.Random, ids: range, address_id: int) -> Iterator[tuple[Any, ...]]:
    pick = rng.random
    for i in ids:
        address_id += 1
        city, country = CITIES[int(pick() * len(CITIES))]
        flat = str(1 + int(pick() * 40)) if pick() < 0.3 else None
        if country == "GB":
            post_code = f"LS{1 + int(pick() * 28)} {1 + int(pick() * 9)}AB"
        else:
            post_code = f"{int(pick() * 100_000):05d}"
        street = f"{1 + int(pick() * 300)} {STREETS[int(pick() * len(STREETS))]}"
        yield (address_id, i, street, flat, city, post_code, country)


def _sellers(rng: random.Random, ids: range) -> Iterator[tuple[Any, ...]]:
    joined = datetime(2025, 6, 1, tzinfo=UTC)
    for i in ids:
        name = f"{rng.choice(LAST)} {rng.choice(GOODS)} Shop #{i}"
        yield (i, name, "active", rng.choice(COMMISSIONS_BPS), joined + timedelta(days=i % 180))


def _items(rng: random.Random, ids: range, sellers: range) -> Iterator[tuple[Any, ...]]:
    """Round-robin over ``sellers``: any few random items mostly come from two or more."""
    pick = rng.choice
    for n, i in enumerate(ids):
        good, material = pick(GOODS), pick(MATERIALS)
        name = f"{pick(ADJECTIVES)} {material} {good.lower()} #{i}"
        description = (
            f"A {good.lower()} in {material} and {pick(MATERIALS)}, {pick(FEATURES)}; "
            f"{pick(FEATURES)}."
        )
        seller_id = sellers[n % len(sellers)]
        yield (i, name, description, rng.randint(99, 25_000), rng.randint(50, 5_000), seller_id)


# each item with its seller and that seller's commission rate now
CATALOGUE = (
    "SELECT i.id, i.name, i.price_cents, i.seller_id, s.commission_bps"
    " FROM items i JOIN sellers s ON s.id = i.seller_id ORDER BY i.id"  # the order sampled from
)
# an order's status -> its seller orders'
PART_STATUS = {"paid": "awaiting_acceptance"}
CARRIERS = ("DHL", "UPS", "Royal Mail", "La Poste")


def _chunks(ids: range, size: int) -> Iterator[range]:
    for first in range(ids.start, ids.stop, size):
        yield range(first, min(first + size, ids.stop))


def _orders_with_parts(
    rng: random.Random,
    ids: range,
    customers: range,
    catalogue: Sequence[Any],
    per_order: int,
    next_ids: dict[str, int],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Orders, their seller orders (one per seller of their lines) and their lines, as rows;
    ``next_ids``: the last seller order and line ids used, advanced."""
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    orders, parts, lines = [], [], []
    for order_id in ids:
        status = rng.choices(ORDER_STATUSES, STATUS_WEIGHTS)[0]
        placed = epoch + timedelta(seconds=rng.randint(0, 300 * 86_400))
        orders.append((order_id, rng.choice(customers), status, placed))
        part_of: dict[int, int] = {}
        for item_id, name, price_cents, seller_id, bps in rng.sample(catalogue, per_order):
            if seller_id not in part_of:
                next_ids["seller_orders"] += 1
                part_of[seller_id] = next_ids["seller_orders"]
                part_status = PART_STATUS.get(status, status)
                shipped = part_status in ("shipped", "delivered")
                carrier = rng.choice(CARRIERS) if shipped else None
                tracking = f"TR{rng.randint(10**9, 10**10 - 1)}" if shipped else None
                parts.append((part_of[seller_id], order_id, seller_id, part_status, carrier,
                              tracking, 0, placed, placed))  # fmt: skip
            next_ids["order_lines"] += 1
            quantity = rng.randint(1, 5)
            commission = commission_of(price_cents, quantity, bps)
            lines.append((next_ids["order_lines"], order_id, item_id, name, price_cents, quantity,
                          part_of[seller_id], bps, commission))  # fmt: skip
    return orders, parts, lines


def _users(rng: random.Random, ids: range) -> Iterator[tuple[Any, ...]]:
    for i in ids:
        yield (i, f"{rng.choice(FIRST)} {rng.choice(LAST)}")


def _pets(
    rng: random.Random, users: range, per_user: int, pet_id: int
) -> Iterator[tuple[Any, ...]]:
    for user_id in users:
        for _ in range(per_user):
            pet_id += 1
            yield (pet_id, rng.choice(PETS), user_id)
