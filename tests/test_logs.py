"""Logs: one JSON line per request, tracebacks only in the log, slow queries, human on a tty."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import logging.config
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from aiohttp import web
from sqlalchemy import text

from marketsvc.app import create_app
from marketsvc.ops.logs import (
    REQUEST_LINES,
    BatchedStreamHandler,
    HumanFormatter,
    JsonFormatter,
    formatter_class,
    gunicorn_log_config,
)
from marketsvc.settings import Settings
from marketsvc.store.engine import Database
from marketsvc.web.routing import Access, endpoint


def json_lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[dict]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == logger]


async def test_one_json_line_per_request(client, new_item, caplog) -> None:
    item = await new_item()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="marketsvc.request"):
        started = time.perf_counter()
        resp = await client.get(f"/api/v1/items/{item['id']}", headers={"X-Request-ID": "abc-1"})
        body = await resp.read()
        wall_ms = (time.perf_counter() - started) * 1000
    [line] = json_lines(caplog, "marketsvc.request")
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/items/{id}"
    assert line["status"] == 200
    assert line["request_id"] == "abc-1" == resp.headers["X-Request-ID"]
    assert line["bytes"] == len(body)
    assert 0 < line["duration_ms"] <= wall_ms  # the server's share of what the client waited
    assert {"time", "level", "logger", "message", "pid"} <= line.keys()


async def test_a_stream_logs_the_bytes_it_sent(client, new_item, caplog) -> None:
    for n in range(3):
        await new_item(name=f"Item {n}")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="marketsvc.request"):
        body = await (await client.get("/api/v1/items")).read()
    [line] = json_lines(caplog, "marketsvc.request")
    assert (line["route"], line["status"], line["bytes"]) == ("/api/v1/items", 200, len(body))


@endpoint(summary="Fails on purpose", access=Access.PUBLIC, tag="test")
async def explode(request: web.Request) -> web.Response:
    raise RuntimeError("secret internal detail")


async def test_an_error_has_its_traceback_in_the_log_only(aiohttp_client, settings, caplog) -> None:
    app = create_app(settings)
    app.router.add_get("/explode", explode)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.INFO):
        resp = await client.get("/explode")
        body = await resp.text()
    assert resp.status == 500
    assert resp.content_type == "application/problem+json"
    assert "secret internal detail" not in body
    assert "Traceback" not in body
    [error] = json_lines(caplog, "marketsvc.errors")
    assert "RuntimeError: secret internal detail" in error["traceback"]
    assert error["request_id"] == resp.headers["X-Request-ID"]
    [request] = json_lines(caplog, "marketsvc.request")
    assert (request["route"], request["status"]) == ("/explode", 500)


async def slow_lines(
    url: str, threshold_ms: int, statement: str, caplog, block_loop_s: float = 0.0
) -> tuple[list[dict], float]:
    """The slow-query lines of ``statement``, and how long it took as the caller saw it; with
    ``block_loop_s``, the event loop is blocked that long from the moment the statement is
    handed to the driver (as a busy worker would)."""
    database = Database(Settings(database_url=url, slow_query_ms=threshold_ms))
    caplog.clear()
    try:
        with caplog.at_level(logging.WARNING, logger="marketsvc.db.slow"):
            async with database.load() as session:
                await session.execute(text(statement))  # connected, and prepared on PostgreSQL
                caplog.clear()
                if block_loop_s:  # runs once this task awaits the driver's answer
                    asyncio.get_running_loop().call_soon(time.sleep, block_loop_s)
                started = time.perf_counter()
                await session.execute(text(statement))
                wall_ms = (time.perf_counter() - started) * 1000
    finally:
        await database.dispose()
    lines = json_lines(caplog, "marketsvc.db.slow")
    return [line for line in lines if "marker" in line["statement"]], wall_ms


SLOW_SQLITE = (  # some 100 ms or more of SQLite's own work on any machine
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3000000)"
    " SELECT count(*) AS marker FROM n"
)


async def test_queries_over_the_threshold_are_logged_with_their_duration(
    database_url, caplog
) -> None:
    statement = "SELECT 1 AS marker"
    assert (await slow_lines(database_url, 60_000, statement, caplog))[0] == []
    [line], wall_ms = await slow_lines(database_url, 0, statement, caplog)
    assert line["message"] == "slow query"
    if database_url.startswith("postgresql"):  # a statement that cannot be fast
        assert 0 <= line["round_trip_ms"] <= wall_ms
        [line], wall_ms = await slow_lines(
            database_url, 100, "SELECT pg_sleep(0.3) AS marker", caplog
        )
        assert 300 <= line["round_trip_ms"] <= wall_ms
    else:
        assert 0 <= line["database_ms"] <= wall_ms
        [line], wall_ms = await slow_lines(database_url, 50, SLOW_SQLITE, caplog)
        assert 50 <= line["database_ms"] <= wall_ms


async def test_a_fast_query_on_a_busy_event_loop_is_not_slow_on_sqlite(
    database_url, caplog
) -> None:
    """SQLite's time is measured in its thread: a loop busy for 300 ms does not count in it.
    On PostgreSQL the round trip is what can be measured, and the line says so by its name."""
    lines, _ = await slow_lines(database_url, 100, "SELECT 1 AS marker", caplog, block_loop_s=0.3)
    if database_url.startswith("postgresql"):
        [line] = lines
        assert line["round_trip_ms"] >= 300
        assert "database_ms" not in line
    else:
        assert lines == []


def test_human_lines_on_a_terminal_json_elsewhere(tmp_path) -> None:
    primary, secondary = os.openpty()
    with os.fdopen(secondary, "w") as tty, (tmp_path / "log").open("w") as file:
        assert formatter_class(None, tty) is HumanFormatter
        assert formatter_class(None, file) is JsonFormatter
        assert formatter_class("json", tty) is JsonFormatter
        assert formatter_class("human", file) is HumanFormatter
    os.close(primary)
    fields = {"route": "/x", "status": 200}
    record = logging.makeLogRecord({"name": "a", "levelname": "INFO", "msg": "GET /x 200"} | fields)
    line = HumanFormatter().format(record)
    assert "INFO" in line
    assert "GET /x 200 route=/x status=200" in line


async def test_a_client_gone_mid_upload_is_logged_as_499_not_an_error(
    client, admin, caplog
) -> None:
    _, writer = await asyncio.open_connection(client.host, client.port)
    head = (
        "POST /api/v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: {admin['Authorization']}\r\nContent-Length: 1000\r\n\r\n"
    )
    with caplog.at_level(logging.INFO):
        writer.write(head.encode() + b'{"name": ')
        await writer.drain()
        writer.close()
        async with asyncio.timeout(10):
            while not json_lines(caplog, "marketsvc.request"):  # noqa: ASYNC110 (the server logs)
                await asyncio.sleep(0.02)
    [line] = json_lines(caplog, "marketsvc.request")
    assert line["status"] == 499
    assert not json_lines(caplog, "marketsvc.errors")


@contextlib.contextmanager
def only_handler(handler: logging.Handler, level: int = logging.INFO) -> Iterator[None]:
    """``handler`` as the root's only one (as under gunicorn), the request logger at ``level``."""
    root, request_log = logging.getLogger(), logging.getLogger("marketsvc.request")
    handlers, old_level = root.handlers, request_log.level
    root.handlers = [handler]
    request_log.setLevel(level)  # (setLevel clears the loggers' isEnabledFor caches)
    try:
        yield
    finally:
        root.handlers = handlers
        request_log.setLevel(old_level)


