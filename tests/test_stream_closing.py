"""Every list accessor's stream, closed after its first chunk (a HEAD, a client gone), closes at
once every async generator of ours it started. One left to the garbage collector would end its
cursor (on PostgreSQL a stream's own read-only transaction) later, on a connection the session
may already have given to another request (tests/test_tuple_streams.py has that 500)."""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any

import pytest

import marketsvc
from marketsvc.db_accessor import customers, items, orders, pets, seller_orders, sellers, users
from marketsvc.db_accessor.item_listing import ItemListing
from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from marketsvc.store.seed import SeedPlan

# the accessors' and the driver streams' generators (the app's background tasks, running beside
# the test, hold generators of their own: Database.scan and read)
PACKAGE = Path(marketsvc.__file__).parent
OURS = (str(PACKAGE / "db_accessor"), str(PACKAGE / "store" / "tuple_streams.py"))
CHUNK = 2
STREAMS: dict[str, Callable[[Any], AsyncGenerator[Any, None]]] = {
    "customers": lambda s: customers.stream_customers(s, chunk_rows=CHUNK),
    "items": lambda s: items.stream_items(s, ItemListing(), chunk_rows=CHUNK),
    "orders": lambda s: orders.stream_orders(s, chunk_rows=CHUNK),
    "a customer's orders": lambda s: orders.stream_customer_orders(
        s, customer_id=1, chunk_rows=CHUNK
    ),
    "seller orders": lambda s: seller_orders.stream_seller_orders(s, chunk_rows=CHUNK),
    "sellers": lambda s: sellers.stream_sellers(s, chunk_rows=CHUNK),
    "users": lambda s: users.stream_users(s, chunk_rows=CHUNK),
    "pets": lambda s: pets.stream_pets(s, chunk_rows=CHUNK),
}


@pytest.mark.parametrize("name", STREAMS)
async def test_a_stream_closed_early_closes_every_generator_it_started(
    seeded_client: Any, settings: Settings, name: str
) -> None:
    await seeded_client(SeedPlan(customers=4, items=8, orders=12, users=4))
    started: list[Any] = []
    hooks = sys.get_asyncgen_hooks()

    def first_iteration(generator: Any) -> None:
        started.append(generator)
        if hooks.firstiter is not None:
            hooks.firstiter(generator)

    database = Database(settings)
    sys.set_asyncgen_hooks(first_iteration, hooks.finalizer)
    try:
        async with database.stream() as session:
            stream = STREAMS[name](session)
            assert await anext(stream)
            await stream.aclose()
            open_ones = [
                g.ag_code.co_qualname
                for g in started
                if g.ag_code.co_filename.startswith(OURS) and g.ag_frame is not None
            ]
    finally:
        sys.set_asyncgen_hooks(*hooks)
        await database.dispose()
    assert len([g for g in started if g.ag_code.co_filename.startswith(OURS)]) >= 2, started
    assert open_ones == []
