"""SQLite write transactions run whole in one thread of this worker's own, committed in groups.

Why: SQLite has one write lock per database file. On the async path a transaction holds it from
``BEGIN IMMEDIATE`` to ``COMMIT`` across one thread hop per statement, and each hop waits for the
event loop to come round to this request again; under load the loop is busy with every other
request, so a five-statement placement held the lock for some 2.7 ms of which SQLite's own work
was a tenth, and placements from both workers queued behind each other's loop turns
(``scripts/bench/run``: 322 placements/s against the limit baseline's 1,161, the workers' CPUs
half idle). Here ``Database.change_with(work, ...)`` hands the write to this worker's writer
thread, which runs it with no event loop in between, and runs every write that queued meanwhile
in the same transaction, each inside a savepoint of its own (group commit): one ``BEGIN
IMMEDIATE`` and one ``COMMIT`` (SQLite's WAL append, the costly part) per group, not per write.

What each caller sees is unchanged: its ``work`` ran alone as far as it can tell (a savepoint
rolls back exactly what it did when it raises, and the others go on), and it is answered only
after the group's ``COMMIT``; if that ``COMMIT`` fails, every write of the group gets the error.

How ``work`` runs: it is the same ``async def work(conn, ...)`` the PostgreSQL path awaits,
written against accessors that ``await execute(conn, stmt)``. Handed a ``WriterConnection``,
whose ``execute`` is a plain call on a synchronous SQLAlchemy ``Connection`` behind an
``async def``, such a coroutine never suspends: ``write_work.run_to_end`` drives it with one
``send``. If ``work`` ever awaits something that really suspends (a sleep, a network call) it is
a bug: its savepoint rolls back and ``WriteSuspended`` names it (tested). Statements, types, errors
and constraint failures are SQLAlchemy's and ``sqlite3``'s own (the sync pysqlite dialect is the
one aiosqlite's derives from), so accessors and the error middleware see what they saw before.

Measured gain (``scripts/bench/run``, quiet machine): placement 0.22 -> 0.65 of the limit
baseline's req/s, 874 placements/s at 1,388 us of worker CPU each (8b5d403; 2,645 us before).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Executable, Result, create_engine, event
from sqlalchemy.engine import Connection, Dialect, Engine

from marketsvc.store.compiled_select import Unsupported
from marketsvc.store.write_work import run_to_end
from marketsvc.store.writer_statements import WriterStatements

T = TypeVar("T")
Params = dict[str, Any] | list[dict[str, Any]] | None
Work = Callable[..., Coroutine[Any, Any, Any]]
GROUP_MAX = 64  # writes per transaction at most
CHECKPOINT_EVERY = 32  # writes between WAL checkpoints
WAL_RESTART_FRAMES = 8192  # a WAL longer than this (32 MB of 4 KB pages) is started over, emptied
log = logging.getLogger(__name__)


class WriterConnection:
    """What ``work`` is handed in the writer thread: ``execute`` and ``scalar`` as on an
    ``AsyncConnection``, answered at once: on ``sqlite3`` itself for the statements
    ``writer_statements`` runs, else by the synchronous SQLAlchemy connection underneath."""

    __slots__ = ("_conn", "_driver", "_statements", "dialect")

    def __init__(self, conn: Connection, driver: Any, statements: WriterStatements) -> None:
        self._conn = conn
        self._driver: sqlite3.Connection = driver  # the transaction's own
        self._statements = statements
        self.dialect: Dialect = conn.dialect

    async def execute(self, stmt: Executable, params: Params = None) -> Result[*tuple[Any, ...]]:
        if (shape := self._statements.shape(stmt, params)) is not None:
            with contextlib.suppress(Unsupported):
                return self._statements.run(self._driver, shape, params)
        return self._conn.execute(stmt, params)

    async def scalar(self, stmt: Executable, params: dict[str, Any] | None = None) -> Any:
        return (await self.execute(stmt, params)).scalar()


@dataclass
class _Write:
    work: Work
    args: tuple[Any, ...]
    context: contextvars.Context
    future: asyncio.Future[Any]
    value: Any = None
    error: BaseException | None = None


@dataclass
class WriterStats:
    """What the writer did (tests assert that each mechanism is exercised)."""

    writes: int = 0
    transactions: int = 0
    largest_group: int = 0
    lock_retries: int = 0
    checkpoints: int = 0
    restarts: int = 0  # WALs emptied
    deferred: int = 0  # 0.2 ms waits while this process's other writers had their turn
    groups_lost: int = 0  # a COMMIT or a savepoint that failed: every write of the group erred


class SqliteWriter:
    """One synchronous connection and the one thread that uses it, per ``Database``; and a
    second thread that checkpoints the WAL off the write path."""

    def __init__(self, engine: Engine, path: str, lock_wait_s: float) -> None:
        self.engine = engine
        self._path = path
        self._lock_wait_s = lock_wait_s
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._checkpoints: queue.SimpleQueue[bool | None] = queue.SimpleQueue()
        self._checkpointer: threading.Thread | None = None
        self._since_checkpoint = 0
        self._truncate_wanted = False
        self._closed = False
        self.others_writing = 0  # this process's async-path writers waiting or writing
        self.stats = WriterStats()
        self.statements = WriterStatements(engine.dialect)
        event.listen(engine, "connect", self._on_connect)
        event.listen(engine, "begin", self._begin_when_free)

    @classmethod
    def for_path(
        cls, path: str, configure: Callable[[Engine], None], lock_wait_s: float
    ) -> SqliteWriter:
        """``configure``: the pragmas and slow-query logging the async engine's connections
        have; ``lock_wait_s``: how long a transaction waits for the write lock (else "database
        is locked", a 503)."""
        engine = create_engine(
            f"sqlite:///{path}",
            pool_size=1,
            max_overflow=0,
            # used in the writer thread only; ``dispose`` closes it from the loop thread
            connect_args={"check_same_thread": False},
        )
        configure(engine)
        return cls(engine, path, lock_wait_s)

    async def run(self, work: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """``work(conn, *args)`` in the writer thread, inside a savepoint of the group's
        transaction; its value once the group has committed, or what it raised."""
        if self._closed:
            raise RuntimeError("the SQLite writer is closed")
        if self._thread is None:
            self._start()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        # the request's context goes along: its id in log lines, the events it recorded
        self._queue.put(_Write(work, args, contextvars.copy_context(), future))
        return await future

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="sqlite-writer", daemon=True)
        self._checkpointer = threading.Thread(
            target=self._checkpoint_when_asked, name="sqlite-wal", daemon=True
        )
        self._thread.start()
        self._checkpointer.start()

    def _serve(self) -> None:
        conn: Connection | None = None  # held open: a pool checkout per transaction cost more
        while (first := self._queue.get()) is not None:  # than the transaction's SQL
            group = [first]
            while len(group) < GROUP_MAX:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this group
                    break
                group.append(more)
            self._let_others_write()
            try:
                if conn is None or conn.invalidated or conn.closed:
                    conn = self.engine.connect()
                self._transaction(conn, group)
            except Exception as exc:  # BEGIN or COMMIT failed: nothing of the group was kept
                self.stats.groups_lost += 1
                for write in group:
                    write.value, write.error = None, exc
                if conn is not None and conn.invalidated:
                    conn.close()
            self._answer(group)
            if self._truncate_wanted and conn is not None and not conn.closed:
                self._truncate(conn)
        if conn is not None:
            conn.close()

    def _let_others_write(self) -> None:
        """Wait (at most the lock wait) while this process's other writers (``change``,
        ``change_rows``) wait or write: they wait for the lock in SQLite's busy handler, which
        sleeps 1-100 ms between tries, and this thread, starting group after group, left them no
        gap (a seller's suspension waited behind 480 placements)."""
        deadline = time.monotonic() + self._lock_wait_s
        while self.others_writing and time.monotonic() < deadline:
            self.stats.deferred += 1
            time.sleep(0.0002)

    def _transaction(self, conn: Connection, group: list[_Write]) -> None:
        driver = conn.connection.dbapi_connection
        assert driver is not None
        writer_conn = WriterConnection(conn, driver, self.statements)
        with conn.begin():
            for n, write in enumerate(group):
                if write.future.done():  # its caller gave up waiting (cancelled): not run
                    continue
                driver.execute(f"SAVEPOINT w{n}")
                try:
                    write.value = write.context.run(
                        run_to_end, write.work(writer_conn, *write.args)
                    )
                except Exception as exc:
                    write.error = exc
                    # undo exactly this write; a failure here (SQLite rolled the whole
                    # transaction back, say) fails the group
                    driver.execute(f"ROLLBACK TO w{n}")
                driver.execute(f"RELEASE w{n}")
        stats = self.stats
        stats.writes += len(group)
        stats.transactions += 1
        stats.largest_group = max(stats.largest_group, len(group))
        self._since_checkpoint += len(group)
        if self._since_checkpoint >= CHECKPOINT_EVERY:
            self._since_checkpoint = 0
            self._checkpoints.put(True)

    @staticmethod
    def _answer(group: list[_Write]) -> None:
        loop = group[0].future.get_loop()

        def settle() -> None:
            for write in group:
                if write.future.done():  # the caller was cancelled
                    continue
                if write.error is not None:
                    write.future.set_exception(write.error)
                else:
                    write.future.set_result(write.value)

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle)

    @staticmethod
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # BEGIN waits in ``_begin_when_free``; checkpoints run in ``_checkpoint``
        dbapi_connection.execute("PRAGMA busy_timeout = 0")
        dbapi_connection.execute("PRAGMA wal_autocheckpoint = 0")

    def _begin_when_free(self, conn: Connection) -> None:
        """``BEGIN IMMEDIATE``, retried every 0.1-0.3 ms while another process writes.

        SQLite's own busy handler sleeps 1, 2, 5, 10... ms between tries, so the lock often lay
        idle for milliseconds after the other worker's COMMIT while this one slept.
        """
        deadline = time.monotonic() + self._lock_wait_s
        pause = 0.0001
        driver = conn.connection.dbapi_connection  # a failed try costs no SQLAlchemy error
        assert driver is not None
        while time.monotonic() + pause < deadline:
            try:
                driver.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    break
            self.stats.lock_retries += 1
            time.sleep(pause)
            pause = min(pause * 2, 0.0003)
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the last try: its error, as SQLAlchemy's

    def _checkpoint_when_asked(self) -> None:
        db: sqlite3.Connection | None = None
        while self._checkpoints.get() is not None:
            try:
                if db is None:
                    db = sqlite3.connect(self._path, timeout=0, isolation_level=None)
                    db.execute("PRAGMA synchronous = NORMAL")
                self._checkpoint(db)
            except sqlite3.Error as exc:  # another worker's checkpoint running, say: next time
                log.debug("WAL checkpoint skipped: %s", exc)
        if db is not None:
            db.close()

    def _checkpoint(self, db: sqlite3.Connection) -> None:
        """Copy the WAL's pages into the database file, in this thread, holding no write lock.

        With SQLite's automatic checkpoint the COMMIT that crossed 1,000 WAL pages ran it, two
        fsyncs included, in the writer thread (measured: COMMIT 1.7 ms on average with it,
        0.27 ms without). PASSIVE waits for nobody and copies what it can. With writers always
        busy it never finds the whole WAL copied, and SQLite starts the WAL over only then, so
        past ``WAL_RESTART_FRAMES`` the writer thread is asked to empty it (``_truncate``).
        """
        _busy, frames, _copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.stats.checkpoints += 1
        if frames > WAL_RESTART_FRAMES:
            self._truncate_wanted = True

    def _truncate(self, conn: Connection) -> None:
        """A TRUNCATE checkpoint, tried once between two groups of this thread's writes: it
        copies the little PASSIVE left and empties the WAL, so that the next writer starts it
        over. It takes no turn while another process writes (busy: tried after the next group);
        SQLite's busy handler, or a thread polling every 0.2 ms, never or too dearly found such
        a gap (the WAL grew past 300 MB under load)."""
        driver = conn.connection.dbapi_connection
        assert driver is not None
        try:
            busy, _frames, _copied = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            log.debug("WAL truncation skipped: %s", exc)
            return
        if not busy:
            self._truncate_wanted = False
            self.stats.restarts += 1

    def close(self) -> None:
        """After the writes queued so far (they are answered first)."""
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        if self._checkpointer is not None:
            self._checkpoints.put(None)
            self._checkpointer.join()
        self.engine.dispose()
