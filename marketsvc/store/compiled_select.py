"""A Core SELECT compiled once for its dialect, run on the driver's own connection.

``Database.read()``'s two executors (``sqlite_sync_reads``, ``pg_point_reads``) hand the driver
the compiled SQL and its values in order, and wrap the driver's rows in a SQLAlchemy ``Result``
with the keys and values the async path gives: bind processors applied to the parameters (a
datetime to SQLite's text form, say), result processors to the columns. What they skip is
SQLAlchemy's execution layer per statement (the execution context, the compiled cache's key
walk, the DBAPI cursor adapter, the cursor's result metadata), which costs several times the
database's own work for a point read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Executable, Result, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.type_api import _ResultProcessorType

MAX_SHAPES = 256  # statements built per call would otherwise grow the cache for ever


class Unsupported(Exception):
    """A statement or parameters compiled here cannot run (SQLAlchemy's own path does)."""


class CompiledSelect:
    """One statement compiled for a dialect, ready to run with a dict of parameters."""

    __slots__ = (
        "converters",
        "defaults",
        "described",
        "dialect",
        "expanding",
        "meta",
        "names",
        "processors",
        "sql",
        "types",
    )

    def __init__(
        self, stmt: Executable, dialect: Dialect, compiled: SQLCompiler | None = None
    ) -> None:
        """``compiled``: ``stmt`` compiled for ``dialect`` already (an INSERT, UPDATE or DELETE
        comes compiled for its parameters' keys: ``writer_statements``)."""
        if compiled is None:
            if not isinstance(stmt, Select):  # text(): its columns are known only from the cursor
                raise Unsupported("only SELECTs of Core constructs")
            compiled = stmt.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler)  # a Select's, always
        if compiled.positiontup is None:
            raise Unsupported("positional parameters")
        # parameters to convert as SQLAlchemy would (a datetime to SQLite's text form, say)
        self.converters: dict[str, Callable[[Any], Any]] = {}
        for name, convert in compiled._bind_processors.items():
            if not callable(convert):  # a tuple type's, one per element
                raise Unsupported("tuple parameters")
            self.converters[name] = convert
        self.sql = compiled.string
        self.names = list(compiled.positiontup)
        binds = compiled.binds
        self.defaults = {n: binds[n].effective_value for n in self.names if not binds[n].required}
        self.expanding = {n for n in self.names if binds[n].expanding}
        if self.expanding and dialect.paramstyle != "qmark":
            raise Unsupported("an IN list with numbered parameters")  # they would be renumbered
        columns = compiled._result_columns
        self.dialect = dialect
        self.types = [c[3] for c in columns]
        self.meta = SimpleResultMetaData([c[0] for c in columns])
        # (column index, processor) of the columns that have one, or None if none has
        self.processors: list[tuple[int, _ResultProcessorType[Any]]] | None = None
        # PostgreSQL's result processors depend on the type each column comes back as (a
        # Numeric as float or numeric, say): known once the driver has described the statement
        self.described = dialect.name != "postgresql"
        if self.described:
            self.know_column_types([None] * len(columns))

    def know_column_types(self, coltypes: Sequence[Any]) -> None:
        """The result processors, given the driver's type of each column (or ``None``s)."""
        processors = [
            (i, p)
            for i, (t, c) in enumerate(zip(self.types, coltypes, strict=True))
            if (p := t._cached_result_processor(self.dialect, c)) is not None
        ]
        self.processors = processors or None
        self.described = True

    def query(self, params: dict[str, Any]) -> tuple[str, list[Any]]:
        """The SQL and its positional values; an expanding IN gets one ``?`` per value."""
        values: list[Any] = []
        sql = self.sql
        converters = self.converters
        for name in self.names:
            value = params[name] if name in params else self.defaults[name]
            convert = converters.get(name)
            if name in self.expanding:
                if not value:
                    raise Unsupported("an empty IN list")  # SQLAlchemy renders a special form
                sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join("?" * len(value)), 1)
                values.extend(value if convert is None else map(convert, value))
            else:
                values.append(value if convert is None else convert(value))
        return sql, values

    def rows(self, rows: list[Any]) -> list[Any]:
        """The driver's rows with the columns' result processors applied, if any has one."""
        if (processors := self.processors) is None:
            return rows
        processed = []
        for row in rows:  # most columns have no processor: convert only those that do
            values = list(row)
            for i, process in processors:
                values[i] = process(values[i])
            processed.append(tuple(values))
        return processed

    def result(self, rows: list[Any]) -> Result[*tuple[Any, ...]]:
        return IteratorResult(self.meta, iter(self.rows(rows)))


class CompiledSelects:
    """Statements compiled once each, by identity (and the keys of the parameters they were
    compiled for: ``writer_statements``' DML): the cached statement objects of the accessors.
    A statement is held while its entry lives, so its id stays its own."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._shapes: dict[tuple[int, tuple[str, ...]], tuple[Executable, CompiledSelect | None]]
        self._shapes = {}

    def get(self, stmt: Executable, keys: tuple[str, ...] = ()) -> CompiledSelect | None:
        """``stmt`` compiled, or ``None`` if it cannot be (then SQLAlchemy's path runs it)."""
        held, shape = self._shapes.get((id(stmt), keys)) or (None, None)
        if held is stmt:
            return shape
        if len(self._shapes) >= MAX_SHAPES:
            self._shapes.clear()
        try:
            shape = self.compile(stmt, keys)
        except Unsupported:
            shape = None
        self._shapes[(id(stmt), keys)] = (stmt, shape)
        return shape

    def compile(self, stmt: Executable, keys: tuple[str, ...]) -> CompiledSelect:
        """``Unsupported`` if it cannot run on the driver."""
        return CompiledSelect(stmt, self.dialect)