@contextlib.contextmanager
def counted_records(name: str) -> Iterator[list[logging.LogRecord]]:
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def counting(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        if record.name == name:
            made.append(record)
        return record

    logging.setLogRecordFactory(counting)
    try:
        yield made
    finally:
        logging.setLogRecordFactory(factory)


async def test_the_request_line_is_built_directly_in_the_formatters_shape(client, new_item) -> None:
    item = await new_item()
    stream = io.StringIO()
    handler = BatchedStreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    with only_handler(handler), counted_records("marketsvc.request") as records:
        resp = await client.get(f"/api/v1/items/{item['id']}", headers={"X-Request-ID": "d-1"})
        body = await resp.read()
        assert stream.getvalue() == ""  # batched: written within FLUSH_SECONDS, not at once
        handler.flush()
    assert records == []  # no LogRecord: the direct path
    [text] = stream.getvalue().splitlines()
    line = json.loads(text)
    expected = logging.makeLogRecord(
        {"name": "marketsvc.request", "levelname": "INFO", "levelno": logging.INFO}
        | {"msg": f"GET /api/v1/items/{item['id']} 200", "process": os.getpid()}
        | {"method": "GET", "route": "/api/v1/items/{id}", "status": 200, "duration_ms": 0.5}
        | {"bytes": len(body), "request_id": "d-1"}
    )
    formatted = json.loads(JsonFormatter().format(expected))
    assert list(line) == list(formatted)  # the same keys in the same order
    assert {k: v for k, v in line.items() if k not in ("time", "duration_ms")} == {
        k: v for k, v in formatted.items() if k not in ("time", "duration_ms")
    }
    logged = datetime.fromisoformat(line["time"])
    assert abs((datetime.now(UTC) - logged).total_seconds()) < 5
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    assert isinstance(line["duration_ms"], float)


async def test_the_request_line_respects_the_log_level(client, new_item) -> None:
    item = await new_item()
    stream = io.StringIO()
    handler = BatchedStreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    with only_handler(handler, logging.WARNING):
        assert (await client.get(f"/api/v1/items/{item['id']}")).status == 200
        handler.flush()
    assert stream.getvalue() == ""


async def test_the_request_line_is_human_on_a_terminal(client, new_item) -> None:
    item = await new_item()
    stream = io.StringIO()
    handler = BatchedStreamHandler(stream)
    handler.setFormatter(HumanFormatter())
    with only_handler(handler), counted_records("marketsvc.request") as records:
        assert (await client.get(f"/api/v1/items/{item['id']}")).status == 200
        handler.flush()
    assert len(records) == 1  # through logging, for the human formatter
    [text] = stream.getvalue().splitlines()
    assert f"INFO    marketsvc.request: GET /api/v1/items/{item['id']} 200" in text
    assert "route=/api/v1/items/{id} status=200" in text


def test_under_gunicorns_log_config_the_request_line_is_built_directly(monkeypatch) -> None:
    monkeypatch.setenv("MARKETSVC_LOG_FORMAT", "json")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logging.config.dictConfig(gunicorn_log_config("INFO"))
    try:
        [handler] = root.handlers
        assert REQUEST_LINES.direct_handler() is handler
    finally:
        handler.close()
        root.handlers = handlers
        root.setLevel(level)


def test_the_request_lines_time_is_the_formatters_to_the_millisecond() -> None:
    """``RequestLines._time`` looks its milliseconds up in ``_MILLIS``: the text of a ``:03d``
    format at every edge of a second, and ``JsonFormatter``'s where the float is exact."""
    from marketsvc.ops.logs import _MILLIS, RequestLines

    assert len(_MILLIS) == 1000
    lines = RequestLines(logging.getLogger("marketsvc.request"))
    for now in (0.0, 1.0005, 1.9999, 1_764_500_000.001, 1_764_500_000.5, 1_764_500_000.9994):
        second = int(now)
        whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        assert lines._time(now) == f"{whole}.{int((now - second) * 1000):03d}+00:00", now
    for now in (0.0, 1_764_500_000.5, 1_764_500_000.25):
        expected = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        assert lines._time(now) == expected, now
