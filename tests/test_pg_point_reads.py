"""PostgreSQL point reads run their checkout, statement and check-in in one greenlet
(store/pg_point_reads.py): counted with greenlet's own trace hook while the app answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import greenlet
import pytest

from tests.ordering import place


def _task_name() -> str:
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop in this greenlet
        return ""
    return "" if task is None else task.get_coro().__qualname__


@contextmanager
def greenlet_switches() -> Iterator[list[str]]:
    """The switches made for requests: the app's background tasks (webhook sender, relays,
    backlog gauges) read on their own pool meanwhile and are not counted."""
    seen: list[str] = []

    def trace(event: str, _args: object) -> None:
        if "RequestHandler" in _task_name():
            seen.append(event)

    previous = greenlet.settrace(trace)
    try:
        yield seen
    finally:
        greenlet.settrace(previous)


async def test_a_point_read_is_one_greenlet(backend, client, admin, new_customer, new_item) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL's: SQLite's point reads use no greenlet at all")
    customer, item = await new_customer(), await new_item()
    order = await place(client, admin, customer["id"], (item["id"], 2))
    routes = [
        f"/api/v1/customers/{customer['id']}",
        f"/api/v1/orders/{order['id']}",
        f"/api/v1/orders/{order['id']}/total",
    ]
    for path in routes:
        await client.get(path, headers=admin)  # statement prepared, connection pooled
        with greenlet_switches() as switches:
            resp = await client.get(path, headers=admin)
        assert resp.status == 200
        # into the read's greenlet, out to await asyncpg's answer, back in, and out when done
        # (the async path: checkout, execute and close each a greenlet, 8 switches)
        assert len(switches) == 4, (path, switches)
