"""The slow-query log line, in one shape wherever a statement is timed.

The field names what was measured (``engine._log_slow_queries`` says how each path times):
``database_ms`` (SQLite's own time, in the thread that ran it) or ``round_trip_ms`` (from
handing the statement to the driver until the awaiting code resumes).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("marketsvc.db.slow")
STATEMENT_CHARS = 500  # of the SQL, never its parameters


def log_slow_query(field: str, seconds: float, statement: str) -> None:
    log.warning(
        "slow query",
        extra={field: round(seconds * 1000, 1), "statement": statement[:STATEMENT_CHARS]},
    )


def remember_threshold(dialect: Any, seconds: float) -> None:
    """The threshold, kept on the dialect for code that times a statement itself
    (``tuple_streams``), where only the session, hence the dialect, is at hand."""
    dialect.marketsvc_slow_query_seconds = seconds


def threshold_of(dialect: Any) -> float:
    return float(getattr(dialect, "marketsvc_slow_query_seconds", float("inf")))
