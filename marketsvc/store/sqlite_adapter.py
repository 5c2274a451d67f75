"""SQLAlchemy's aiosqlite adapter with one thread hop per statement instead of four.

aiosqlite runs each call in its connection's thread and wakes the event loop with the answer.
SQLAlchemy's adapter makes four such calls per statement (open a cursor, execute, fetch all,
close) and one more for every COMMIT or ROLLBACK, even when no transaction is open, as after an
autocommit point read and again when the pool resets the connection. Each hop costs a thread
wake-up and a loop turn; while a writer holds SQLite's only write lock, every loop turn between
its statements lengthens everyone's wait.

Here a statement's whole cursor life runs as one call in aiosqlite's thread, and COMMIT/ROLLBACK
skip the hop when SQLite has no transaction open (``sqlite3`` itself does nothing then). The
connection, its thread, its pragmas and every error class are aiosqlite's and SQLAlchemy's own;
pass ``module=dbapi()`` to ``create_async_engine``.

This module is the one place that lists marketsvc's reliance on another library's private names
(its own, and ``sqlite_sync_reads``'). They are listed in ``PRIVATE_NAMES``; ``dbapi()`` checks
them before building the adapter, so an upgrade that drops one stops the service at start-up
with the name, never mid-request, and ``tests/test_library_internals.py`` fails when the
installed versions differ from the ones this was verified with (``VERIFIED_WITH``, pinned in
requirements.txt).
"""

from __future__ import annotations

import collections
import inspect
import sqlite3
import time
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.type_api import TypeEngine

VERIFIED_WITH = {"SQLAlchemy": "2.1.9", "aiosqlite": "0.22.1"}
PRIVATE_NAMES: dict[type, tuple[str, ...]] = {
    AsyncAdapt_aiosqlite_cursor: (
        "_make_new_cursor",  # (connection) -> the cursor object SQLAlchemy reads results off
        "_aenter_cursor",  # (cursor) -> the cursor, entered
        "_execute_async",  # (operation, parameters): the one awaited execute
        "_executemany_async",  # (operation, seq_of_parameters)
        "_awaitable_cursor_close",  # False: our cursor's close() is not awaited
    ),
    AsyncAdapt_aiosqlite_connection: ("_cursor_cls", "_execute_mutex"),
    # (fn, *args): how every aiosqlite method reaches its thread (``_conn``: its sqlite3 connection)
    aiosqlite.Connection: ("_execute",),
    # sqlite_sync_reads: a compiled SELECT's parameters to convert and its columns' (key, name,
    # objects, type); each type's result processor, as SQLAlchemy's cursor results fetch it
    SQLCompiler: ("_bind_processors", "_result_columns"),
    TypeEngine: ("_cached_result_processor",),
}
_ARITY: dict[
    tuple[type, str], int
] = {  # parameters besides self, where a change of signature would break the subclass
    (AsyncAdapt_aiosqlite_cursor, "_execute_async"): 2,
    (AsyncAdapt_aiosqlite_cursor, "_executemany_async"): 2,
    (AsyncAdapt_aiosqlite_cursor, "_make_new_cursor"): 1,
    (AsyncAdapt_aiosqlite_cursor, "_aenter_cursor"): 1,
}


class LibraryInternalsChanged(RuntimeError):
    pass


def check_internals() -> None:
    """Every private name this adapter uses exists, with the arity it is called with."""
    for cls, names in PRIVATE_NAMES.items():
        for name in names:
            where = f"{cls.__module__}.{cls.__qualname__}.{name}"
            if not hasattr(cls, name):
                raise LibraryInternalsChanged(
                    f"marketsvc.store.sqlite_adapter relies on {where}, which the installed "
                    f"version lacks (verified with {VERIFIED_WITH}); re-verify the adapter with "
                    "tests/test_sqlite_adapter.py or pin the verified versions"
                )
            arity = _ARITY.get((cls, name))
            if arity is not None:
                params = list(inspect.signature(getattr(cls, name)).parameters.values())[1:]
                if len(params) != arity:
                    raise LibraryInternalsChanged(
                        f"{where} now takes {len(params)} parameters, not {arity}: "
                        "re-verify marketsvc.store.sqlite_adapter"
                    )


class _Outcome:
    """What SQLAlchemy reads off a cursor after ``execute``, filled in by the thread."""

    __slots__ = ("arraysize", "database_seconds", "description", "lastrowid", "rowcount")

    def __init__(self) -> None:
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1
        self.database_seconds = 0.0

    def close(self) -> None:  # the real cursor is closed in the thread
        pass


def _run(db: sqlite3.Connection, many: bool, sql: str, params: Any, out: _Outcome) -> list[Any]:
    """In aiosqlite's thread: one cursor, start to finish.

    ``out.database_seconds`` is SQLite's own time for the statement and its rows (the execute
    and the fetch, in this thread): no wait for the thread or for the event loop in it.
    """
    started = time.perf_counter()
    cursor = db.cursor()
    try:
        if many:
            cursor.executemany(sql, params)
        elif params is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, params)
        out.description = cursor.description
        out.rowcount = cursor.rowcount
        out.lastrowid = cursor.lastrowid
        return cursor.fetchall() if out.description else []
    finally:
        cursor.close()
        out.database_seconds = time.perf_counter() - started


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()
    _awaitable_cursor_close = False

    def _make_new_cursor(self, connection: Any) -> Any:
        return _Outcome()

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor

    @property
    def database_seconds(self) -> float:
        """SQLite's own time for the last statement (see ``_run``), for the slow-query log."""
        return cast(_Outcome, self._cursor).database_seconds

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._hop(False, operation, parameters)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> None:
        await self._hop(True, operation, seq_of_parameters)

    async def _hop(self, many: bool, operation: Any, parameters: Any) -> None:
        # SQLAlchemy types the driver connection as a protocol; this dialect's is aiosqlite's
        conn = cast(aiosqlite.Connection, self._connection)
        async with self._adapt_connection._execute_mutex:
            # Connection._execute is how every aiosqlite method reaches its thread; it is private
            # and unannotated, hence the ignore (tests/test_sqlite_adapter.py guards the reliance)
            rows = await conn._execute(  # type: ignore[no-untyped-call]
                _run, conn._conn, many, operation, parameters, self._cursor
            )
        self._rows = collections.deque(rows)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor

    def commit(self) -> None:
        if self._connection._connection and self._connection.in_transaction:
            super().commit()

    def rollback(self) -> None:
        if self._connection._connection and self._connection.in_transaction:
            super().rollback()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)


def dbapi() -> OneHopDBAPI:
    check_internals()
    return OneHopDBAPI(aiosqlite, sqlite3)
