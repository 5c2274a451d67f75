"""A webhook receiver for the placement-with-a-subscription row: answers 204 at once, counts.

Run as its own process (``python -m harness.receiver PORT``) so that its CPU time is measured
apart from marketsvc's workers and the harness: aiohttp's low-level server (no router, no
middleware) on uvloop, the cheapest aiohttp answer there is. ``POST /...`` counts a delivery
(and its distinct ``webhook-id``); ``GET /count`` answers ``{"requests": n, "distinct": n}``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from harness.config import BENCH, ROOT
from harness.dbs import BenchError


def serve(port: int) -> None:
    import uvloop
    from aiohttp import web

    seen: set[str] = set()
    requests = 0

    async def handle(request: web.BaseRequest) -> web.Response:
        nonlocal requests
        if request.method == "GET":
            return web.Response(text=json.dumps({"requests": requests, "distinct": len(seen)}))
        await request.read()
        requests += 1
        seen.add(request.headers.get("webhook-id", ""))
        return web.Response(status=204)

    async def main() -> None:
        runner = web.ServerRunner(web.Server(handle, access_log=None))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print("receiver ready", flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


class Receiver:
    """The receiver process, started on a free port."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "harness.receiver", str(port)],
                cwd=ROOT,
                env={"PYTHONPATH": str(BENCH), "PATH": "/usr/bin:/bin"},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while "receiver ready" not in log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchError(f"the webhook receiver did not start:\n{log.read_text()}")
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def counts(self) -> tuple[int, int]:
        """(requests received, distinct webhook-ids)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/count", timeout=10) as r:
            body = json.loads(r.read())
        return body["requests"], body["distinct"]

    def cpu_seconds(self) -> float:
        try:
            times = psutil.Process(self.process.pid).cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return times.user + times.system

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
