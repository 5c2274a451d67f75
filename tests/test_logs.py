"""Logs: one JSON line per request, tracebacks only in the log, slow queries, human on a tty."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time

import pytest
from aiohttp import web
from sqlalchemy import text

from marketsvc.app import create_app
from marketsvc.ops.logs import HumanFormatter, JsonFormatter, formatter_class
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
    url: str, threshold_ms: int, statement: str, caplog
) -> tuple[list[dict], float]:
    """The slow-query lines ``statement`` logged, and how long it took as the caller saw it."""
    database = Database(Settings(database_url=url, slow_query_ms=threshold_ms))
    caplog.clear()
    try:
        with caplog.at_level(logging.WARNING, logger="marketsvc.db.slow"):
            async with database.load() as session:
                started = time.perf_counter()
                await session.execute(text(statement))
                wall_ms = (time.perf_counter() - started) * 1000
    finally:
        await database.dispose()
    lines = json_lines(caplog, "marketsvc.db.slow")
    return [line for line in lines if "marker" in line["statement"]], wall_ms


SLOW = {  # a statement that cannot take less than 100 ms on each database
    "sqlite": "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3000000)"
    " SELECT count(*) AS marker FROM n",
    "postgresql": "SELECT pg_sleep(0.3) AS marker",
}


async def test_queries_over_the_threshold_are_logged_with_their_duration(
    database_url, backend, caplog
) -> None:
    statement = "SELECT 1 AS marker"
    assert (await slow_lines(database_url, 60_000, statement, caplog))[0] == []
    [line], wall_ms = await slow_lines(database_url, 0, statement, caplog)
    assert line["message"] == "slow query"
    assert line["duration_ms"] <= wall_ms
    [line], wall_ms = await slow_lines(database_url, 100, SLOW[backend], caplog)
    assert 100 < line["duration_ms"] <= wall_ms


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
