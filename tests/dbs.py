"""Test databases: a migrated SQLite file, and a throwaway PostgreSQL database per test run."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from marketsvc.store.migrate import upgrade
from marketsvc.store.models import Base

POSTGRES_URL = os.environ.get("MARKETSVC_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", "postgresql"]


def asyncpg_url(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


@contextmanager
def fresh_database(backend: str, tmp_dir: Path, migrate: bool = True) -> Iterator[str]:
    """A new, empty database URL (migrated to head unless told not to); dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_dir / f'marketsvc-{uuid.uuid4().hex[:8]}.db'}"
        if migrate:
            upgrade(url)
        yield url
        return
    admin_url = asyncpg_url(POSTGRES_URL)
    name = f"marketsvc_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        if migrate:
            upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


DEFAULT_SELLER = (
    "INSERT INTO sellers (id, name, status, commission_bps, created_at)"
    " VALUES (1, 'Marketplace', 'active', 0, CURRENT_TIMESTAMP)"
)
SELLERS_SEQUENCE = "SELECT setval(pg_get_serial_sequence('sellers', 'id'), 2, false)"


async def empty_tables(url: str) -> None:
    """Remove every row the test committed, so the next test starts from the schema as the
    migrations leave it: no rows but the default seller (id 1), every sequence at its start."""
    if make_url(url).get_backend_name() == "postgresql":
        await _empty_postgresql(url)
        return
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for table in _TABLES:
                await conn.execute(text(f"DELETE FROM {table}"))
            await conn.execute(text(DEFAULT_SELLER))  # as migration 0007 leaves it
    finally:
        await engine.dispose()


_TABLES = [t.name for t in reversed(Base.metadata.sorted_tables)]  # children first
# every sequence back to its start, as RESTART IDENTITY does (setval: no catalogue change)
_RESTART_SEQUENCES = (
    "SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false)"
    " FROM pg_sequences WHERE schemaname = 'public'"
)


async def _empty_postgresql(url: str) -> None:
    """DELETEs and sequence restarts in one script, one round trip: TRUNCATE ... RESTART
    IDENTITY CASCADE of every table took about 190 ms (new files for each table), a tenth of
    the whole suite's time on PostgreSQL; this takes about 20."""
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        deletes = "; ".join(f"DELETE FROM {table}" for table in _TABLES)
        # a script of several statements runs as one transaction (the simple query protocol)
        await conn.execute(f"{deletes}; {_RESTART_SEQUENCES}; {DEFAULT_SELLER}; {SELLERS_SEQUENCE}")
    finally:
        await conn.close()
