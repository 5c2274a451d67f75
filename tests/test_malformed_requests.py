"""A request the HTTP parser refuses is the client's fault: one WARNING request line, no
traceback, counted in /metrics (against a real gunicorn, whose logger aiohttp writes to)."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest

from tests.dbs import fresh_database
from tests.live import live_server

MALFORMED = {
    "NUL byte in a header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
    "header over 8 KB": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
    "request line over 8 KB": b"GET /healthz?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
}
COUNTED = 'marketsvc_http_requests_total{method="OTHER",route="<unmatched>",status="400"}'


def send(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.slow
def test_malformed_requests_are_one_warning_line_each_and_counted(tmp_path: Path) -> None:
    with (
        fresh_database("sqlite", tmp_path) as url,
        live_server(url, tmp_path, workers=1) as server,
    ):
        port = int(server.url.rsplit(":", 1)[1])
        for name, raw in MALFORMED.items():
            assert send(port, raw).startswith(b"HTTP/1.0 400 "), name
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as resp:
            metrics = resp.read().decode()
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    refused = [line for line in lines if line.get("status") == 400]
    assert [(r["level"], r["logger"], r["route"]) for r in refused] == [
        ("WARNING", "marketsvc.request", "<unmatched>")
    ] * len(MALFORMED)
    assert {"method", "route", "status", "duration_ms", "bytes", "request_id"} <= refused[0].keys()
    assert not [line for line in lines if line["level"] in ("ERROR", "CRITICAL")]
    assert not [line for line in lines if "traceback" in line]
    assert f"{COUNTED} 3.0" in metrics
