"""py-spy on one marketsvc worker under wrk load, summarised as the top frames."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from harness.config import Plan
from harness.dbs import BenchError
from harness.load import run_wrk
from harness.servers import Server

TOP = 25


def profile_route(
    server: Server,
    route: str,
    plan: Plan,
    token: str,
    counts: tuple[int, int, int],
    target: Path,
) -> None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        raise BenchError("--profile needs py-spy (pip install -r requirements-dev.txt)")
    raw = target.with_suffix(".collapsed")
    spy = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(server.worker_pids()[0]),
            "--duration",
            str(plan.profile),
            "--format",
            "raw",
            "--nonblocking",
            "-o",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_wrk(server.base, route, plan, token, plan.profile + 1, counts)
    _, err = spy.communicate()
    if spy.returncode:
        raise BenchError(f"py-spy failed: {err}")
    target.write_text(summarise(raw.read_text()))


def summarise(collapsed: str) -> str:
    """Inclusive and self share of samples per function, from py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        total += int(n)
        own[frames[-1]] += int(n)
        for frame in set(frames):
            inclusive[frame] += int(n)
    lines = [f"{total} samples", "", "inclusive:"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(TOP)]
    lines += ["", "self:"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in own.most_common(TOP)]
    return "\n".join(lines) + "\n"
