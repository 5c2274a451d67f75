"""SQLite point reads on one synchronous ``sqlite3`` connection per worker, in the loop thread.

Why: a point read through the async path pays a pool checkout and check-in, SQLAlchemy's
greenlet bridge and a hop to aiosqlite's thread and back (a thread wake-up, a GIL hand-over and
a loop turn), all to run a statement SQLite answers in a few microseconds from its page cache.
Here ``Database.read()`` runs the same Core statement, compiled by SQLAlchemy (its compiled cache:
once per statement shape), on a sync ``Connection`` held open by this worker, in the event-loop
thread, and hands back the same ``CursorResult`` the accessors read today.

Why it is safe:

- WAL: a reader never blocks a writer and a writer never blocks a reader, so a read in the loop
  thread does not wait for aiosqlite's writers. Each statement is its own read transaction
  (autocommit), so it sees every commit made before it, by this worker or another.
- ``PRAGMA query_only``: this connection cannot write, whatever it is handed.
- ``busy_timeout`` 0: when SQLite would make a reader wait (another connection in
  ``locking_mode=EXCLUSIVE``, a WAL recovery, a database not yet in WAL), the statement fails at
  once with SQLITE_BUSY instead of blocking the loop, and runs again on the async path, which
  waits in aiosqlite's thread as before. Any other failure (a replaced file, a missing table)
  also runs again there, so errors and outages look exactly as they did; the connection is then
  closed and opened afresh on the next read (an open connection keeps a replaced file).
- Only bounded reads come here: ``Database.read()`` is for point reads (one row, one order's
  lines, at most 1000 totals). Reads that may visit many rows (the event feed's filtered pages)
  use ``Database.scan()``, which stays on the async path, off the loop thread.

Measured gain (callgrind, ``scripts/bench/instructions.py``, in the commit that added this file):
see the README's Benchmarks section.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

from sqlalchemy import CursorResult, Executable, create_engine, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

slow_log = logging.getLogger("marketsvc.db.slow")
SQLITE_BUSY = 5


class SyncReadStats:
    """How often each path ran (tests assert the sync path is taken and the fallback works)."""

    __slots__ = ("fell_back", "in_loop")

    def __init__(self) -> None:
        self.in_loop = 0
        self.fell_back = 0


class SqliteSyncReads:
    """The point-read executor ``Database.read()`` hands out on SQLite (one per worker)."""

    def __init__(self, database_path: str, fallback: AsyncEngine, slow_query_ms: int) -> None:
        self.engine = create_engine(
            f"sqlite:///{database_path}",
            poolclass=NullPool,  # one connection, held here; reopened after a failure
            isolation_level="AUTOCOMMIT",
            connect_args={"timeout": 0},
        )
        event.listen(self.engine, "connect", _read_only)
        self._fallback = fallback
        self._slow_s = slow_query_ms / 1000
        self._conn: Connection | None = None
        self.dialect: Dialect = self.engine.dialect
        self.stats = SyncReadStats()

    async def execute(
        self, stmt: Executable, params: dict[str, Any] | list[dict[str, Any]] | None = None
    ) -> CursorResult[*tuple[Any, ...]]:
        """``stmt`` on the loop thread's connection; on any database error, on the async path."""
        try:
            conn = self._conn or self._connect()
            started = time.perf_counter()
            result = conn.execute(stmt, params)
            elapsed = time.perf_counter() - started
        except (DBAPIError, sqlite3.Error) as error:
            self._after_failure(error)
            return await self._execute_async(stmt, params)
        self.stats.in_loop += 1
        if elapsed > self._slow_s:
            slow_log.warning(
                "slow query",
                extra={
                    "database_ms": round(elapsed * 1000, 1),
                    "statement": result.context.statement[:500],
                },
            )
        return result

    async def scalar(
        self, stmt: Executable, params: dict[str, Any] | list[dict[str, Any]] | None = None
    ) -> Any:
        return (await self.execute(stmt, params)).scalar()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.engine.dispose()

    def _connect(self) -> Connection:
        self._conn = self.engine.connect()
        return self._conn

    def _after_failure(self, error: DBAPIError | sqlite3.Error) -> None:
        self.stats.fell_back += 1
        busy = getattr(getattr(error, "orig", error), "sqlite_errorcode", None)
        if busy is not None and busy & 0xFF == SQLITE_BUSY:
            return  # the connection is sound: only this statement had to wait
        if self._conn is not None:
            self._conn.invalidate()
            self._conn.close()
            self._conn = None

    async def _execute_async(
        self, stmt: Executable, params: dict[str, Any] | list[dict[str, Any]] | None
    ) -> CursorResult[*tuple[Any, ...]]:
        conn = await self._fallback.connect()
        try:
            return await conn.execute(stmt, params)
        finally:
            await conn.close()


def _read_only(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA query_only = ON")
