"""Engine and session factories. Nothing here connects until a session is used."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from marketsvc.settings import Settings

SQLITE_BUSY_TIMEOUT_S = 30


class Database:
    """One engine, two session factories: ``read`` for queries, ``write`` for changes.

    On SQLite a write transaction starts with ``BEGIN IMMEDIATE`` so that two processes never
    both read and then try to upgrade to a write lock (which fails at once, whatever the busy
    timeout); reads start a plain deferred transaction and never block writers under WAL.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        writer = self.engine.execution_options(marketsvc_write=True)
        self.read = async_sessionmaker(self.engine, expire_on_commit=False)
        self.write = async_sessionmaker(writer, expire_on_commit=False)
        self._writers = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[AsyncSession]:
        """``write.begin()``, but on SQLite this process's writers first queue on an asyncio lock.

        SQLite has one writer. Without the queue every pooled connection waits for the file lock
        in SQLite's busy handler, which polls with sleeps of up to 100 ms (idle gaps, unfair
        turns) while holding a connection that readers need. With it, one connection per process
        contends for the file lock and the next writer starts the moment the last one commits.
        The wait is bounded like a pool checkout: past ``pool_timeout`` it is a 503.
        """
        if self._writers is None:
            async with self.write.begin() as session:
                yield session
            return
        async with asyncio.timeout(self.settings.pool_timeout):
            await self._writers.acquire()
        try:
            async with self.write.begin() as session:
                yield session
        finally:
            self._writers.release()

    async def dispose(self) -> None:
        await self.engine.dispose()


def create_engine(settings: Settings) -> AsyncEngine:
    url = make_url(settings.database_url)
    options: dict[str, Any] = {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.pool_timeout,
        "pool_pre_ping": True,
    }
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        engine = create_async_engine(url, **options)
        _configure_sqlite(engine)
        return engine
    options["connect_args"] = {
        "timeout": settings.statement_timeout,
        "command_timeout": settings.statement_timeout,
        "server_settings": {"application_name": "marketsvc"},
    }
    return create_async_engine(url, **options)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("marketsvc_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
