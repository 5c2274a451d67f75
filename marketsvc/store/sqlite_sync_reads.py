"""SQLite point reads on one synchronous ``sqlite3`` connection per worker, in the loop thread.

Why: a point read through the async path pays a pool checkout and check-in, SQLAlchemy's
greenlet bridge and a hop to aiosqlite's thread and back (a thread wake-up, a GIL hand-over and
a loop turn), all to run a statement SQLite answers in a few microseconds from its page cache.
Here ``Database.read()`` runs the same Core statement on a ``sqlite3`` connection held open by this
worker, in the event-loop thread. Each statement is compiled by SQLAlchemy's SQLite compiler once
(``compiled_select``: its SQL, its parameters in order, the result processors of its columns, as
the async path would apply them) and its rows come back as a SQLAlchemy ``Result`` of ``Row``s
with the same keys and values the async path gives. Not a sync SQLAlchemy ``Connection``: its
execution context, cache-key walk and cursor metadata cost 3-5 times the SQLite work itself per
point read
(in-process micro-benchmark: customer 138 us against 55 us, order 367 against 142).

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
  lines, at most 1000 totals) and pages of the catalogue (a search reads a page of index
  entries, not every match: ``item_listing``). Reads that may visit many rows (the event feed's
  filtered pages) use ``Database.scan()``, which stays on the async path, off the loop thread.
- A budget, for what is bounded in rows but not in work (a search whose words are in many
  items, of which the filters keep few): a statement still running ``LOOP_BUDGET_S`` after it
  began is interrupted by SQLite's progress handler (checked every ``PROGRESS_STEPS`` virtual
  machine instructions; FTS5's own index reads are one instruction each) and runs again on the
  async path. The loop thread is held that long at most, and once per such read.

Measured gain: instructions per request (``scripts/bench/instructions.py``, callgrind) GET customer
1,087k -> 749k, GET order 1,326k -> 978k; worker CPU per request under wrk (2 workers, 32
connections, a loaded machine) customer 442 -> 207 us, order 610 -> 268 us, total 512 -> 197 us.
A catalogue search page (issue 18's benchmark: 100k items, 2 workers, 16 connections):
worker CPU 2,349 -> 832 us per request, p50 18.4 -> 7.0 ms (with rows instead of entities; in
process, 850 -> 130 us a page: the thread hop under 16 concurrent reads was most of it).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import Executable, Result
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from marketsvc.store.compiled_select import CompiledSelects, Unsupported
from marketsvc.store.slow_queries import log_slow_query

# The longest a read holds the loop thread before it moves off it: above every bounded read's
# own time (a page of the catalogue takes 0.1-0.3 ms, 1000 totals about 4 ms), far below a scan's.
LOOP_BUDGET_S = 0.02
PROGRESS_STEPS = 1000  # VM instructions between two looks at the clock (some 20-50 us)
Params = dict[str, Any] | list[dict[str, Any]] | None


class SyncReadStats:
    """How often each path ran (tests assert the sync path is taken and the fallback works)."""

    __slots__ = ("fell_back", "in_loop", "over_budget")

    def __init__(self) -> None:
        self.in_loop = 0
        self.fell_back = 0  # every read run again on the async path, over budget included
        self.over_budget = 0


class SqliteSyncReads:
    """The point-read executor ``Database.read()`` hands out on SQLite (one per worker)."""

    def __init__(self, database_path: str, fallback: AsyncEngine, slow_query_ms: int) -> None:
        self._path = database_path
        self._fallback = fallback
        self.dialect: Dialect = fallback.dialect
        self._slow_s = slow_query_ms / 1000
        self._db: sqlite3.Connection | None = None
        self._deadline = 0.0  # when the statement running in the loop thread must stop
        self._shapes = CompiledSelects(self.dialect)
        self.stats = SyncReadStats()

    async def execute(self, stmt: Executable, params: Params = None) -> Result[*tuple[Any, ...]]:
        """``stmt`` on the loop thread's connection; on any database error, on the async path."""
        try:
            if not isinstance(params, dict | None):
                raise Unsupported("executemany")
            if (shape := self._shapes.get(stmt)) is None:
                raise Unsupported("a statement this module does not run")
            sql, values = shape.query(params or {})
            db = self._db or self.connection()
            started = time.perf_counter()
            self._deadline = started + LOOP_BUDGET_S
            rows = db.execute(sql, values).fetchall()
            elapsed = time.perf_counter() - started
        except Unsupported:
            return await self._execute_async(stmt, params)
        except sqlite3.Error as error:
            self._after_failure(error)
            return await self._execute_async(stmt, params)
        self.stats.in_loop += 1
        if elapsed > self._slow_s:
            log_slow_query("database_ms", elapsed, sql)
        return shape.result(rows)

    async def scalar(self, stmt: Executable, params: Params = None) -> Any:
        return (await self.execute(stmt, params)).scalar()

    def connection(self) -> sqlite3.Connection:
        """The loop thread's connection, opened when first needed."""
        if self._db is None:
            db = sqlite3.connect(self._path, timeout=0, isolation_level=None)
            try:
                db.execute("PRAGMA query_only = ON")
                db.set_progress_handler(self._over_budget, PROGRESS_STEPS)
            except sqlite3.Error:
                db.close()
                raise
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _over_budget(self) -> bool:
        """SQLite's progress handler: true interrupts the statement (SQLITE_INTERRUPT)."""
        return time.perf_counter() > self._deadline

    def _after_failure(self, error: sqlite3.Error) -> None:
        self.stats.fell_back += 1
        code = getattr(error, "sqlite_errorcode", None)
        if code is not None and code & 0xFF == sqlite3.SQLITE_INTERRUPT:
            self.stats.over_budget += 1
            return  # the connection is sound: the statement ran past its budget
        if code is not None and code & 0xFF == sqlite3.SQLITE_BUSY:
            return  # the connection is sound: only this statement had to wait
        self.close()  # a replaced file, say: the next read opens the path again

    async def _execute_async(self, stmt: Executable, params: Params) -> Result[*tuple[Any, ...]]:
        conn = await self._fallback.connect()
        try:
            return await conn.execute(stmt, params)
        finally:
            await conn.close()
