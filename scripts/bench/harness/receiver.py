"""A webhook receiver for the placement-with-a-subscription row: answers 204 at once, counts.

Run as its own process (``python -m harness.receiver PORT``) so that its CPU time is measured
apart from marketsvc's workers and the harness. A real subscriber runs on another machine; this
one shares the two cores with the workers, wrk and the database, so it is an asyncio protocol
on uvloop that parses no more HTTP than it needs (the head, Content-Length, ``webhook-id``):
20-24 us of CPU a request against 126-134 for aiohttp's low-level server on uvloop, the
receiver before (2026-12-02, 5,000 POSTs by aiohttp's client, 20 at once). ``POST /...``
counts a delivery (and its distinct ``webhook-id``); ``GET /count`` answers
``{"requests": n, "distinct": n}``.
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

    seen: set[bytes] = set()
    counts = {"requests": 0}

    class Hook(asyncio.Protocol):
        """One keep-alive connection: reads each request's head and its Content-Length body,
        answers 204 (or the counts to ``GET /count``)."""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                head = self.buffer[:end].lower()
                length = int(_header(head, b"content-length") or 0)
                if len(self.buffer) < end + 4 + length:
                    return  # the body is still coming
                self.buffer = self.buffer[end + 4 + length :]
                if head.startswith(b"get "):
                    body = json.dumps(
                        {"requests": counts["requests"], "distinct": len(seen)}
                    ).encode()
                    self.transport.write(  # type: ignore[attr-defined]
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                    continue
                counts["requests"] += 1
                seen.add(_header(head, b"webhook-id") or b"")
                self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")  # type: ignore[attr-defined]

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Hook, "127.0.0.1", port)
        print("receiver ready", flush=True)
        async with server:
            await server.serve_forever()

    uvloop.run(main())


def _header(head: bytes, name: bytes) -> bytes | None:
    """A header's value in a lowercased request head, or None."""
    at = head.find(b"\r\n" + name + b":")
    if at < 0:
        return None
    start = at + len(name) + 3
    stop = head.find(b"\r\n", start)
    return head[start : len(head) if stop < 0 else stop].strip()


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
