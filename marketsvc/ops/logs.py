"""Logging: one JSON object per line for machines, a readable line on a terminal.

Every request leaves exactly one ``request`` line (method, route template, status, duration,
request id, bytes). Errors carry their traceback in the log, never in the response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

request_log = logging.getLogger("marketsvc.request")

# The attributes every LogRecord has; anything else was passed in ``extra=`` and is logged.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
            **_extras(record),
        }
        if record.exc_info:
            line["error"] = repr(record.exc_info[1])
            line["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class BatchedStreamHandler(logging.StreamHandler[TextIO]):
    """A StreamHandler that writes what an event loop logs in batches, one write per batch.

    A line waits at most ``FLUSH_SECONDS`` (or until ``MAX_PENDING`` lines are waiting); WARNING
    and above, and lines logged outside a running loop, are written at once together with what
    waits. ``logging.shutdown`` at exit writes the rest. One request line per request otherwise
    costs a write system call per request.
    """

    FLUSH_SECONDS = 0.05
    MAX_PENDING = 512

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # logging's contract: a record that cannot be formatted is reported
            self.handleError(record)  # on stderr by handleError, never raised into the caller
            return
        self._enqueue(line, record.levelno)

    def write_line(self, line: str, level: int) -> None:
        """A line formatted elsewhere (``RequestLines``), batched like any record's."""
        with self.lock or contextlib.nullcontext():
            self._enqueue(line, level)

    def _enqueue(self, line: str, level: int) -> None:
        self._pending.append(line)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread: nothing would flush it later
            loop = None
        if (
            loop is None
            or level >= logging.WARNING
            or len(self._pending) >= self.MAX_PENDING
            or (self._timer is not None and self._timer_loop is not loop)  # that loop is gone
        ):
            self.flush()
        elif self._timer is None:
            self._timer, self._timer_loop = loop.call_later(self.FLUSH_SECONDS, self.flush), loop

    def flush(self) -> None:
        with self.lock or contextlib.nullcontext():
            if self._timer is not None:
                self._timer.cancel()
                self._timer = self._timer_loop = None
            if self._pending:
                lines, self._pending = self._pending, []
                try:
                    self.stream.write("\n".join(lines) + self.terminator)
                except (OSError, ValueError):  # a closed or broken stream: drop, never raise
                    return
            super().flush()


class RequestLines:
    """The one ``request`` line per request, as ``JsonFormatter`` would write it, built directly.

    Why: a ``LogRecord``, its ``extra`` merged in, and a ``Formatter`` walking the record's
    attributes cost about 20 us per request (issue 19's profile). When the line would end up
    only in one ``BatchedStreamHandler`` with a ``JsonFormatter`` (as under gunicorn,
    ``gunicorn_log_config``) it is built here as a dict in the same key order and handed to that
    handler's batch.
    Anywhere else (a terminal's human format, pytest's capture, another handler or a filter) it
    goes through ``logging`` as before. ``MARKETSVC_LOG_LEVEL`` is respected on both paths.
    Measured with ``scripts/bench/instructions.py`` (callgrind, GET /api/v1/customers/1 on
    SQLite): 70k-95k fewer instructions per request (971k -> 876k at 1000 requests; 1,173k ->
    1,105k at 200), some 7-10 %.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._second = -1
        self._time_prefix = ""

    def log(self, message: str, fields: dict[str, Any]) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        handler = self.direct_handler()
        if handler is None:
            self.logger.info("%s", message, extra=fields)
            return
        line = {
            "time": self._time(time.time()),
            "level": "INFO",
            "logger": self.logger.name,
            "message": message,
            "pid": os.getpid(),
            **fields,
        }
        try:
            text = orjson.dumps(line, default=str).decode()
        except orjson.JSONEncodeError:  # logging reports what cannot be written, never raises
            self.logger.info("%s", message, extra=fields)
            return
        handler.write_line(text, logging.INFO)

    def direct_handler(self) -> BatchedStreamHandler | None:
        """The handler an INFO line of this logger would reach alone, if it formats JSON."""
        if self.logger.filters:
            return None
        found: list[logging.Handler] = []
        logger: logging.Logger | None = self.logger
        while logger is not None:  # the walk ``Logger.callHandlers`` makes
            found += logger.handlers
            logger = logger.parent if logger.propagate else None
        if len(found) != 1:
            return None
        handler = found[0]
        if (
            type(handler) is not BatchedStreamHandler
            or type(handler.formatter) is not JsonFormatter
            or handler.filters
            or handler.level > logging.INFO
        ):
            return None
        return handler

    def _time(self, now: float) -> str:
        """``JsonFormatter``'s ``time``: UTC, milliseconds; the part up to the second is cached."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._time_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return self._time_prefix + _MILLIS[int((now - second) * 1000)]


# ".000+00:00" to ".999+00:00": the line's milliseconds looked up, not formatted with ``:03d`` (a
# format spec parsed per line). Callgrind: ``_time`` 6.5k -> 3.9k instructions a request line.
_MILLIS = tuple(f".{n:03d}+00:00" for n in range(1000))

REQUEST_LINES = RequestLines(request_log)


class HumanFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s%(fields)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        extras = _extras(record)
        record.fields = "".join(f" {k}={v}" for k, v in extras.items() if k != "fields")
        return super().format(record)


def formatter_class(
    log_format: str | None = None, stream: TextIO = sys.stderr
) -> type[logging.Formatter]:
    """``json`` or ``human`` (``Settings.log_format``) as chosen; unchosen, JSON unless the
    stream is a terminal."""
    wants_json = not stream.isatty() if log_format is None else log_format == "json"
    return JsonFormatter if wants_json else HumanFormatter


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs a request it cannot parse (a NUL byte in a header, a header or request line
    over 8190 bytes) as ``logger.exception``: an ERROR with a traceback, about the client's
    fault. This filter on that logger turns each into one WARNING ``request`` line instead (no
    route: none was matched) and counts it in the request metrics; anything else passes as is.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError) or not 400 <= exc.code < 500:
            return True
        log_malformed_request(exc.code, exc.message)
        return False


def log_malformed_request(status: int, reason: str) -> None:
    """The request line for a request aiohttp refused before the app saw it; counted too."""
    from marketsvc.ops.metrics import REQUESTS
    from marketsvc.web.middlewares.request_id import new_request_id
    from marketsvc.web.routing import UNMATCHED

    REQUESTS.labels("OTHER", UNMATCHED, str(status)).inc()
    fields = {
        "method": "OTHER",  # the request line may be the very thing that could not be read
        "route": UNMATCHED,
        "status": status,
        "duration_ms": 0.0,
        "bytes": len(reason.encode()),  # aiohttp answers with the reason as text/plain
        "request_id": new_request_id(),
        "reason": reason[:200],
    }
    request_log.warning("malformed request refused %s", status, extra=fields)


def gunicorn_log_config(level: str, log_format: str | None = None) -> dict[str, Any]:
    """``logconfig_dict`` so gunicorn's own lines and the app's share one format and stream."""
    factory = f"{__name__}.{formatter_class(log_format).__name__}"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"marketsvc": {"()": factory}},
        "filters": {"malformed": {"()": f"{__name__}.MalformedRequestFilter"}},
        "handlers": {
            "stderr": {
                "class": f"{__name__}.BatchedStreamHandler",
                "formatter": "marketsvc",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {
                "level": level,
                "handlers": [],
                "propagate": True,
                "filters": ["malformed"],
            },
            "gunicorn.access": {"level": level, "handlers": [], "propagate": True},
        },
    }
