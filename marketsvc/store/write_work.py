"""Running a write given as a function (``Database.change_with``) without an event loop turn.

``work`` is an ``async def work(conn, ...)`` written against accessors that ``await
execute(conn, stmt)``. Handed a connection whose ``execute`` is a plain call on a synchronous
SQLAlchemy ``Connection`` behind an ``async def`` (SQLite's writer thread, PostgreSQL's one
greenlet: ``sqlite_writer``, ``pg_writes``), such a coroutine never suspends, and ``run_to_end``
drives it with one ``send``. A ``work`` that awaits something that really suspends (a sleep, a
network call) is a bug: ``WriteSuspended`` names it, and the write rolls back.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class WriteSuspended(RuntimeError):
    """A write given to ``Database.change_with`` awaited something that suspends."""


def run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """The value of a coroutine that never suspends, driven without an event loop."""
    try:
        coro.send(None)
    except StopIteration as finished:
        value: T = finished.value
        return value
    coro.close()  # runs its ``finally`` blocks; the transaction around it rolls back
    name = getattr(coro, "__qualname__", coro)
    raise WriteSuspended(
        f"{name} awaited something that suspends; a write given to Database.change_with may "
        "await only the connection it is handed"
    )
