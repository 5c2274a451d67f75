"""A real ``python -m marketsvc serve`` (gunicorn, aiohttp's uvloop worker) on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str, env: dict[str, str], check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m marketsvc ARGS`` from the repository, with ``env`` (and a PATH) as its whole
    environment: nothing of the test run's leaks in."""
    return subprocess.run(
        [sys.executable, "-m", "marketsvc", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"} | env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def live_server(
    database_url: str,
    tmp_dir: Path,
    workers: int = 1,
    env: dict[str, str] | None = None,
    jwt_secret: str = "",
) -> Iterator[LiveServer]:
    """Serve until the block ends, then SIGTERM and wait; the server's output is in ``log()``."""
    port = free_port()
    environ = (
        os.environ
        | {
            "MARKETSVC_DATABASE_URL": database_url,
            "MARKETSVC_PORT": str(port),
            "MARKETSVC_WORKERS": str(workers),
            "PYTHONUNBUFFERED": "1",
        }
        | ({"MARKETSVC_JWT_SECRET": jwt_secret} if jwt_secret else {})
        | (env or {})
    )
    log_path = tmp_dir / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "marketsvc", "serve"],
            cwd=ROOT,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_until_serving(server, workers)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_serving(server: LiveServer, workers: int, timeout: float = 30) -> None:
    """Until every worker is ready (a SIGTERM sent to a booting worker is lost) and it serves."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        if server.log().count("worker ready") >= workers:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as resp:
                if resp.status == 200:
                    return
        time.sleep(0.05)
    raise RuntimeError(f"server did not start in {timeout}s:\n{server.log()}")
