"""PostgreSQL writes given as a function (``Database.change_with``), in one greenlet.

Why: SQLAlchemy's asyncio API runs every call on a connection in a greenlet of its own
(``greenlet_spawn``): the checkout, BEGIN, each statement, COMMIT and the check-in, seven for a
placement. On Python 3.11 each new greenlet also maps a fresh frame stack for its first Python
frame and unmaps it when it ends (``_PyThreadState_BumpFramePointerSlow``, seen with
``strace -k``; ``strace -c``: 8 ``mmap``/``munmap`` pairs a placement, none in the raw asyncpg
baseline). Here the whole transaction is one synchronous function on the sync engine under one
``greenlet_spawn``, as ``AsyncConnection.run_sync`` runs one: ``work`` is the same coroutine
function, handed a ``PgWriteConnection`` whose ``execute`` answers at once (each statement's
wait for the server leaves the greenlet, as on the async path), driven by
``write_work.run_to_end`` as on SQLite's writer thread, so a ``work`` that awaits anything else
raises there too. The pool,
its checkout listener, the timeouts, the errors and their outage classification are
SQLAlchemy's and asyncpg's own.

Measured gain, a 3-line placement: in-process, 1,000 one after the other, alternating three
pairs: CPU 2,047-2,306 -> 1,829-2,087 us (system 275-342 -> 142-244); under
``scripts/bench/run --backends postgresql --routes place_order`` (10,000 customers, 3 runs of
8 s, before / after / before): worker CPU 3,016 and 3,029 -> 2,679 us a placement, 0.42 and
0.47 -> 0.53 of the baseline (``scripts/bench/results/placement-pg-*.md``).
``tests/test_pg_writes.py`` counts the greenlets.

Then, inside that greenlet, a statement seen before (an accessor's module constant or cached
statement, ``writer_statements.WriterStatements.shape``) skips SQLAlchemy's execution layer: it
is compiled once for its parameters' keys and its SQL goes to the DBAPI cursor through
``Connection._cursor_execute``, SQLAlchemy's own way to run SQL it has not just compiled (used for
sequences and defaults): its events, the dialect's ``do_execute`` with the slow-query timer, its
error wrapping (an ``IntegrityError`` with the server's SQLSTATE, say) and the invalidation of a
connection the server dropped are those of every other statement. The adapter's cursor keeps
its transaction (BEGIN before the first statement), its prepared statements and its timeouts.
What is skipped is the execution context, the compiled cache's key walk and the cursor result's
metadata (the rows come back with the keys and result processors of ``compiled_select``).
``text()`` runs so too (the driver describes its rows); an executemany does not. Measured gain,
a 3-line placement, its four statements (callgrind, instructions of the client process, 300
placements through the service): 2.56M -> 1.79M; under ``scripts/bench/run --backends
postgresql --routes place_order`` (10,000 customers, 3 runs of 8 s, before / after / before):
worker CPU 2,922 and 2,187 -> 2,268 us, 0.55 and 0.52 -> 0.61 of the baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy import Executable, Result
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util.concurrency import greenlet_spawn

from marketsvc.store.compiled_select import CompiledSelect
from marketsvc.store.write_work import run_to_end
from marketsvc.store.writer_statements import WriterStatements, Written

T = TypeVar("T")
Params = dict[str, Any] | list[dict[str, Any]] | None


class PgWriteConnection:
    """What ``work`` is handed: ``execute`` and ``scalar`` as on an ``AsyncConnection``, run by
    the synchronous connection underneath, in the transaction's greenlet."""

    __slots__ = ("_conn", "_statements", "dialect")

    def __init__(self, conn: Connection, statements: WriterStatements) -> None:
        self._conn = conn
        self._statements = statements
        self.dialect: Dialect = conn.dialect

    async def execute(self, stmt: Executable, params: Params = None) -> Result[*tuple[Any, ...]]:
        if (
            isinstance(params, dict | None)
            and (shape := self._statements.shape(stmt, params)) is not None
        ):
            self._statements.ran += 1
            return _run_compiled(self._conn, shape, params)
        return self._conn.execute(stmt, params)

    async def scalar(self, stmt: Executable, params: dict[str, Any] | None = None) -> Any:
        return (await self.execute(stmt, params)).scalar()


class PgWrites:
    """``run(work, *args)``: ``work(conn, *args)`` in one transaction, in one greenlet."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sync: Engine = engine.sync_engine
        self.ran = 0  # transactions run here (tests check that placements do)
        self.statements = WriterStatements(engine.dialect, with_text=True)

    async def run(self, work: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        value: T = await greenlet_spawn(self._transaction, work, args)
        return value

    def _transaction(self, work: Callable[..., Coroutine[Any, Any, T]], args: tuple[Any, ...]) -> T:
        self.ran += 1
        with self._sync.begin() as conn:  # COMMIT when ``work`` returns, ROLLBACK if it raises
            return run_to_end(work(PgWriteConnection(conn, self.statements), *args))


def _run_compiled(
    conn: Connection, shape: CompiledSelect, params: dict[str, Any] | None
) -> Result[Any]:
    """``shape``'s SQL on the DBAPI cursor of ``conn``, through ``Connection._cursor_execute``:
    SQLAlchemy's own way to run SQL it did not compile just now (its events, the dialect's
    ``do_execute`` with the slow-query timer, its error wrapping and invalidation of a dead
    connection), without an execution context, a cache-key walk or cursor result metadata."""
    sql, values = shape.query(params or {})
    cursor: Any = conn.connection.cursor()  # the asyncpg adapter's
    try:
        conn._cursor_execute(cursor, sql, values)
        if cursor.description is None:
            return Written(cursor.rowcount)
        if not shape.meta.keys:  # a text(): its columns as the driver describes them
            names = [column[0] for column in cursor.description]
            return IteratorResult(SimpleResultMetaData(names), iter(cursor.fetchall()))
        if not shape.described:  # once per statement: the columns' types
            shape.know_column_types([column[1] for column in cursor.description])
        return shape.result(cursor.fetchall())
    finally:
        cursor.close()
