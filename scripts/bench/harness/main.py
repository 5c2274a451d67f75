"""One command: seed both databases, start both servers, load them A B A B, print the table."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from harness import dbs, report, scaling
from harness.config import JWT_SECRET, ROUTES, SCALING, SEARCH_ROUTES, WEBHOOK_ROUTE, Plan, parse
from harness.dbs import BenchError
from harness.feed import measure_feed
from harness.load import call, check_wrk, run_wrk, worker_cpu_seconds
from harness.probe import probe
from harness.profile import profile_route
from harness.servers import Server, start_pair, stop_all
from harness.stream import measure_stream
from harness.webhook import measure_webhook, profile_webhook


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _interrupted(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    plan = parse(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with & (SIG_IGN)
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGHUP, _interrupted)
    try:
        return run(plan)
    except BenchError as exc:
        say(str(exc))
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        stop_all()


def run(plan: Plan) -> int:
    check_wrk()
    pg_version = dbs.check_postgres(plan) if "postgresql" in plan.backends else None
    plan.workdir.mkdir(parents=True, exist_ok=True)
    plan.results.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MARKETSVC_JWT_SECRET": JWT_SECRET, "BASELINE_STRATEGY": plan.baseline}
    # the webhook row's receiver is http://127.0.0.1: allowed in development with private targets
    env |= {"MARKETSVC_ENV": "development", "MARKETSVC_WEBHOOK_ALLOW_PRIVATE": "1"}
    env.pop("MARKETSVC_DATABASE_URL", None)
    results = []
    for backend in plan.backends:
        results.append(bench_backend(plan, backend, env))
    text = report.render(plan, results, pg_version)
    print(text)
    (plan.results / "latest.md").write_text(text)
    (plan.results / "latest.json").write_text(json.dumps(results, indent=1, default=vars))
    say(f"written to {plan.results / 'latest.md'}")
    return 0


def bench_backend(plan: Plan, backend: str, env: dict[str, str]) -> dict[str, Any]:
    urls = dbs.database_urls(plan, backend)
    out: dict[str, Any] = {
        "backend": backend,
        "seed": {},
        "routes": {},
        "search": {},
        "stream": [],
        "feed": None,
        "webhook": None,
        "scaling": {"workers": {}, "instances": None},
        "notes": [],
    }
    for kind, url in urls.items():
        out["seed"][kind] = prepare(plan, backend, kind, url, env)
    searches = [r for r in SEARCH_ROUTES if r in plan.routes]
    if searches:
        grow_catalogue(plan, backend, urls["marketsvc"], env, out)
    token = dbs.marketsvc_cli(urls["marketsvc"], "token", "--admin", "--ttl", "86400", env=env)
    token = token.stdout.strip()
    first_new = {kind: dbs.max_order_id(url) for kind, url in urls.items()}
    counts = (plan.customers, plan.orders, plan.items)
    logdir = plan.workdir / f"logs-{backend}"
    logdir.mkdir(exist_ok=True)
    routes = [r for r in ROUTES if r in plan.routes]
    webhook = WEBHOOK_ROUTE in plan.routes
    try:
        if routes or searches or webhook:
            say(f"{backend}: starting both servers with {plan.workers} workers")
            servers = start_pair(urls, plan.workers, env, logdir)
            for route in routes:
                out["routes"][route] = measure_route(plan, backend, route, servers, token, counts)
            if webhook:
                out["webhook"] = measure_webhook(
                    plan,
                    backend,
                    servers["marketsvc"],
                    urls["marketsvc"],
                    token,
                    counts,
                    logdir,
                    say,
                )
            search_counts = (plan.customers, plan.orders, plan.search_items)
            for route in searches:
                out["search"][route] = measure_search(
                    plan, backend, route, servers, token, search_counts
                )
            if plan.profile and routes:
                profile_routes(plan, backend, routes, out, servers, token, counts)
            if plan.profile and webhook:
                target = Path(plan.results) / f"profile-{backend}-{WEBHOOK_ROUTE}.txt"
                say(f"{backend} {WEBHOOK_ROUTE}: py-spy on the workers for {plan.profile}s")
                profile_webhook(plan, backend, servers["marketsvc"], token, counts, logdir, target)
            stop_all()
        if "place_order" in routes or webhook:
            placing = urls if "place_order" in routes else {"marketsvc": urls["marketsvc"]}
            for kind, url in placing.items():
                bad = dbs.oversold_items(url, first_new[kind])
                made = dbs.max_order_id(url) - first_new[kind]
                out["notes"].append(
                    f"{kind}: {made} orders placed; stock accounting "
                    + ("exact (no oversell)" if bad == 0 else f"WRONG for {bad} items")
                )
        if SCALING in plan.routes:
            scaling_round(plan, backend, urls, env, token, counts, out)
        if "feed" in plan.routes:
            out["feed"] = feed_round(plan, backend, urls["marketsvc"], env, token, counts)
        if "stream" in plan.routes:
            out["stream"].append(stream_round(plan, backend, urls, env, token, plan.customers))
            if plan.million > plan.customers:
                extra = plan.million - plan.customers
                for kind, url in urls.items():
                    say(f"{backend}: appending {extra} customers to {kind}")
                    out["seed"][f"{kind} +{extra:,} customers"] = dbs.seed(url, env, extra, 0, 0)
                    dbs.analyze(url)
                out["stream"].append(stream_round(plan, backend, urls, env, token, plan.million))
    finally:
        stop_all()
        if not plan.keep:
            for url in urls.values():
                dbs.drop(plan, backend, url)
    return out


def scaling_round(
    plan: Plan,
    backend: str,
    urls: dict[str, str],
    env: dict[str, str],
    token: str,
    counts: tuple[int, int, int],
    out: dict[str, Any],
) -> None:
    logdir = plan.workdir / f"logs-{backend}-scaling"
    logdir.mkdir(exist_ok=True)
    args = (token, counts, logdir, say)
    out["scaling"]["workers"] = scaling.by_workers(plan, backend, urls, env, *args)
    if backend == "postgresql":
        url = urls["marketsvc"]
        out["scaling"]["instances"] = scaling.two_instances(plan, backend, url, env, *args)


def prepare(plan: Plan, backend: str, kind: str, url: str, env: dict[str, str]) -> Any:
    reusable = plan.reuse and dbs.exists(plan, backend, url)
    if reusable and dbs.count(url, "customers") == plan.customers:
        say(f"{backend}: reusing the {kind} database")
        dbs.marketsvc_cli(url, "migrate", env=env)  # kept by an older revision, perhaps
        dbs.restock(url)
        dbs.analyze(url)  # the restock's dead rows
        return None
    dbs.recreate(plan, backend, url)
    dbs.marketsvc_cli(url, "migrate", env=env)
    say(f"{backend}: seeding the {kind} database")
    seeded = dbs.seed(url, env, plan.customers, plan.items, plan.orders)
    say(f"{backend}: {seeded.rows} rows in {seeded.seconds:.1f}s")
    dbs.restock(url)
    dbs.analyze(url)
    return seeded


def grow_catalogue(
    plan: Plan, backend: str, url: str, env: dict[str, str], out: dict[str, Any]
) -> None:
    """Append generated items up to ``--search-items`` (marketsvc's database only: the baseline
    has no search), then fresh planner statistics."""
    extra = plan.search_items - dbs.count(url, "items")
    if extra <= 0:
        return
    say(f"{backend}: appending {extra} items for the search routes")
    out["seed"][f"marketsvc +{extra:,} items"] = dbs.seed(url, env, 0, extra, 0)
    dbs.restock(url)  # the stock check after the POST rounds expects every item restocked
    dbs.analyze(url)


def measure_search(
    plan: Plan,
    backend: str,
    route: str,
    servers: dict[str, Server],
    token: str,
    counts: tuple[int, int, int],
) -> dict[str, Any]:
    """A search route on marketsvc alone; a first request checks it answers a non-empty page."""
    base = servers["marketsvc"].base
    status, body = call(base, search_probe(route), token)
    if status != 200 or not body:
        raise BenchError(
            f"{backend} {route}: {search_probe(route)} answered {status} {body!r:.300}"
        )
    if plan.warmup:
        run_wrk(base, route, plan, token, plan.warmup, counts, plan.search_connections)
    samples = []
    for n in range(plan.repeat):
        pids = servers["marketsvc"].worker_pids()
        cpu_before = worker_cpu_seconds(pids)
        sample = run_wrk(base, route, plan, token, plan.duration, counts, plan.search_connections)
        sample.cpu_us = (worker_cpu_seconds(pids) - cpu_before) / sample.requests * 1e6
        samples.append(sample)
        say(
            f"{backend} {route} {n + 1}/{plan.repeat}: {sample.rps:.0f} req/s, "
            f"p50 {sample.p50_ms:.1f} ms, p99 {sample.p99_ms:.1f} ms, "
            f"worker CPU {sample.cpu_us:.0f} us/req, errors {sample.errors} {sample.kinds or ''}"
        )
    return {"samples": samples}


def search_probe(route: str) -> str:
    return {
        "search_word": "/api/v1/items?q=kettle&limit=20",
        "search_words": "/api/v1/items?q=oak%20kettle&limit=20",
        "search_phrase": "/api/v1/items?q=%22oak%20kettle%22&limit=20",
        "search_price": "/api/v1/items?min_price=10.00&max_price=15.00&sort=price&limit=20",
    }[route]


def measure_route(
    plan: Plan,
    backend: str,
    route: str,
    servers: dict[str, Server],
    token: str,
    counts: tuple[int, int, int],
) -> dict[str, Any]:
    bases = {kind: s.base for kind, s in servers.items()}
    checked = probe(route, bases, token, counts)
    kinds = list(servers) if checked["available"] else ["baseline"]
    if not checked["available"]:
        say(f"{backend} {route}: marketsvc answers 404/405, measuring the baseline only")
    for mismatch in checked["mismatches"]:
        say(f"{backend} {route}: JSON DIFFERS {mismatch}")
    for kind in kinds:
        if plan.warmup:
            run_wrk(bases[kind], route, plan, token, plan.warmup, counts)
    samples: dict[str, list] = {kind: [] for kind in kinds}
    for n in range(plan.repeat):
        for kind in kinds:  # A B A B: drift of the machine hits both alike
            pids = servers[kind].worker_pids()
            cpu_before = worker_cpu_seconds(pids)
            sample = run_wrk(bases[kind], route, plan, token, plan.duration, counts)
            sample.cpu_us = (worker_cpu_seconds(pids) - cpu_before) / sample.requests * 1e6
            samples[kind].append(sample)
            say(
                f"{backend} {route} {kind} {n + 1}/{plan.repeat}: {sample.rps:.0f} req/s, "
                f"p50 {sample.p50_ms:.1f} ms, p99 {sample.p99_ms:.1f} ms, "
                f"worker CPU {sample.cpu_us:.0f} us/req, "
                f"errors {sample.errors} {sample.kinds or ''} {sample.statuses or ''}"
            )
    return {**checked, "samples": samples}


def stream_round(
    plan: Plan, backend: str, urls: dict[str, str], env: dict[str, str], token: str, rows: int
) -> dict[str, Any]:
    logdir = plan.workdir / f"logs-{backend}-stream"
    logdir.mkdir(exist_ok=True)
    say(f"{backend}: streaming {rows} customers, one worker per server")
    servers = start_pair(urls, 1, env, logdir)
    samples: dict[str, list] = {kind: [] for kind in servers}
    try:
        for server in servers.values():  # a first request opens the pool and warms the worker
            call(server.base, "/api/v1/customers/1", token)
        for _ in range(plan.repeat):
            for kind, server in servers.items():
                sample = measure_stream(server, token, rows)
                samples[kind].append(sample)
                say(
                    f"{backend} stream {kind}: {sample.total_s:.2f}s, "
                    f"ttfb {sample.ttfb_s * 1000:.0f} ms, peak RSS {sample.rss_peak_mb:.0f} MB"
                )
    finally:
        stop_all()
    sizes = {kind: {s.bytes for s in ss} for kind, ss in samples.items()}
    return {"rows": rows, "samples": samples, "same_bytes": sizes["marketsvc"] == sizes["baseline"]}


def feed_round(
    plan: Plan,
    backend: str,
    url: str,
    env: dict[str, str],
    token: str,
    counts: tuple[int, int, int],
) -> Any:
    logdir = plan.workdir / f"logs-{backend}-feed"
    logdir.mkdir(exist_ok=True)
    say(f"{backend}: following the event feed while orders are placed")
    server = Server("marketsvc", url, plan.workers, env, logdir / "marketsvc.log")
    try:
        server.wait_ready()
        result = measure_feed(plan, server, token, counts)
    finally:
        stop_all()
    say(
        f"{backend} feed: {result.followed} of {result.placed} placements' events followed at "
        f"{result.events_per_second:.0f} events/s; wake-up p50 {result.latency(0.5):.1f} ms, "
        f"p99 {result.latency(0.99):.1f} ms"
    )
    return result


def profile_routes(
    plan: Plan,
    backend: str,
    routes: list[str],
    out: dict[str, Any],
    servers: dict[str, Server],
    token: str,
    counts: tuple[int, int, int],
) -> None:
    for route in routes:
        if out["routes"][route]["available"]:
            for kind, suffix in (("marketsvc", ""), ("baseline", "-baseline")):
                target = Path(plan.results) / f"profile-{backend}-{route}{suffix}.txt"
                say(f"{backend} {route}: py-spy on every {kind} worker for {plan.profile}s")
                profile_route(servers[kind], route, plan, token, counts, target)
