"""A named feed consumer is followed by one process at a time (db_accessor.consumers)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from marketsvc.db_accessor import consumers
from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from marketsvc.store.models import utcnow

LEASE = timedelta(seconds=30)


@pytest.fixture
async def databases(settings: Settings) -> AsyncIterator[list[Database]]:
    """Two processes' worth of engines on one database (separate pools, separate locks)."""
    dbs = [Database(dataclasses.replace(settings)) for _ in range(2)]
    yield dbs
    for db in dbs:
        await db.dispose()


async def claim(db: Database, owner: str, **kwargs) -> tuple[int, int] | None:
    async with db.change_rows() as conn:
        return await consumers.claim(conn, "relay", owner, kwargs.pop("lease", LEASE), **kwargs)


async def advance(db: Database, owner: str, position: tuple[int, int]) -> bool:
    async with db.change_rows() as conn:
        return await consumers.advance(conn, "relay", owner, position)


async def where(db: Database) -> tuple[int, int] | None:
    async with db.read() as conn:
        return await consumers.position(conn, "relay")


async def test_of_claimers_racing_exactly_one_wins(databases: list[Database]) -> None:
    for round_ in range(5):
        name = f"round-{round_}"

        async def race(db: Database, owner: str, name: str = name) -> tuple[int, int] | None:
            async with db.change_rows() as conn:
                return await consumers.claim(conn, name, owner, LEASE)

        results = await asyncio.gather(*(race(databases[i % 2], f"worker-{i}") for i in range(6)))
        assert [r for r in results if r is not None] == [(0, 0)], results


async def test_the_owner_renews_and_advances_others_are_refused(
    databases: list[Database],
) -> None:
    a, b = databases
    assert await claim(a, "a") == (0, 0)
    assert await claim(b, "b") is None
    assert await advance(a, "a", (7, 3))
    assert await claim(a, "a") == (7, 3)  # renewal by the owner
    assert not await advance(b, "b", (9, 9))  # a non-owner's advance changes nothing
    assert await where(a) == (7, 3)


async def test_an_expired_lease_hands_over_from_the_last_advanced_position(
    databases: list[Database],
) -> None:
    a, b = databases
    assert await claim(a, "a", lease=timedelta(seconds=5)) == (0, 0)
    assert await advance(a, "a", (4, 2))
    assert await claim(b, "b", now=utcnow() + timedelta(seconds=2)) is None  # still running
    # "a" crashed: no renewal; once its lease has run out "b" takes over where "a" stood
    assert await claim(b, "b", now=utcnow() + timedelta(seconds=6)) == (4, 2)
    assert not await advance(a, "a", (8, 8))  # "a" woke up: too late
    assert await claim(a, "a") is None
    assert await where(a) == (4, 2)


async def test_a_released_consumer_is_claimed_at_once(databases: list[Database]) -> None:
    a, b = databases
    assert await claim(a, "a") == (0, 0)
    assert await advance(a, "a", (1, 1))
    async with a.change_rows() as conn:
        await consumers.release(conn, "relay", "a")
    assert await claim(b, "b") == (1, 1)
    assert not await advance(a, "a", (2, 2))


async def test_an_advance_rolled_back_with_its_work_leaves_the_position(
    databases: list[Database],
) -> None:
    a, _ = databases
    assert await claim(a, "a") == (0, 0)

    async def work_that_fails() -> None:
        async with a.change_rows() as conn:
            assert await consumers.advance(conn, "relay", "a", (5, 5))
            raise RuntimeError("the work failed")

    with pytest.raises(RuntimeError):
        await work_that_fails()
    assert await where(a) == (0, 0)
