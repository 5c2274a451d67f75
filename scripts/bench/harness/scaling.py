"""Scaling with cores (issue 19 item 4): ``GET /api/v1/customers/{id}`` under 1, 2 and 4
gunicorn workers (``--scaling-workers``), marketsvc and the baseline alternating as in the route
rows; and, on PostgreSQL, two marketsvc instances on different ports sharing one database, each
loaded by its own wrk at the same time (``--connections`` each), with the CPU its workers spent
per request: the cost per request should not grow with the number of instances.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from harness.config import Plan
from harness.load import Sample, run_wrk, worker_cpu_seconds
from harness.servers import Server, start_pair, stop_all

ROUTE = "customer"
INSTANCES = 2


def measured(server: Server, plan: Plan, token: str, counts: tuple[int, int, int]) -> Sample:
    pids = server.worker_pids()
    cpu_before = worker_cpu_seconds(pids)
    sample = run_wrk(server.base, ROUTE, plan, token, plan.duration, counts)
    sample.cpu_us = (worker_cpu_seconds(pids) - cpu_before) / sample.requests * 1e6
    return sample


def by_workers(
    plan: Plan,
    backend: str,
    urls: dict[str, str],
    env: dict[str, str],
    token: str,
    counts: tuple[int, int, int],
    logdir: Path,
    say: Any,
) -> dict[int, dict[str, list[Sample]]]:
    """{workers: {"marketsvc": samples, "baseline": samples}}."""
    out: dict[int, dict[str, list[Sample]]] = {}
    for workers in plan.scaling_workers:
        say(f"{backend} scaling: both servers with {workers} worker(s)")
        servers = start_pair(urls, workers, env, logdir)
        try:
            for server in servers.values():
                if plan.warmup:
                    run_wrk(server.base, ROUTE, plan, token, plan.warmup, counts)
            samples: dict[str, list[Sample]] = {kind: [] for kind in servers}
            for _ in range(plan.repeat):
                for kind, server in servers.items():  # A B A B
                    sample = measured(server, plan, token, counts)
                    samples[kind].append(sample)
                    say(
                        f"{backend} scaling {workers} worker(s) {kind}: {sample.rps:.0f} req/s, "
                        f"worker CPU {sample.cpu_us:.0f} us/req, errors {sample.errors}"
                    )
            out[workers] = samples
        finally:
            stop_all()
    return out


def two_instances(
    plan: Plan,
    backend: str,
    url: str,
    env: dict[str, str],
    token: str,
    counts: tuple[int, int, int],
    logdir: Path,
    say: Any,
) -> list[list[Sample]]:
    """Per instance, its samples; instance n's run k ran at the same time as the others' k."""
    say(f"{backend} scaling: {INSTANCES} marketsvc instances of {plan.workers} worker(s), one db")
    servers = [
        Server("marketsvc", url, plan.workers, env, logdir / f"instance-{n + 1}.log")
        for n in range(INSTANCES)
    ]
    try:
        for server in servers:
            server.wait_ready()
        if plan.warmup:
            together(servers, lambda s: run_wrk(s.base, ROUTE, plan, token, plan.warmup, counts))
        out: list[list[Sample]] = [[] for _ in servers]
        for _ in range(plan.repeat):
            samples = together(servers, lambda s: measured(s, plan, token, counts))
            for n, sample in enumerate(samples):
                out[n].append(sample)
            say(
                f"{backend} scaling {INSTANCES} instances: "
                + ", ".join(f"{s.rps:.0f} req/s at {s.cpu_us:.0f} us/req" for s in samples)
                + f", {sum(s.rps for s in samples):.0f} req/s in all"
            )
        return out
    finally:
        stop_all()


def together(servers: list[Server], load: Any) -> list[Sample]:
    """``load(server)`` for every server at once, each in its own thread (its own wrk)."""
    results: list[Any] = [None] * len(servers)
    errors: list[BaseException] = []

    def run(n: int, server: Server) -> None:
        try:
            results[n] = load(server)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n, s)) for n, s in enumerate(servers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
