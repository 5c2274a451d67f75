"""The events a request recorded, for its log line and the events-written metric.

The request log middleware opens a list per request (each request runs in a task of its own, so
a context variable is private to it); ``outbox.record`` adds to it. The middlewares report the
events only for a successful answer: a failed request rolled its events back with its change.
"""

from __future__ import annotations

from contextvars import ContextVar

Recorded = list[tuple[str, str]]  # (event id, type)
_RECORDED: ContextVar[Recorded | None] = ContextVar("recorded_events", default=None)


def start() -> Recorded:
    recorded: Recorded = []
    _RECORDED.set(recorded)
    return recorded


def note(event_id: str, type_: str) -> None:
    recorded = _RECORDED.get()
    if recorded is not None:
        recorded.append((event_id, type_))


def recorded() -> Recorded:
    return _RECORDED.get() or []
