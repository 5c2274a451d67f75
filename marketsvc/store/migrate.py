"""Programmatic alembic: upgrade, and the head revision the running code expects."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from marketsvc.store.engine import ensure_sqlite_directory

ROOT = Path(__file__).resolve().parents[2]  # the repository: alembic.ini, migrations/
# pg_advisory_lock key every marketsvc instance migrates under ("market" in ASCII)
MIGRATION_LOCK = 0x6D61726B6574


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``. Call outside a running event loop.

    Instances that start together each call this. On PostgreSQL they take turns under an
    advisory lock, so the first applies each revision and the others find the schema current
    (a lock held by a process that dies goes with its connection). SQLite's file lock
    serialises them already.
    """
    ensure_sqlite_directory(database_url)
    config = alembic_config(database_url)
    if make_url(database_url).get_backend_name() == "postgresql":
        asyncio.run(_upgrade_locked(database_url, config, revision))
    else:
        command.upgrade(config, revision)


async def _upgrade_locked(database_url: str, config: Config, revision: str) -> None:
    engine = create_async_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as lock:
            await lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            try:  # alembic runs its own event loop (migrations/env.py): a thread of its own
                await asyncio.to_thread(command.upgrade, config, revision)
            finally:
                await lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
    finally:
        await engine.dispose()


@functools.cache
def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("unused://"))
    head = script.get_current_head()
    assert head is not None, "no migrations found"
    return head
