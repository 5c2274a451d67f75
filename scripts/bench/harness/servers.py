"""marketsvc and the baseline under the same gunicorn settings, each in its own process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from harness.config import BENCH, ROOT
from harness.dbs import BenchError

RUNNING: list[Server] = []
COMMANDS = {
    "marketsvc": ["-m", "marketsvc", "serve"],
    "baseline": [
        "-m",
        "gunicorn",
        "-c",
        str(BENCH / "baseline" / "gunicorn_conf.py"),
        "--pythonpath",
        str(BENCH),
        "baseline.app:gunicorn_app",
    ],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, kind: str, url: str, workers: int, env: dict[str, str], log: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.workers = workers
        self.log = log
        env = {
            **env,
            "MARKETSVC_DATABASE_URL": url,
            "MARKETSVC_HOST": "127.0.0.1",
            "MARKETSVC_PORT": str(self.port),
            "MARKETSVC_WORKERS": str(workers),
            # For both servers alike: gunicorn 27 opens a control socket at one fixed path per
            # user (two arbiters would fight over it), and max_requests recycles every worker at
            # once every ~20k requests, a second of refused load that would hit the faster more.
            "GUNICORN_CMD_ARGS": "--no-control-socket --max-requests 0",
        }
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, *COMMANDS[kind]],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        RUNNING.append(self)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.kind} exited at start:\n{self.log.read_text()[-3000:]}")
            if self.log.read_text().count("worker ready") >= self.workers and self._healthy():
                return
            time.sleep(0.2)
        raise BenchError(f"{self.kind} not ready after {timeout}s; see {self.log}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def worker_pids(self) -> list[int]:
        try:
            return [c.pid for c in psutil.Process(self.process.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self in RUNNING:
            RUNNING.remove(self)
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def start_pair(
    urls: dict[str, str], workers: int, env: dict[str, str], logdir: Path
) -> dict[str, Server]:
    servers = {
        kind: Server(kind, url, workers, env, logdir / f"{kind}.log") for kind, url in urls.items()
    }
    for server in servers.values():
        server.wait_ready()
    return servers


def stop_all() -> None:
    for server in list(RUNNING):
        server.stop()
