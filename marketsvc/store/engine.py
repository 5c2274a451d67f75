"""Engine and session factories. Nothing here connects until a session is used."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, make_url
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from marketsvc.settings import Settings
from marketsvc.store import sqlite_adapter
from marketsvc.store.pg_point_reads import PgPointReads
from marketsvc.store.pg_writes import PgWrites
from marketsvc.store.slow_queries import log_slow_query, remember_threshold
from marketsvc.store.sqlite_sync_reads import SqliteSyncReads
from marketsvc.store.sqlite_writer import SqliteWriter

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_S = 30
# A write transaction that ``change``/``change_rows`` join instead of opening their own
# (``Database.joined``: an Idempotency-Key's claim, the change and its answer commit together).
_joined: ContextVar[AsyncSession | None] = ContextVar("joined_write", default=None)


class Database:
    """The one way in to the database: pick the method that says what you want to do.

    - ``read()``: a connection in autocommit for Core point reads (one round trip, no
      BEGIN/ROLLBACK, no ORM session to set up and tear down): on SQLite a synchronous
      connection in the loop thread (``sqlite_sync_reads``), on PostgreSQL one greenlet per
      read (``pg_point_reads``); bounded reads only (point reads, a page of the catalogue).
    - ``scan()``: the same on the async path, for reads that may visit many rows.
    - ``load()``: an ORM session in autocommit, for point reads that load entities.
    - ``stream()``: an ORM session in a transaction, for lists (a server-side cursor lives in one).
    - ``change()``: an ORM session in a write transaction, committed at the end of the block.
    - ``change_rows()``: the same for Core-only writes, on a connection.
    - ``change_with(work, ...)``: a Core-only write given as a function; on SQLite the whole
      transaction runs in the writer thread (``sqlite_writer``), on PostgreSQL in one greenlet
      (``pg_writes``): for hot writes (placement, webhook deliveries).

    On SQLite every change waits its turn: ``change``/``change_rows`` in this process's writer
    queue (``_write_turn``), ``change_with`` in the writer thread's; the sessionmakers are
    private so that no caller can open a write transaction that skips both.
    """

    def __init__(self, settings: Settings, of: Database | None = None) -> None:
        """``of``: the database this one is a ``companion`` of (it shares its SQLite writers)."""
        self.settings = settings
        self.engine = create_engine(settings, background=of is not None)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        stream, writer = transactional(self.engine), transactional(self.engine, immediate=True)
        self._write_engine = writer
        self._load = async_sessionmaker(self.engine, expire_on_commit=False)
        self._stream = async_sessionmaker(stream, expire_on_commit=False)
        self._write = async_sessionmaker(writer, expire_on_commit=False)
        self.sync_reads = _sync_reads(self.engine, settings) if self.is_sqlite else None
        self.pg_reads = (
            None if self.is_sqlite else PgPointReads(self.engine, settings.slow_query_ms)
        )
        self.pg_writes = None if self.is_sqlite else PgWrites(writer)
        self._owns_writers = of is None
        self.sqlite_writer: SqliteWriter | None
        self._writers: asyncio.Lock | None
        if of is not None:
            self._writers, self.sqlite_writer = of._writers, of.sqlite_writer
        else:
            self._writers = asyncio.Lock() if self.is_sqlite else None
            self.sqlite_writer = _sqlite_writer(self.engine, settings) if self.is_sqlite else None

    def load(self) -> AsyncSession:
        """An ORM session in autocommit, for point reads that load entities."""
        return self._load()

    def stream(self) -> AsyncSession:
        """An ORM session whose first statement begins a transaction, for lists."""
        return self._stream()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection | SqliteSyncReads | PgPointReads]:
        """What runs Core point reads (bounded: a row, an order's lines, at most 1000 totals, a
        page of the catalogue).

        SQLite: the loop thread's synchronous connection (``sqlite_sync_reads``), which falls
        back to the async path by itself. PostgreSQL: each statement a pool checkout, the
        statement and the check-in in one greenlet (``pg_point_reads``).
        """
        if (reads := self.sync_reads or self.pg_reads) is not None:
            yield reads
            return
        async with self.scan() as conn:
            yield conn

    @asynccontextmanager
    async def scan(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection for Core reads, in autocommit, off the loop thread.

        ``async with engine.connect()`` closes the connection in a task of its own behind
        ``asyncio.shield`` (so that a cancellation cannot abandon the close halfway), which costs
        every request two extra turns of the event loop. Closing an autocommit connection that
        never began a transaction does no I/O on either driver (no ROLLBACK to send: see
        ``sqlite_adapter``, and asyncpg's adapter skips it), so it cannot be interrupted and
        needs no shield.
        """
        conn = await self.engine.connect()
        try:
            yield conn
        finally:
            await conn.close()

    @asynccontextmanager
    async def change(self) -> AsyncIterator[AsyncSession]:
        """A write transaction, committed when the block ends.

        On SQLite this process's writers first queue on an asyncio lock.

        SQLite has one writer. Without the queue every pooled connection waits for the file lock
        in SQLite's busy handler, which polls with sleeps of up to 100 ms (idle gaps, unfair
        turns) while holding a connection that readers need. With it, one connection per process
        contends for the file lock and the next writer starts the moment the last one commits.
        The wait is bounded like a pool checkout: past ``pool_timeout`` it is a 503.

        Inside ``joined(session)`` it yields that session: the caller's transaction commits it.
        """
        if (joined := _joined.get()) is not None:
            yield joined
            return
        async with self._write_turn(), self._write.begin() as session:
            yield session

    @contextmanager
    def joined(self, session: AsyncSession) -> Iterator[None]:
        """While the block runs (in this task), ``change``/``change_rows`` join ``session``'s
        write transaction (one from ``change()``) rather than open their own."""
        token = _joined.set(session)
        try:
            yield
        finally:
            _joined.reset(token)

    @asynccontextmanager
    async def change_rows(self) -> AsyncIterator[AsyncConnection]:
        """``change`` for Core-only writes: a connection in a transaction, no session.

        After COMMIT or ROLLBACK the close does no I/O (see ``read``); only a transaction still
        open (its COMMIT failed, say) is rolled back under a shield.
        """
        if (joined := _joined.get()) is not None:
            yield await joined.connection()
            return
        async with self._write_turn():
            conn = await self._write_engine.connect()
            try:
                async with conn.begin():
                    yield conn
            finally:
                close = conn.close()
                await (asyncio.shield(close) if conn.in_transaction() else close)

    async def change_with(self, work: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """``await work(conn, *args)`` in a write transaction (Core only), committed when it
        returns, rolled back if it raises; its value.

        On SQLite it runs whole in this worker's writer thread, in a savepoint of a transaction
        shared with the other writes queued there (``sqlite_writer``: the write lock is held for
        SQLite's time, not across turns of a busy event loop, and one COMMIT serves a group).
        On PostgreSQL the whole transaction runs in one greenlet (``pg_writes``). Inside
        ``joined(session)`` it is that session's transaction.
        """
        if (joined := _joined.get()) is not None:
            return await work(await joined.connection(), *args)
        if self.sqlite_writer is not None:
            return await self.sqlite_writer.run(work, *args)
        assert self.pg_writes is not None  # every Database has one of the two
        return await self.pg_writes.run(work, *args)

    @asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[None]:
        if self._writers is None:
            yield
            return
        writer = self.sqlite_writer
        if writer is not None:  # it starts no group while this write waits or runs
            writer.others_writing += 1
        try:
            async with asyncio.timeout(self.settings.pool_timeout):
                await self._writers.acquire()
            try:
                yield
            finally:
                self._writers.release()
        finally:
            if writer is not None:
                writer.others_writing -= 1

    def companion(self, pool_size: int) -> Database:
        """A second, small pool on the same database for background work (relays, senders):
        it never takes a connection a request needs. On SQLite its writes queue with this
        database's (``_write_turn``, the writer thread of ``change_with``), so the two never
        contend for the file lock, and its ``change_with`` writes join the requests' groups."""
        return Database(replace(self.settings, pool_size=pool_size, max_overflow=0), of=self)

    async def dispose(self) -> None:
        if self.sync_reads is not None:
            self.sync_reads.close()
        if self.sqlite_writer is not None and self._owns_writers:
            self.sqlite_writer.close()
        await self.engine.dispose()


def _shared_path(engine: AsyncEngine) -> str | None:
    """The SQLite file another connection can open too (a private in-memory one cannot)."""
    path = engine.url.database
    return None if not path or path == ":memory:" else path


def _sync_reads(engine: AsyncEngine, settings: Settings) -> SqliteSyncReads | None:
    if (path := _shared_path(engine)) is None:
        return None
    return SqliteSyncReads(path, engine, settings.slow_query_ms)


def _sqlite_writer(engine: AsyncEngine, settings: Settings) -> SqliteWriter | None:
    if (path := _shared_path(engine)) is None:
        return None

    def configure(writer: Engine) -> None:
        _configure_sqlite(writer)
        _log_slow_queries(writer.dialect, settings.slow_query_ms, field="database_ms")

    return SqliteWriter.for_path(path, configure, lock_wait_s=settings.pool_timeout)


def ensure_sqlite_directory(database_url: str) -> None:
    """SQLite creates the file but not its folder (``./var/`` is not in a fresh clone)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


BACKGROUND_SERVER_SETTINGS = {  # PostgreSQL: a companion pool's sessions (create_engine)
    "application_name": "marketsvc-background",
    "synchronous_commit": "off",
    "enable_bitmapscan": "off",
    "plan_cache_mode": "force_custom_plan",
}


def create_engine(settings: Settings, background: bool = False) -> AsyncEngine:
    """``background``: for a ``companion``'s pool (relays, senders, leases, retention).

    On PostgreSQL its transactions commit without waiting for the WAL flush
    (``synchronous_commit = off``): each of them may be lost in a server crash, and each is safe
    to lose, since every background write is redone from what committed before it (a lost
    fan-out leaves its events unread by the relay, a lost claim or attempt record leaves the
    delivery to be sent again, a lost lease runs out). A request's transaction keeps waiting for
    its flush. Measured: placement with a webhook subscription, where every event costs three
    background commits, each an fsync the placements queued behind.

    It plans no bitmap scans either (``enable_bitmapscan = off``). A sender's claim walks the
    partial indexes of pending webhook deliveries in order and stops at its limit; those indexes
    keep an entry for every delivery made since the last VACUUM, which an index scan marks dead
    as it passes and a bitmap scan reads every time, and with a young table's statistics (until
    autovacuum's ANALYZE, or never where it is off) the planner took bitmap scans for free: a
    claim read every entry, for each row (tests/test_webhook_claims.py: 411 ms; now 0.3-0.4 ms,
    and 4-6 ms for the first claim after 20,000 deliveries, which marks their entries dead).

    And it plans each statement for its values and the tables as they are (``plan_cache_mode =
    force_custom_plan``), never keeping a plan made for any value. A sender asks for due
    deliveries every second whether there are any or not; the plan PostgreSQL kept after five
    such runs on an empty table (seq scans, 0 rows expected) stayed when the table filled (no
    ANALYZE invalidated it, autovacuum being late or off): 0.4-1.6 s a claim, and deliveries
    stalled behind placements (the benchmark; tests/test_webhook_claims.py reproduces it). The
    price is a planning per statement: 0.2 ms for a claim (a few dozen a second under load),
    tens of microseconds for the simple ones.
    """
    ensure_sqlite_directory(settings.database_url)
    url = make_url(settings.database_url)
    options: dict[str, Any] = {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.pool_timeout,
    }
    if url.get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        engine = create_async_engine(url, module=sqlite_adapter.dbapi(), **options)
        _configure_sqlite(engine.sync_engine)
    else:
        # Autocommit by default, so a point read costs one round trip, not
        # BEGIN/statement/ROLLBACK; sessions that need a transaction ask for one (asyncpg
        # switches isolation on the client, without a round trip).
        options["isolation_level"] = "AUTOCOMMIT"
        options["connect_args"] = {
            # a database that is down must cost a request seconds, not the statement timeout
            "timeout": settings.connect_timeout,
            "command_timeout": settings.statement_timeout,
            "server_settings": (
                BACKGROUND_SERVER_SETTINGS if background else {"application_name": "marketsvc"}
            ),
        }
        engine = create_async_engine(url, **options)
        _replace_connections_the_server_closed(engine)
    _log_slow_queries(engine.dialect, settings.slow_query_ms)
    return engine


def _log_slow_queries(dialect: Dialect, threshold_ms: int, field: str = "round_trip_ms") -> None:
    """Log every statement slower than ``threshold_ms`` with its duration (never its parameters).

    What is timed, and named so in the line:

    - SQLite, ``database_ms``: SQLite's own time for the statement and its rows, measured in
      aiosqlite's thread around the ``sqlite3`` calls (``sqlite_adapter._run``). Waiting for the
      thread or for a busy event loop is not in it; waiting for SQLite's file lock is.
    - PostgreSQL (and a SQLite stream's server-side cursor, whose rows come later),
      ``round_trip_ms``: from handing the statement to the driver until the awaiting code
      resumes with its result: the server's time, the network, and the time the event loop took
      to come back to this request. asyncpg measures nothing closer to the server (its query
      loggers time the same await), so under a busy loop this can exceed the server's time. The
      customer stream (``tuple_streams``) times its statement and first chunk so, on either
      database.
    - SQLite's writer thread (``sqlite_writer``, ``field="database_ms"``): the statement timed
      in that thread, as in aiosqlite's: no event loop in it.

    The timing wraps the dialect's ``do_execute*`` hooks, where SQLAlchemy hands the statement to
    the driver. (``before/after_cursor_execute`` listeners did the same but put every statement
    on SQLAlchemy's event path: some 80 us per point read on SQLite.)
    """
    threshold_s = threshold_ms / 1000
    remember_threshold(dialect, threshold_s)

    def timed(execute: Callable[..., Any]) -> Callable[..., Any]:
        def run(cursor: Any, statement: str, *args: Any) -> Any:
            started = time.perf_counter()
            try:
                return execute(cursor, statement, *args)
            finally:
                named, elapsed = "database_ms", getattr(cursor, "database_seconds", None)
                if elapsed is None:  # not a sqlite_adapter cursor: time the call
                    named, elapsed = field, time.perf_counter() - started
                if elapsed > threshold_s:
                    log_slow_query(named, elapsed, statement)

        return run

    for hook in ("do_execute", "do_executemany", "do_execute_no_params"):
        setattr(dialect, hook, timed(getattr(dialect, hook)))


def _replace_connections_the_server_closed(engine: AsyncEngine) -> None:
    """A restarted PostgreSQL closes every connection; the pool must not hand one out.

    asyncpg notices the closed socket while the connection idles (its protocol reads EOF), so the
    check costs no round trip, unlike ``pool_pre_ping``'s ``SELECT`` on every checkout. Raising
    ``DisconnectionError`` here makes the pool discard the connection and open another. A server
    that vanished without closing its sockets is caught by the failed statement instead: it
    invalidates the pool and the request is a 503 with Retry-After.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _check(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        if driver.is_closed():
            raise DisconnectionError("the server closed this connection")
        # A transaction SQLAlchemy did not start and so did not roll back when the connection
        # came back (the driver's own, of a stream on asyncpg's cursor: store.tuple_streams)
        # would fail the next user's BEGIN ("cannot use Connection.transaction() in a manually
        # started transaction", a 500; a full test run saw it after a HEAD on the customer
        # list, about one run in six of that test alone). Discarded, the server rolls it back.
        if driver.is_in_transaction():
            raise DisconnectionError("a transaction was left open on this connection")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # autocommit; see transactional()
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()


def transactional(engine: AsyncEngine, immediate: bool = False) -> AsyncEngine:
    """``engine`` (autocommit, from ``create_engine``) for work that needs a transaction.

    PostgreSQL: READ COMMITTED (asyncpg switches on the client, no round trip). SQLite: a
    ``BEGIN`` (``BEGIN IMMEDIATE`` for writers: two processes must never both read and then
    try to upgrade to the write lock, which fails at once whatever the busy timeout), emitted by
    a ``begin`` listener on this derived engine only. Kept off the base engine, the listener
    would put every statement of every point read on SQLAlchemy's event path (callgrind: 650k
    instead of 475k instructions per read).
    """
    if engine.dialect.name != "sqlite":
        return engine.execution_options(isolation_level="READ COMMITTED")
    derived = engine.execution_options()
    _begin_with(derived.sync_engine, "BEGIN IMMEDIATE" if immediate else "BEGIN")
    return derived


def _begin_with(engine: Engine, begin: str) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)
