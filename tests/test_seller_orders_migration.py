"""Migration 0008 on a database that holds orders from before it: one seller order per (order,
seller), statuses mapped, each line tied to its part with its seller's rate; and back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from marketsvc.store.migrate import alembic_config
from tests.dbs import fresh_database

BEFORE = [
    "INSERT INTO sellers (id, name, status, commission_bps, created_at)"
    " VALUES (2, 'Second', 'active', 1250, CURRENT_TIMESTAMP)",
    "INSERT INTO customers (id, name, email) VALUES (1, 'Ada', 'ada@example.com')",
    # items 1 and 2 belong to the default seller (1, 0 bps), item 3 to seller 2
    "INSERT INTO items (id, name, description, price_cents, stock, seller_id)"
    " VALUES (1, 'Kettle', '', 1000, 5, 1), (2, 'Mug', '', 333, 5, 1),"
    " (3, 'Lamp', '', 108, 5, 2)",
    "INSERT INTO orders (id, customer_id, status, placed_at) VALUES"
    " (1, 1, 'pending', '2026-01-01 10:00:00'), (2, 1, 'paid', '2026-01-02 10:00:00'),"
    " (3, 1, 'shipped', '2026-01-03 10:00:00'), (4, 1, 'delivered', '2026-01-04 10:00:00'),"
    " (5, 1, 'cancelled', '2026-01-05 10:00:00')",
    "INSERT INTO order_lines (id, order_id, item_id, name, unit_price_cents, quantity) VALUES"
    " (1, 1, 1, 'Kettle', 1000, 1), (2, 1, 3, 'Lamp', 108, 1),"
    " (3, 2, 1, 'Kettle', 1000, 2), (4, 2, 2, 'Mug', 333, 1), (5, 2, 3, 'Lamp', 108, 5),"
    " (6, 3, 3, 'Lamp', 108, 1), (7, 4, 2, 'Mug', 333, 3), (8, 5, 1, 'Kettle', 1000, 1),"
    " (9, 5, 3, 'Lamp', 100, 1)",
]
PARTS = """
SELECT s.order_id, s.seller_id, s.status, s.refund_cents, s.carrier
FROM seller_orders s ORDER BY s.order_id, s.seller_id
"""
LINES = """
SELECT l.id, s.order_id, s.seller_id, l.commission_bps, l.commission_cents
FROM order_lines l JOIN seller_orders s ON s.id = l.seller_order_id
WHERE s.order_id = l.order_id ORDER BY l.id
"""


@pytest.fixture
def empty_url(backend: str, tmp_path: Path):
    with fresh_database(backend, tmp_path, migrate=False) as url:
        yield url


async def _statements(url: str, *statements: str) -> list[list[tuple]]:
    """Run each in one transaction; the rows of each (none for a change)."""
    engine = create_async_engine(url, poolclass=NullPool)
    results = []
    try:
        async with engine.begin() as conn:
            for statement in statements:
                result = await conn.execute(text(statement))
                results.append([tuple(row) for row in result.all()] if result.returns_rows else [])
    finally:
        await engine.dispose()
    return results


def _run(url: str, *statements: str) -> list[list[tuple]]:
    return asyncio.run(_statements(url, *statements))


def test_orders_from_before_get_their_seller_orders_and_lose_them_again(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "0007_sellers")
    _run(empty_url, *BEFORE)
    command.upgrade(config, "0008_seller_orders")
    [parts, lines] = _run(empty_url, PARTS, LINES)
    assert parts == [
        (1, 1, "pending", 0, None),
        (1, 2, "pending", 0, None),
        (2, 1, "awaiting_acceptance", 0, None),
        (2, 2, "awaiting_acceptance", 0, None),
        (3, 2, "shipped", 0, None),
        (4, 1, "delivered", 0, None),
        (5, 1, "cancelled", 0, None),
        (5, 2, "cancelled", 0, None),
    ]
    # seller 1 takes 0 bps; seller 2 12.5 %, half-even per line: 1.08 -> 13.5 -> 14 cents,
    # 5.40 -> 67.5 -> 68, 1.00 -> 12.5 -> 12
    assert lines == [
        (1, 1, 1, 0, 0), (2, 1, 2, 1250, 14), (3, 2, 1, 0, 0), (4, 2, 1, 0, 0),
        (5, 2, 2, 1250, 68), (6, 3, 2, 1250, 14), (7, 4, 1, 0, 0), (8, 5, 1, 0, 0),
        (9, 5, 2, 1250, 12),
    ]  # fmt: skip
    # the new statuses exist now, and go back to ones 0007 knows on the way down
    _run(
        empty_url,
        "UPDATE orders SET status = 'partially_shipped' WHERE id = 2",
        "UPDATE orders SET status = 'refused' WHERE id = 3",
    )
    command.downgrade(config, "0007_sellers")
    [orders, columns_left] = _run(
        empty_url,
        "SELECT id, status FROM orders ORDER BY id",
        "SELECT id, order_id, item_id, quantity FROM order_lines ORDER BY id",
    )
    assert orders == [(1, "pending"), (2, "paid"), (3, "cancelled"), (4, "delivered"),
                      (5, "cancelled")]  # fmt: skip
    assert len(columns_left) == 9
    command.upgrade(config, "head")  # and up again, from the same rows
    [parts] = _run(empty_url, PARTS)
    assert len(parts) == 8
