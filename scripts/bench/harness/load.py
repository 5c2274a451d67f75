"""wrk runs and their numbers; probes that tell which routes a server has."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import psutil

from harness.config import BENCH, Plan
from harness.dbs import BenchError

WRK_SCRIPT = BENCH / "wrk.lua"


@dataclass
class Sample:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    statuses: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    cpu_us: float = 0.0  # the server's workers' CPU time (all threads) per request

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def worker_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes, every thread included (aiosqlite's too)."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def check_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError(
            "wrk is not installed: `sudo apt-get install -y wrk` (Debian/Ubuntu), "
            "`brew install wrk` (macOS), or build it from https://github.com/wg/wrk"
        )
    return wrk


def run_wrk(
    base: str,
    route: str,
    plan: Plan,
    token: str,
    seconds: int,
    counts: tuple[int, int, int],
    connections: int | None = None,
) -> Sample:
    """One wrk run; ``counts`` are the seeded customers, orders and items ids are drawn from;
    ``connections``, when given, instead of ``--connections`` (the search rows')."""
    connections = plan.connections if connections is None else connections
    argv = [
        check_wrk(),
        f"-t{min(plan.threads, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-H",
        f"Authorization: Bearer {token}",
        "-s",
        str(WRK_SCRIPT),
        base,
        "--",
        route,
        *map(str, counts),
    ]
    env = {**os.environ, "BENCH_COUNT_STATUS": "1" if route == "place_order" else "0"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if done.returncode or line is None:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    kinds = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]}
    return Sample(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        errors=sum(kinds.values()),
        statuses=raw["statuses"],
        kinds=kinds,
    )


def call(base: str, path: str, token: str, body: object | None = None) -> tuple[int, object | None]:
    """One request: its status and parsed JSON body (None when not JSON)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            status, payload = r.status, r.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, None
