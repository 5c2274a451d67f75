"""The SQLite writer's statements run on ``sqlite3`` itself, each compiled once.

(``WriterStatements.shape``, which statements are compiled and for which keys, also serves
PostgreSQL's writes: ``pg_writes`` runs them on the asyncpg adapter's cursor, ``text()`` too.)

Why: in the writer thread a placement spent some 600-1,050 us of CPU holding SQLite's one write
lock, of which SQLite's own work was about 250 us; the rest was SQLAlchemy's execution layer around
each of its five statements (the execution context, parameter and result set-up, the cursor
adapter). Placements are serialised by that lock, so its hold time is what bounds them.
Here ``WriterConnection.execute`` hands a statement the accessors build once (a module constant
or a ``functools.cache`` entry) to ``compiled_select`` compiled for its parameters' keys, and runs
the SQL on the transaction's ``sqlite3`` connection: the same SQL, the parameters converted by
the same bind processors, the RETURNING rows by the same result processors, a failure raised as
the ``sqlalchemy.exc`` error SQLAlchemy would raise. Measured gain: a 3-line placement's CPU in
the writer thread, in process on a copy of the benchmark's database (300 placements rolled
back, two runs each, alternating), 600-635 -> 390-420 us; under ``scripts/bench/run`` (2 workers,
32 connections), placement 587-619 -> 806-947 req/s, 0.55-0.58 -> 0.78-0.81 of the baseline.

What runs here, and what does not (SQLAlchemy's own path runs it, unchanged):

- a statement object seen for the second time: one built per call is never compiled here (its
  compilation would cost more than SQLAlchemy's cache lookup of its shape);
- INSERT, UPDATE and DELETE without Python-side column defaults to compute (the accessors pass
  every value), and SELECTs; with a list of parameter sets, one ``executemany`` (or, with
  RETURNING, one statement per set, in order);
- not ``text()`` (on SQLite), not an expanding IN with an empty list, not a tuple-typed
  parameter.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import Delete, Executable, Insert, Result, Select, TextClause, Update
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from marketsvc.store.compiled_select import CompiledSelect, CompiledSelects, Unsupported
from marketsvc.store.slow_queries import log_slow_query, threshold_of

MAX_SEEN = 512  # statement objects seen once, held so that their ids stay theirs
Params = dict[str, Any] | list[dict[str, Any]] | None
NO_COLUMNS = SimpleResultMetaData([])


class Written(IteratorResult[Any]):
    """The result of a statement without RETURNING: no rows, how many it changed."""

    def __init__(self, rowcount: int) -> None:
        super().__init__(NO_COLUMNS, iter(()))
        self.rowcount = rowcount


class _WriterShapes(CompiledSelects):
    """DML too, compiled for the keys of its parameters; ``text()`` if ``with_text``."""

    def __init__(self, dialect: Dialect, with_text: bool) -> None:
        super().__init__(dialect)
        self.kinds: tuple[type, ...] = (Insert, Update, Delete, Select)
        if with_text:
            self.kinds += (TextClause,)

    def compile(self, stmt: Executable, keys: tuple[str, ...]) -> CompiledSelect:
        if not isinstance(stmt, self.kinds) or not isinstance(stmt, ClauseElement):
            raise Unsupported("text() or another construct")
        try:
            compiled = stmt.compile(dialect=self.dialect, column_keys=list(keys))
        except Exception as exc:  # whatever it is, SQLAlchemy's own path raises it, as before
            raise Unsupported("does not compile for these keys") from exc
        assert isinstance(compiled, SQLCompiler)
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise Unsupported("Python-side column defaults")
        shape = CompiledSelect(stmt, self.dialect, compiled)
        rest = shape.sql
        for name in shape.expanding:
            rest = rest.replace(f"__[POSTCOMPILE_{name}]", "")
        if "__[POSTCOMPILE_" in rest:
            raise Unsupported("a value rendered into the SQL at execution")
        return shape


class WriterStatements:
    """The writer thread's compiled statements, and running them."""

    def __init__(self, dialect: Dialect, with_text: bool = False) -> None:
        """``with_text``: ``text()`` statements too (``pg_writes``: the driver describes their
        rows, if any; ``sqlite3`` does not say which of its values are which type)."""
        self.slow_s = threshold_of(dialect)  # the engine's, set before the writer is made
        self._seen: dict[int, Executable] = {}
        self._shapes = _WriterShapes(dialect, with_text)
        self.ran = 0  # statements run here (tests check that placements do)

    def shape(self, stmt: Executable, params: Params) -> CompiledSelect | None:
        """``stmt`` compiled for ``params``' keys, or None: SQLAlchemy's path runs it."""
        if isinstance(params, list) and not params:
            return None
        if self._seen.get(id(stmt)) is not stmt:  # the first sighting of this object
            if len(self._seen) >= MAX_SEEN:
                self._seen.clear()
            self._seen[id(stmt)] = stmt
            return None
        first = params[0] if isinstance(params, list) else params
        return self._shapes.get(stmt, tuple(first or ()))

    def run(self, driver: sqlite3.Connection, shape: CompiledSelect, params: Params) -> Result[Any]:
        """``shape`` with ``params`` on ``driver`` (the writer's transaction); ``Unsupported``
        before anything ran if it cannot run here."""
        returning = bool(shape.meta.keys)
        if isinstance(params, list) and shape.expanding:
            raise Unsupported("executemany with an IN list")  # its SQL differs set by set
        # every set's SQL and values first: an Unsupported comes before anything ran
        if isinstance(params, list):
            sets = [shape.query(one) for one in params]
            sql, values = sets[0]
        else:
            sets = []
            sql, values = shape.query(params or {})
        started = time.perf_counter()
        try:
            if sets and returning:  # one statement per set: the rows come back in their order
                rows = []
                for sql, values in sets:
                    rows.extend(driver.execute(sql, values).fetchall())
            elif sets:
                cursor = driver.executemany(sql, [v for _, v in sets])
            else:
                cursor = driver.execute(sql, values)
                if returning:
                    rows = cursor.fetchall()
        except sqlite3.Error as error:
            raise DBAPIError.instance(sql, values, error, sqlite3.Error) from error
        if (elapsed := time.perf_counter() - started) > self.slow_s:
            log_slow_query("database_ms", elapsed, sql)
        self.ran += 1
        return shape.result(rows) if returning else Written(cursor.rowcount)
