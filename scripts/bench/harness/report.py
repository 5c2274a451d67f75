"""The results as one markdown document: routes, stream, seeding."""

from __future__ import annotations

import math
import os
import platform
import sqlite3
import statistics
import subprocess
from datetime import UTC, datetime
from typing import Any

from harness.config import BASELINE_STRATEGIES, ROOT, Plan

LABELS = {
    "customer": "GET /api/v1/customers/{id}",
    "order": "GET /api/v1/orders/{id}",
    "order_total": "GET /api/v1/orders/{id}/total",
    "totals": "POST /api/v1/orders/totals (100 ids)",
    "place_order": "POST /api/v1/orders (3 lines)",
    "search_word": "GET /api/v1/items?q=WORD&limit=20",
    "search_words": "GET /api/v1/items?q=WORD WORD&limit=20",
    "search_phrase": 'GET /api/v1/items?q="WORD WORD"&limit=20',
    "search_price": "GET /api/v1/items?min_price=P&max_price=P+5&sort=price&limit=20",
}


def med(values: list[float]) -> float:
    return statistics.median(values)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def revision() -> str:
    """The marketsvc code measured: ``BENCH_REVISION``, else the git commit of the checkout."""
    if os.environ.get("BENCH_REVISION"):
        return os.environ["BENCH_REVISION"]
    done = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown (not a git checkout)"


def header(plan: Plan, pg_version: str | None) -> list[str]:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    data = f"{plan.customers:,} customers, {plan.items:,} items, {plan.orders:,} orders x 3 lines"
    return [
        f"## marketsvc vs the raw baseline ({now})",
        "",
        f"- marketsvc revision: {revision()}",
        f"- Machine: {os.cpu_count()} cores ({cpu_model()}), Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}" + (f", PostgreSQL {pg_version}" if pg_version else ""),
        f"- gunicorn: {plan.workers} workers, aiohttp.GunicornUVLoopWebWorker, the same settings "
        "for both (except worker recycling, max_requests, off for both); the stream is measured "
        "with 1 worker",
        f"- Load: wrk -t{plan.threads} -c{plan.connections} -d{plan.duration}s after a "
        f"{plan.warmup}s warm-up; marketsvc and baseline alternate (A B A B); median of "
        f"{plan.repeat} run(s)",
        f"- Data: {data} (`python -m marketsvc seed --random-seed 1`)",
        f"- Baseline strategy: {plan.baseline} ({BASELINE_STRATEGIES[plan.baseline]}; "
        "`--baseline like|limit`)",
        "",
    ]


