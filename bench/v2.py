"""`make bench` group `v2`: a Stats API v2 question answered from the archive (issue 19).

The question the issue names: two dimensions and two filters over 30 days at 1 M pageviews a
month (and 10 M), on one core: dimensions `visit:device` and `event:page`, filters
`["is", "visit:source", ["Google"]]` and `["is", "visit:country", ["US"]]`, metrics visitors,
pageviews, bounce_rate, the first 100 rows by visitors. The archives and the one-core runner are
bench/archive.py's (`generate`, `_on_one_core`): the same 32 day files the v1 row reads, so the
two rows compare the engines. p50/p95 wall and CPU, bytes read, peak memory, $ per 1,000 queries
(`archive.query_usd_per_1000`).

A second question, the same dimensions with `["is_not", "visit:source", ["Google"]]` alone: a
negation narrows no visitor before the sort, so every counted event is sorted (at 10 M the
engine answers it in parts by visitor key, decision 0033 "After the engine work").
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import archive

GOALS_SECONDS = {1_000_000: 1.5, 10_000_000: 5.0}
RUNS = {1_000_000: 9, 10_000_000: 5}
NEGATION_RUNS = {1_000_000: 5, 10_000_000: 3}
DIMENSIONS = ["visit:device", "event:page"]
FILTERS = [["is", "visit:source", ["Google"]], ["is", "visit:country", ["US"]]]
NEGATION = [["is_not", "visit:source", ["Google"]]]
METRICS = ["visitors", "pageviews", "bounce_rate"]

# Runs in a fresh interpreter held to one core, as the query function would.
RUNNER = r"""
import json, resource, sys, time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo
sys.path.insert(0, sys.argv[1])
spec = json.loads(sys.argv[2])

def rchar():
    with open("/proc/self/io") as f:
        return int(next(l for l in f if l.startswith("rchar")).split()[1])

started = time.perf_counter()
from core.sites import Site
from query_api.v2.engine import V2ArchiveEngine
from query_api.v2.model import Condition, V2Query
imported = time.perf_counter() - started
site = Site(spec["site"], tz=spec["tz"])
first, last = date.fromisoformat(spec["first"]), date.fromisoformat(spec["last"])
zone = ZoneInfo(spec["tz"])
start = int(datetime.combine(first, datetime.min.time(), zone).timestamp() * 1000)
end = int(datetime.combine(last + timedelta(days=1), datetime.min.time(), zone).timestamp() * 1000)
filters = tuple(Condition(op, dim, tuple(values)) for op, dim, values in spec["filters"])
metrics = tuple(spec["metrics"])
query = V2Query(site, metrics, first, last, start, end, dimensions=tuple(spec["dimensions"]),
                filters=filters, order_by=((metrics[0], "desc"),), limit=100)
times, reads, cpus = [], [], []
result = None
for _ in range(spec["runs"]):
    engine = V2ArchiveEngine(site, spec["files"])  # a fresh engine: nothing kept between queries
    r0, c0, t0 = rchar(), time.process_time(), time.perf_counter()
    result = engine.run(query)
    times.append(time.perf_counter() - t0)
    cpus.append(time.process_time() - c0)
    reads.append(rchar() - r0)
print(json.dumps({
    "seconds": times, "cpu": cpus, "read_bytes": reads, "import_seconds": imported,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rows": result.total_rows if result else 0,
    "top": list(result.rows[0].dimensions + result.rows[0].metrics) if result and result.rows else None,
}, default=str))
"""


def run_queries(files: list[Path], runs: int, filters: list[Any] = FILTERS) -> dict[str, Any]:
    first = archive.LAST_DAY - timedelta(days=archive.QUERY_DAYS - 1)
    spec = {
        "site": archive.SITE,
        "tz": archive.TZ,
        "first": first.isoformat(),
        "last": archive.LAST_DAY.isoformat(),
        "dimensions": DIMENSIONS,
        "filters": filters,
        "metrics": METRICS,
        "files": [str(f) for f in files],
        "runs": runs,
    }
    return archive._on_one_core("v2 query", RUNNER, json.dumps(spec))


def rows(volumes: tuple[int, ...] = (1_000_000, 10_000_000)) -> list[dict[str, Any]]:
    from bench import terraform_facts

    memory = terraform_facts.read().functions["query"].memory_mb
    out: list[dict[str, Any]] = []
    anchor = "issue 19"
    for volume in volumes:
        label = f"{volume // 1_000_000} M pageviews/month"
        started = time.perf_counter()
        files, events = archive.generate(volume)
        print(
            f"bench v2: {label}: {events:,} events in {len(files)} files "
            f"({time.perf_counter() - started:.0f} s)",
            file=sys.__stderr__,
            flush=True,
        )
        measured = run_queries(files, RUNS[volume])
        seconds, cpus = measured["seconds"], measured["cpu"]
        p50, p95 = statistics.median(seconds), archive.percentile(seconds, 0.95)
        cpu, cpu_p95 = statistics.median(cpus), archive.percentile(cpus, 0.95)
        what = (
            f"v2 query, 2 dimensions (visit:device, event:page) and 2 filters, 30 days, {label}, "
            "one core, V2ArchiveEngine"
        )
        goal = f"≤ {GOALS_SECONDS[volume]:g} s" if volume == 1_000_000 else ""
        row = archive._row
        out += [
            row(f"v2 query p50 ({what})", p50, "s", goal, anchor),
            row(f"v2 query p95 ({what})", p95, "s", goal, anchor),
            row(f"v2 query CPU p50 ({what})", cpu, "s", goal, anchor),
            row(f"v2 query CPU p95 ({what})", cpu_p95, "s", goal, anchor),
            row(f"v2 query: machine load average after the runs ({label})", os.getloadavg()[0], ""),
            row(
                f"v2 query: bytes read ({label})",
                statistics.median(measured["read_bytes"]) / 1e6,
                "MB",
                "",
                anchor,
            ),
            row(f"v2 query: peak memory ({label})", measured["peak_rss_mb"], "MB", "", anchor),
            row(f"v2 query: rows in all ({label})", measured["rows"], "", "", anchor),
            row(
                f"v2 query: $ per 1,000 queries ({label}; Lambda at {memory} MB arm64, "
                "32 GETs each: a cold cache)",
                archive.query_usd_per_1000(cpu, len(files), memory),
                "USD",
                "",
                anchor,
            ),
        ]
        negation = run_queries(files, NEGATION_RUNS[volume], NEGATION)
        what = f"v2 query, a negation (visit:source is_not Google) by device x page, {label}"
        out += [
            row(f"{what}: p50", statistics.median(negation["seconds"]), "s", "", anchor),
            row(f"{what}: CPU p50", statistics.median(negation["cpu"]), "s", "", anchor),
            row(f"{what}: CPU p95", archive.percentile(negation["cpu"], 0.95), "s", "", anchor),
            row(f"{what}: peak memory", negation["peak_rss_mb"], "MB", "", anchor),
            row(f"{what}: machine load average after the runs", os.getloadavg()[0], ""),
        ]
    return out


if __name__ == "__main__":
    only = tuple(int(v) for v in sys.argv[1:]) or (1_000_000, 10_000_000)
    for r in rows(only):
        print(f"| {r['figure']} | {r['value']} {r['unit']} | {r['goal']} | {r['anchor']} |")
