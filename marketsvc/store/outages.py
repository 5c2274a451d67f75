"""Which failures mean "the database is away", by exception type: the one table of them.

``classify`` looks through SQLAlchemy's wrapper (``DBAPIError.orig``) and the asyncpg adapter's
emulated DBAPI error (``.orig`` again) down to the driver's own exception and matches its type
(and, for sqlite3, its SQLite result code) against ``OUTAGE_TYPES``. Anything it does not name is
``None``: a bug, which the errors middleware logs and answers with 500.
"""

from __future__ import annotations

import sqlite3
from enum import Enum

from asyncpg import exceptions as pg
from sqlalchemy import exc as sa_exc


class Outage(Enum):
    UNAVAILABLE = "unavailable"  # down, restarting, refusing, full: nothing was done
    TIMEOUT = "timeout"  # a statement or a wait ran out of time; its transaction rolled back
    NOT_MIGRATED = "not migrated"  # the schema is missing: the same 503 as /readyz


OUTAGE_TYPES: tuple[tuple[type[BaseException], Outage], ...] = (
    # PostgreSQL, by asyncpg's class per SQLSTATE (the classes are the sqlstates' own families)
    (pg.QueryCanceledError, Outage.TIMEOUT),  # 57014: statement_timeout, pg_cancel_backend
    (pg.OperatorInterventionError, Outage.UNAVAILABLE),  # 57P01 admin shutdown (-m fast or
    # immediate), 57P02 crash shutdown, 57P03 "the database system is shutting down/starting up"
    (pg.PostgresConnectionError, Outage.UNAVAILABLE),  # 08xxx: ConnectionDoesNotExistError
    # ("connection was closed in the middle of operation"), ConnectionFailureError, rejections
    (pg.InsufficientResourcesError, Outage.UNAVAILABLE),  # 53300 TooManyConnectionsError, 53100
    # disk full, 53200 out of memory
    (pg.TransactionRollbackError, Outage.UNAVAILABLE),  # 40001/40P01: serialization, deadlock:
    # the transaction rolled back whole, a retry is safe
    (pg.UndefinedTableError, Outage.NOT_MIGRATED),  # 42P01
    # The pool: no connection came free within pool_timeout.
    (sa_exc.TimeoutError, Outage.TIMEOUT),
    # Sockets and timers: asyncpg's command_timeout and connect timeout, the SQLite writer queue's
    # wait (TimeoutError, an OSError: so listed first); refused, reset, unreachable (OSError).
    (TimeoutError, Outage.TIMEOUT),
    (OSError, Outage.UNAVAILABLE),
)

# SQLite tells failures apart by result code (``sqlite_errorcode``, Python 3.11+), not by class:
# sqlite3.OperationalError is both "database is locked" and a syntax error. Primary codes:
SQLITE_OUTAGE_CODES = {
    5: Outage.TIMEOUT,  # SQLITE_BUSY "database is locked": the busy timeout ran out
    6: Outage.TIMEOUT,  # SQLITE_LOCKED "database table is locked"
    8: Outage.UNAVAILABLE,  # SQLITE_READONLY "attempt to write a readonly database"
    10: Outage.UNAVAILABLE,  # SQLITE_IOERR "disk I/O error" (and its extended codes)
    11: Outage.UNAVAILABLE,  # SQLITE_CORRUPT "database disk image is malformed"
    13: Outage.UNAVAILABLE,  # SQLITE_FULL "database or disk is full"
    14: Outage.UNAVAILABLE,  # SQLITE_CANTOPEN "unable to open database file"
    15: Outage.UNAVAILABLE,  # SQLITE_PROTOCOL "locking protocol"
    26: Outage.UNAVAILABLE,  # SQLITE_NOTADB "file is not a database"
}
SQLITE_ERROR = 1  # the generic code: a missing table shares it with every syntax error
SQLITE_NO_TABLE = "no such table:"  # sqlite3's only sign of it: "no such table: items"


def classify(exc: BaseException) -> Outage | None:
    """What kind of outage ``exc`` is, or ``None`` when it is not one (a bug: 500)."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return Outage.UNAVAILABLE  # SQLAlchemy saw the connection die (asyncpg: is_closed())
    driver = driver_error(exc)
    if isinstance(driver, sqlite3.Error):
        return _sqlite(driver)
    for kind, outage in OUTAGE_TYPES:
        if isinstance(driver, kind):
            return outage
    # asyncpg raises a bare InterfaceError, no subclass, when a closed connection is used; its
    # wording (asyncpg/connection.py, _check_open): "cannot perform operation: connection is closed"
    if isinstance(driver, pg.InterfaceError) and "connection is closed" in str(driver):
        return Outage.UNAVAILABLE
    return None


def driver_error(exc: BaseException) -> BaseException:
    """The driver's own exception under SQLAlchemy's wrapper and the asyncpg adapter's."""
    while isinstance(exc, sa_exc.DBAPIError | sa_exc.EmulatedDBAPIException):
        if exc.orig is None:
            break
        exc = exc.orig
    return exc


def _sqlite(error: sqlite3.Error) -> Outage | None:
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return None
    if code & 0xFF == SQLITE_ERROR:
        return Outage.NOT_MIGRATED if str(error).startswith(SQLITE_NO_TABLE) else None
    return SQLITE_OUTAGE_CODES.get(code & 0xFF)
