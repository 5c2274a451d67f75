"""py-spy on every worker of a server (marketsvc or the baseline) under wrk load, summarised as
the top frames."""

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
# A thread parked here waits for work (py-spy cannot tell that C wait from work).
IDLE_LEAVES = ("_connection_worker_thread (aiosqlite/core.py:59)",)
# First match wins: where a sample's time goes, in words the optimisation can act on.
BUCKETS = (
    # background tasks first: their time is theirs whatever they call (the webhook row's profile)
    ("webhook sender: claim, POST, record", ("webhook_delivery.py",)),
    ("webhook relay: fan-out", ("webhook_relay.py",)),
    ("BEGIN round trip (asyncpg Transaction.start)", ("Transaction.start",)),
    ("pool pre-ping", ("_do_ping", "do_ping")),
    ("ROLLBACK / reset when the connection returns", ("_rollback_impl", "_reset", "do_rollback")),
    ("JWT decode", ("jwt/",)),
    ("marshmallow", ("marshmallow/",)),
    ("SQL compile / cache key", ("sql/compiler.py", "cache_key.py")),
    ("ORM hydration", ("orm/loading.py", "orm/strategies.py")),
    ("driver: query and rows (asyncpg / aiosqlite)", ("asyncpg/", "aiosqlite/")),
    ("other SQLAlchemy (session, engine, pool, events)", ("sqlalchemy/",)),
    ("marketsvc middlewares and handlers", ("marketsvc/",)),
    ("aiohttp: HTTP parsing, routing, writing", ("aiohttp/",)),
)


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
    # every worker: the webhook row's delivery work sits on the worker whose relay holds the
    # lease, the placements on both; their samples are summed
    spies = []
    for n, pid in enumerate(server.worker_pids()):
        raw = target.with_suffix(f".{n}.collapsed")
        command = [py_spy, "record", "--pid", str(pid), "--duration", str(plan.profile)]
        command += ["--format", "raw", "--nonblocking", "-o", str(raw)]
        spy = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        spies.append((spy, raw))
    run_wrk(server.base, route, plan, token, plan.profile + 1, counts)
    collapsed = []
    for spy, raw in spies:
        _, err = spy.communicate()
        if spy.returncode:
            raise BenchError(f"py-spy failed: {err}")
        collapsed.append(raw.read_text())
    target.write_text(summarise("\n".join(collapsed)))


def summarise(collapsed: str) -> str:
    """Inclusive and self share of samples per function, from py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not stack or frames[-1] in IDLE_LEAVES:
            continue
        n = int(count)
        total += n
        own[frames[-1]] += n
        buckets[_bucket(stack)] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples (idle driver threads left out)", "", "where the time goes:"]
    lines += [f"{100 * n / total:5.1f}%  {b}" for b, n in buckets.most_common()]
    lines += ["", "inclusive:"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(TOP)]
    lines += ["", "self:"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in own.most_common(TOP)]
    return "\n".join(lines) + "\n"


def _bucket(stack: str) -> str:
    for name, needles in BUCKETS:
        if any(needle in stack for needle in needles):
            return name
    return "other (event loop, stdlib)"
