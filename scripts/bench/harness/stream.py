"""The full GET /api/v1/customers stream: time to first byte, total time, worker RSS."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass

import psutil

from harness.dbs import BenchError
from harness.servers import Server

MB = 1024 * 1024


@dataclass
class StreamSample:
    rows: int
    bytes: int
    ttfb_s: float
    total_s: float
    rss_before_mb: float
    rss_peak_mb: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.total_s


class RssSampler(threading.Thread):
    """Peak resident memory of a server's workers, sampled every few milliseconds."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.processes = [psutil.Process(pid) for pid in server.worker_pids()]
        self.before = self._rss()
        self.peak = self.before
        self.stopped = threading.Event()

    def _rss(self) -> int:
        total = 0
        for p in self.processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                total = max(total, p.memory_info().rss)
        return total

    def run(self) -> None:
        while not self.stopped.wait(0.005):
            self.peak = max(self.peak, self._rss())


def measure_stream(server: Server, token: str, rows: int) -> StreamSample:
    curl = shutil.which("curl")
    if curl is None:
        raise BenchError("curl is needed to time the stream: apt-get install -y curl")
    sampler = RssSampler(server)
    sampler.start()
    try:
        done = subprocess.run(
            [
                curl,
                "-sS",
                "-o",
                "/dev/null",
                "-H",
                f"Authorization: Bearer {token}",
                "-w",
                "%{http_code} %{time_starttransfer} %{time_total} %{size_download}",
                server.base + "/api/v1/customers",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        time.sleep(0.05)
        sampler.stopped.set()
        sampler.join()
    status, ttfb, total, size = done.stdout.split()
    if done.returncode or status != "200":
        raise BenchError(f"{server.kind} stream failed: {status} {done.stderr}")
    return StreamSample(
        rows=rows,
        bytes=int(size),
        ttfb_s=float(ttfb),
        total_s=float(total),
        rss_before_mb=sampler.before / MB,
        rss_peak_mb=sampler.peak / MB,
    )
