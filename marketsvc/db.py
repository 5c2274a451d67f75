"""Engine and session factories. Nothing here connects until a session is used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

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

    async def dispose(self) -> None:
        await self.engine.dispose()


def ensure_sqlite_directory(database_url: str) -> None:
    """SQLite creates the file but not its folder (``./var/`` is not in a fresh clone)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(settings: Settings) -> AsyncEngine:
    ensure_sqlite_directory(settings.database_url)
    url = make_url(settings.database_url)
    options: dict[str, Any] = {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.pool_timeout,
        "pool_pre_ping": True,
    }
    if url.get_backend_name() == "sqlite":
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