def route_rows(result: dict[str, Any]) -> list[str]:
    rows = [
        "| route | marketsvc req/s | baseline req/s | ratio | p50 ms (m / b) | p99 ms (m / b) "
        "| worker CPU us/req (m / b) | errors (m / b) | issue 19 targets |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for route, r in result["routes"].items():
        s = r["samples"]
        b = s["baseline"]
        m = s.get("marketsvc")
        b_rps = med([x.rps for x in b])
        m_rps = med([x.rps for x in m]) if m else None
        ratio = f"{m_rps / b_rps:.2f}" if m else "n/a"

        def pair(attr: str, fmt: str = "{:.1f}", m=m, b=b) -> str:
            left = fmt.format(med([getattr(x, attr) for x in m])) if m else "-"
            return f"{left} / {fmt.format(med([getattr(x, attr) for x in b]))}"

        errors = f"{_errors(m) if m else '-'} / {_errors(b)}"
        m_cell = f"{m_rps:,.0f}" if m else "404 (route missing)"
        rows.append(
            f"| {LABELS[route]} | {m_cell} | {b_rps:,.0f} | {ratio} | {pair('p50_ms')} "
            f"| {pair('p99_ms')} | {pair('cpu_us', '{:.0f}')} | {errors} "
            f"| {targets(route, m, b)} |"
        )
    return rows


TARGET_RATIO = 0.75  # issue 19: at least three quarters of the baseline's req/s, every route
TARGET_P99 = 2.0  # and, for point reads, a p99 at most twice the baseline's
POINT_READS = ("customer", "order", "order_total")


def targets(route: str, m: list[Any] | None, b: list[Any]) -> str:
    """Pass or fail against issue 19's targets, with the figure that decides it."""
    if not m:
        return "-"
    ratio = med([x.rps for x in m]) / med([x.rps for x in b])
    verdicts = [f"req/s {ratio:.2f} {'pass' if ratio >= TARGET_RATIO else 'FAIL'} (>= 0.75)"]
    if route in POINT_READS:
        p99 = med([x.p99_ms for x in m]) / med([x.p99_ms for x in b])
        verdicts.append(f"p99 {p99:.1f}x {'pass' if p99 <= TARGET_P99 else 'FAIL'} (<= 2x)")
    return "; ".join(verdicts)


def _errors(samples: list[Any]) -> str:
    total = sum(x.errors for x in samples)
    counts: dict[str, int] = {}
    for x in samples:
        kinds = {k: n for k, n in x.kinds.items() if k != "status" or not x.statuses}
        for what, n in [*kinds.items(), *x.statuses.items()]:
            counts[what] = counts.get(what, 0) + n
    detail = ", ".join(f"{what} {n}" for what, n in sorted(counts.items()))
    return f"{total}" + (f" ({detail})" if detail else "")


def search_rows(result: dict[str, Any]) -> list[str]:
    rows = [
        "| search | req/s | p50 ms | p99 ms | worker CPU us/req | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for route, r in result["search"].items():
        s = r["samples"]
        rows.append(
            f"| {LABELS[route]} | {med([x.rps for x in s]):,.0f} "
            f"| {med([x.p50_ms for x in s]):.1f} | {med([x.p99_ms for x in s]):.1f} "
            f"| {med([x.cpu_us for x in s]):.0f} | {_errors(s)} |"
        )
    return rows


def stream_rows(result: dict[str, Any]) -> list[str]:
    rows = [
        "| customers | server | rows/s | time to first byte | total | time vs baseline "
        "| peak worker RSS | RSS before |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for rnd in result["stream"]:
        base_time = med([x.total_s for x in rnd["samples"]["baseline"]])
        for kind, samples in rnd["samples"].items():
            total = med([x.total_s for x in samples])
            rows.append(
                f"| {rnd['rows']:,} | {kind} | {med([x.rows_per_second for x in samples]):,.0f} "
                f"| {1000 * med([x.ttfb_s for x in samples]):.0f} ms | {total:.2f} s "
                f"| {total / base_time:.2f} x | {med([x.rss_peak_mb for x in samples]):.0f} MB "
                f"| {med([x.rss_before_mb for x in samples]):.0f} MB |"
            )
        if not rnd["same_bytes"]:
            rows.append(f"| {rnd['rows']:,} | | the two bodies differ in length! | | | | | |")
    return rows


def feed_rows(result: dict[str, Any]) -> list[str]:
    f = result["feed"]
    return [
        "| orders placed (wrk) | events followed | events/s followed | wake-up p50 | wake-up p99 |",
        "|---:|---:|---:|---:|---:|",
        f"| {f.placed:,} | {f.followed:,} | {f.events_per_second:,.0f} "
        f"| {f.latency(0.5):.1f} ms | {f.latency(0.99):.1f} ms |",
    ]


WEBHOOK_BUDGET = 0.90  # issue 16: placement with a subscription within 10 % of without


def webhook_rows(result: dict[str, Any]) -> list[str]:
    w = result["webhook"]
    plain = w.plain
    rows = [
        "| POST /api/v1/orders (3 lines) | req/s | p50 ms | p99 ms | worker CPU us/req | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, samples in (("without a subscription", plain), ("with one (every event)", w.samples)):
        if samples:
            rows.append(
                f"| {name} | {med([x.rps for x in samples]):,.0f} "
                f"| {med([x.p50_ms for x in samples]):.1f} "
                f"| {med([x.p99_ms for x in samples]):.1f} "
                f"| {med([x.cpu_us for x in samples]):.0f} | {_errors(samples)} |"
            )
    if w.drained_cpu_us:
        rows.append(
            f"| with one, worker CPU through the drain | | | | {med(w.drained_cpu_us):.0f} | |"
        )
    if plain and w.samples:
        ratio = med([x.rps for x in w.samples]) / med([x.rps for x in plain])
        cpu = med([x.cpu_us for x in w.samples]) / med([x.cpu_us for x in plain])
        verdict = "pass" if ratio >= WEBHOOK_BUDGET else "FAIL"
        drained = (
            f" ({med(w.drained_cpu_us) / med([x.cpu_us for x in plain]):.2f} through the drain)"
            if w.drained_cpu_us
            else ""
        )
        rows.append(
            f"| with / without | {ratio:.2f} ({verdict}: >= {WEBHOOK_BUDGET:.2f}) | | "
            f"| {cpu:.2f}{drained} | |"
        )
    return rows


def median_interval(values: list[float], coverage: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free interval for the median of what ``values`` sample: the k-th lowest
    and the k-th highest of them, k the largest for which at least ``coverage`` of samples of
    that size would hold the median between them (binomial, p = 1/2); None below 6 values,
    too few for 95 %."""
    n, ordered = len(values), sorted(values)
    k, below = 0, 0.0  # below: P(at most k - 1 of the n fall under the median)
    while True:
        below += math.comb(n, k) / 2**n
        if 1 - 2 * below < coverage:
            break
        k += 1
    return (ordered[k - 1], ordered[n - k]) if k else None


def webhook_rounds(result: dict[str, Any]) -> str:
    """Each round's with / without (its two loads ran minutes apart, in alternating order),
    their median and the interval it lies in: the figure to trust on a noisy machine."""
    w = result["webhook"]
    ratios = [x.rps / y.rps for x, y in zip(w.samples, w.plain, strict=True) if y.rps]
    if not ratios:
        return ""
    interval = median_interval(ratios)
    where = (
        f"95 % interval of the median {interval[0]:.2f}-{interval[1]:.2f}"
        if interval
        else "at least 6 rounds (`--repeat`) give it a 95 % interval"
    )
    return (
        f"Rounds, with / without: {', '.join(f'{r:.2f}' for r in ratios)}; median "
        f"{med(ratios):.2f} ({where})."
    )


def webhook_note(result: dict[str, Any]) -> str:
    w = result["webhook"]
    seconds = sum(x.seconds for x in w.samples)
    behind = w.pending_at_end + w.unfanned_at_end  # not yet delivered when the load ended
    rate = w.loaded_events / seconds if seconds else 0.0
    kept_up = behind <= rate * len(w.samples)  # under a second's worth behind, a round
    drained = (
        f"all {w.received:,} received at most {w.drain_s:.1f} s after a load"
        if w.drain_s is not None
        else f"only {w.received:,} received, a drain not done 60 s after its load"
    )
    return (
        f"Deliveries: {w.events:,} events while subscribed; when the loads ended the receiver had "
        f"{w.received_at_end:,} ({w.pending_at_end:,} deliveries pending, {w.unfanned_at_end:,} "
        f"events not yet fanned out, summed over the rounds; {rate:,.0f} events/s made under "
        "load): "
        + ("the relay kept up (under a second's worth behind)" if kept_up else "BEHIND")
        + f"; {drained}; {w.requests - w.received:,} duplicate POSTs, {w.failed} failed. "
        f"The receiver (an asyncio protocol, same machine) took {w.receiver_cpu_us:.0f} us of CPU "
        "per placement."
    )


def scaling_rows(plan: Plan, result: dict[str, Any]) -> list[str]:
    rows = [
        "| workers | marketsvc req/s | baseline req/s | ratio | worker CPU us/req (m / b) "
        "| errors (m / b) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for workers, s in result["scaling"]["workers"].items():
        m, b = s["marketsvc"], s["baseline"]
        m_rps, b_rps = med([x.rps for x in m]), med([x.rps for x in b])
        rows.append(
            f"| {workers} | {m_rps:,.0f} | {b_rps:,.0f} | {m_rps / b_rps:.2f} "
            f"| {med([x.cpu_us for x in m]):.0f} / {med([x.cpu_us for x in b]):.0f} "
            f"| {_errors(m)} / {_errors(b)} |"
        )
    instances = result["scaling"]["instances"]
    if not instances:
        return rows
    rows += [
        "",
        f"Two marketsvc instances ({plan.workers} workers each, different ports, one database), "
        f"each loaded by its own wrk (-c{plan.connections}) at the same time:",
        "",
        "| instances | req/s per instance | req/s in all | worker CPU us/req per instance "
        "| errors |",
        "|---:|---:|---:|---:|---:|",
    ]
    one = result["scaling"]["workers"].get(plan.workers)
    if one:
        m = one["marketsvc"]
        rows.append(
            f"| 1 (row {plan.workers} above) | {med([x.rps for x in m]):,.0f} "
            f"| {med([x.rps for x in m]):,.0f} | {med([x.cpu_us for x in m]):.0f} "
            f"| {_errors(m)} |"
        )
    totals = [sum(run) for run in zip(*([x.rps for x in i] for i in instances), strict=True)]
    rows.append(
        f"| {len(instances)} | "
        + " / ".join(f"{med([x.rps for x in i]):,.0f}" for i in instances)
        + f" | {med(totals):,.0f} | "
        + " / ".join(f"{med([x.cpu_us for x in i]):.0f}" for i in instances)
        + " | "
        + " / ".join(_errors(i) for i in instances)
        + " |"
    )
    return rows


def seed_rows(result: dict[str, Any]) -> list[str]:
    rows = ["| database | rows | time | rows/s |", "|---|---:|---:|---:|"]
    for name, s in result["seed"].items():
        if s is None:
            rows.append(f"| {name} | reused | | |")
        else:
            rows.append(f"| {name} | {s.rows:,} | {s.seconds:.1f} s | {s.rows_per_second:,.0f} |")
    return rows


def render(plan: Plan, results: list[dict[str, Any]], pg_version: str | None) -> str:
    lines = header(plan, pg_version)
    for result in results:
        lines += [f"### {result['backend']}", ""]
        if result["routes"]:
            lines += [*route_rows(result), ""]
        for route, r in result["routes"].items():
            lines += [f"- {LABELS[route]}: JSON differs: {m}" for m in r["mismatches"]]
        lines += [f"- {note}" for note in result["notes"]]
        if result.get("search"):
            lines += [
                "",
                f"Search, marketsvc only, on {plan.search_items:,} items (random words from the "
                f"seed's vocabulary; `--search-items`), {plan.search_connections} connections "
                "(`--search-connections`):",
                "",
            ]
            lines += [*search_rows(result), ""]
        if result.get("webhook"):
            lines += [
                "",
                "Placement with a webhook subscription (marketsvc only; issue 16: within 10 % "
                "of placement without). One server, rounds of: placement without; a "
                "subscription of a local receiver to every event, placement again, its "
                "deliveries drained, the subscription deleted (each run starts with none "
                "pending; every other round runs the subscribed load first):",
                "",
            ]
            lines += [*webhook_rows(result), "", webhook_rounds(result), ""]
            lines += [webhook_note(result), ""]
        if result.get("scaling", {}).get("workers"):
            lines += [
                "",
                f"Scaling with cores: GET /api/v1/customers/{{id}} on {os.cpu_count()} cores, "
                "marketsvc and baseline alternating (issue 19 item 4; `--no-scaling` leaves it "
                "out):",
                "",
            ]
            lines += [*scaling_rows(plan, result), ""]
        if result.get("feed"):
            lines += [
                "",
                "Event feed (marketsvc): a reader long-polls `GET /api/v1/events` "
                "while wrk places orders; wake-up = event time to a waiting reader "
                f"({result['feed'].latencies_ms and len(result['feed'].latencies_ms)} "
                "orders 50 ms apart on a quiet server):",
                "",
            ]
            lines += [*feed_rows(result), ""]
        if result["stream"]:
            lines += ["", "Full `GET /api/v1/customers` stream (JSON array):", ""]
            lines += [*stream_rows(result), ""]
        lines += ["Seeding (`python -m marketsvc seed`, wall clock incl. start-up):", ""]
        lines += [*seed_rows(result), ""]
    return "\n".join(lines)
