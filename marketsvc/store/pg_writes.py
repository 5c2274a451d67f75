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
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy import Executable, Result
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util.concurrency import greenlet_spawn

from marketsvc.store.write_work import run_to_end

T = TypeVar("T")
Params = dict[str, Any] | list[dict[str, Any]] | None


class PgWriteConnection:
    """What ``work`` is handed: ``execute`` and ``scalar`` as on an ``AsyncConnection``, run by
    the synchronous connection underneath, in the transaction's greenlet."""

    __slots__ = ("_conn", "dialect")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.dialect: Dialect = conn.dialect

    async def execute(self, stmt: Executable, params: Params = None) -> Result[*tuple[Any, ...]]:
        return self._conn.execute(stmt, params)

    async def scalar(self, stmt: Executable, params: dict[str, Any] | None = None) -> Any:
        return self._conn.execute(stmt, params).scalar()


class PgWrites:
    """``run(work, *args)``: ``work(conn, *args)`` in one transaction, in one greenlet."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sync: Engine = engine.sync_engine
        self.ran = 0  # transactions run here (tests check that placements do)

    async def run(self, work: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        value: T = await greenlet_spawn(self._transaction, work, args)
        return value

    def _transaction(self, work: Callable[..., Coroutine[Any, Any, T]], args: tuple[Any, ...]) -> T:
        self.ran += 1
        with self._sync.begin() as conn:  # COMMIT when ``work`` returns, ROLLBACK if it raises
            return run_to_end(work(PgWriteConnection(conn), *args))
