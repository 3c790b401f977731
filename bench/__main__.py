"""`make bench`: every benchmark the issues ask for, as one Markdown table and bench/results.json.

Figures are medians or percentiles of repeated measurements on the local stack; machines here are
shared and noisy, so nothing here is a pass/fail test.

`python -m bench --only load,hotkeys` runs only the named groups (GROUPS), prints their rows, and
puts them into bench/results.json in place of the same figures (the other rows stay).
"""

from __future__ import annotations

import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import (
    aggregation,
    alerts,
    archive,
    bill_run,
    dashboard,
    funnels,
    hotkeys,
    ingest_cpu,
    lambdas,
    load,
    queries,
    tracker,
    v2,
)

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results.json"
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
SITE = "bench.example"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: Any, ip: str) -> None:
    request = urllib.request.Request(
        url + "/api/event",
        data=json.dumps(body).encode(),
        headers={"content-type": "text/plain", "user-agent": UA, "x-forwarded-for": ip},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202, response.status


def get_json(url: str, key: str) -> Any:
    request = urllib.request.Request(url, headers={"authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def progress(phase: str) -> None:
    """What the bench is doing, on stderr (stdout belongs to the functions' logs until the end)."""
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"bench: {phase} (peak memory so far {peak_mb} MB)", file=sys.__stderr__, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def freshness(url: str, key: str, samples: int = 40) -> tuple[float, float]:
    """Seconds from a POST /api/event to the realtime API counting it."""
    realtime = f"{url}/api/realtime?site_id={SITE}"
    latencies = []
    for i in range(samples):
        before = get_json(realtime, key)["pageviews"]
        started = time.perf_counter()
        post(
            url,
            {"n": "pageview", "u": f"https://{SITE}/fresh/{i}", "d": SITE},
            f"198.51.100.{i % 250 + 1}",
        )
        while get_json(realtime, key)["pageviews"] <= before:
            time.sleep(0.02)
        latencies.append(time.perf_counter() - started)
    return statistics.median(latencies), percentile(latencies, 0.95)


def traffic(url: str, pageviews: int, visitors: int, threads: int = 4) -> None:
    """Realistic sessions: each visitor views a few pages; sent by a few concurrent clients."""
    rnd = random.Random(7)
    plan = [
        (f"203.0.113.{rnd.randrange(visitors) + 1}", f"/p/{rnd.randrange(40)}")
        for _ in range(pageviews)
    ]
    chunks = [plan[i::threads] for i in range(threads)]

    def send(chunk: list[tuple[str, str]]) -> None:
        for ip, path in chunk:
            post(url, {"n": "pageview", "u": f"https://{SITE}{path}", "d": SITE}, ip)

    workers = [threading.Thread(target=send, args=(c,)) for c in chunks]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def wait_counted(url: str, key: str, expected: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    realtime = f"{url}/api/realtime?site_id={SITE}"
    while get_json(realtime, key)["pageviews"] < expected:
        if time.monotonic() > deadline:
            raise TimeoutError("traffic was not aggregated in time")
        time.sleep(0.2)


COLD_START = """
import time
started = time.perf_counter()
import ingest.handler as h
from local.front import api_gateway_event
from local.runtime import LambdaContext
event = api_gateway_event("POST", "/api/event", {"content-type": "text/plain", "user-agent": %(ua)r,
    "x-forwarded-for": "198.51.100.9"}, b'{"n":"pageview","u":"https://%(site)s/cold","d":"%(site)s"}', "127.0.0.1")
response = h.handler(event, LambdaContext("ingest"))
assert response["statusCode"] == 202, response
print(time.perf_counter() - started)
"""


def cold_start(env: dict[str, str], runs: int = 5) -> float:
    """Fresh interpreter: imports + first invocation of the ingest handler, median of `runs`."""
    script = COLD_START % {"ua": UA, "site": SITE}
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO,
            env={**env, "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"},
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


EVENTS = int(os.environ.get("BENCH_CAMPAIGN_EVENTS", "2000"))
SCHEDULES = int(os.environ.get("BENCH_CAMPAIGN_SCHEDULES", "20"))
FLOOD_PATHS = int(os.environ.get("BENCH_FLOOD_PATHS", "100000"))


LOW_RATE = float(os.environ.get("BENCH_LOW_RATE", "2"))
LOW_RATE_SECONDS = float(os.environ.get("BENCH_LOW_RATE_SECONDS", "60"))


def low_rate_cost(
    url: str,
    key: str,
    meter: Any,
    stack: Any,
    seconds: float = LOW_RATE_SECONDS,
    rate: float = LOW_RATE,
) -> list[dict[str, Any]]:
    """Units per pageview at a realistic, low rate: most batches then hold one or two events.
    (What they cost, with every other line item, is the `bill` group's.)"""
    rnd = random.Random(11)
    counted = get_json(f"{url}/api/realtime?site_id={SITE}", key)["pageviews"]
    meter.reset()
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        post(
            url,
            {"n": "pageview", "u": f"https://{SITE}/slow/{rnd.randrange(30)}", "d": SITE},
            f"192.0.2.{rnd.randrange(60) + 1}",
        )
        sent += 1
        time.sleep(rnd.expovariate(rate))
    wait_counted(url, key, counted + sent)
    stack.flush()  # the rollup tier's batch too, before its window ends
    time.sleep(1.5)
    usage = meter.reset()
    return [
        {
            "figure": f"write units per pageview at {rate:g} pageviews/s (all tables)",
            "value": round(usage.total_write_units / sent, 3),
            "unit": "WCU",
            "goal": "",
            "anchor": "",
        },
    ]


# Groups that run on their own (each starts what it needs), in `make bench` after the rest.
GROUPS: dict[str, Any] = {
    "alerts": alerts.rows,  # spike-to-webhook latency on the local stack (bench/alerts.py)
    "archive": archive.rows,  # the event archive: size, cost, engine latency (bench/archive.py)
    "bill": lambda: bill_run.rows(progress),
    "freshness": dashboard.freshness_rows,
    "funnels": funnels.rows,  # a 4-step funnel and journeys over the archive (bench/funnels.py)
    "handler": ingest_cpu.rows,
    "hotkeys": hotkeys.rows,
    "lambdas": lambdas.rows,  # zip sizes and cold starts (bench/lambdas.py)
    "load": lambda: load.sustained()[0],
    "shutdown": load.shutdown,
    "v2": v2.rows,  # a v2 question from the archive (bench/v2.py)
}


def write_and_print(rows: list[dict[str, Any]], merge: bool = False) -> None:
    """The rows as the table; into results.json (in place of the same figures, with `merge`)."""
    kept = json.loads(RESULTS.read_text()) if merge and RESULTS.exists() else []
    figures = {r["figure"] for r in rows}
    merged = [r for r in kept if r["figure"] not in figures] + rows if merge else rows
    RESULTS.write_text(json.dumps(merged, indent=2) + "\n")
    print("| figure | value | unit | goal | anchor |\n|---|---:|---|---|---|")
    for r in rows:
        print(f"| {r['figure']} | {r['value']:g} | {r['unit']} | {r['goal']} | {r['anchor']} |")
    print(f"\n(rows also in {RESULTS.relative_to(REPO)})")


def run_groups(names: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in names:
        progress(name)
        rows.extend(GROUPS[name]())
    return rows


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", help=f"comma-separated groups: {', '.join(GROUPS)}")
    args = parser.parse_args(argv)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(names) - set(GROUPS))
        if unknown:
            parser.error(f"unknown group(s) {', '.join(unknown)}; known: {', '.join(GROUPS)}")
        write_and_print(run_groups(names), merge=True)
        return 0
    return run_all()


def run_all() -> int:
    from core.aws import READ_TIMEOUT_VARIABLE
    from local.meter import CapacityMeter

    # moto runs in this process, beside the stack and the campaign: give its slow calls time.
    os.environ.setdefault(READ_TIMEOUT_VARIABLE, "300")
    from local.stack import LocalStack, StackConfig, aws_environment

    # The functions log at DEBUG here: the bill (bench/bill.py) applies Terraform's level itself.
    os.environ["POWERTOOLS_LOG_LEVEL"] = "DEBUG"
    meter = CapacityMeter()
    meter.install()
    rows: list[dict[str, Any]] = []

    def row(figure: str, value: float, unit: str, goal: str, anchor: str = "") -> None:
        rows.append(
            {
                "figure": figure,
                "value": round(value, 4),
                "unit": unit,
                "goal": goal,
                "anchor": anchor,
            }
        )

    with (
        tempfile.TemporaryDirectory() as data_dir,
        (Path(data_dir) / "lambda.log").open("w") as log,
    ):
        # The functions' JSON logs and EMF metrics go to a file, as in `liveinsight dev`.
        console, sys.stdout = sys.stdout, log
        stack = LocalStack(StackConfig(port=free_port(), data_dir=Path(data_dir), persist=False))
        stack.start()
        try:
            from core.aws import make_client
            from core.sites import SiteStore

            sites = SiteStore(make_client("dynamodb"), stack.names["meta"])
            sites.add(SITE)
            key = sites.create_key(SITE)
            url = stack.url

            progress("freshness")
            p50, p95 = freshness(url, key)
            row(
                "freshness p50 (POST → realtime API)",
                p50,
                "s",
                "",
                "Umami polls every 10 s, Plausible every 30 s",
            )
            row("freshness p95 (POST → realtime API)", p95, "s", "≤ 2")

            counted = get_json(f"{url}/api/realtime?site_id={SITE}", key)["pageviews"]
            meter.reset()
            invocations_before = {name: f.invocations for name, f in stack.functions.items()}
            pageviews = 1000
            progress("burst traffic")
            traffic(url, pageviews, visitors=250)
            wait_counted(url, key, counted + pageviews)
            stack.flush()  # the rollup tier's batch too, before its window ends
            time.sleep(1.5)  # let the last batch's writes land before reading the meter
            usage = meter.reset()
            write_units = usage.total_write_units / pageviews
            row("DynamoDB write units per pageview (all tables)", write_units, "WCU", "")
            for table, units in sorted(usage.write_units.items()):
                row(f"  … of which {table.rsplit('-', 1)[-1]}", units / pageviews, "WCU", "")
            ingest_read_units = usage.total_read_units / pageviews
            row(
                "DynamoDB read units per pageview (ingest + aggregator)",
                ingest_read_units,
                "RCU",
                "",
            )
            calls = {
                n: stack.functions[n].invocations - invocations_before[n]
                for n in stack.functions
                if n != "query"
            }
            for name in sorted(n for n in calls if n.startswith("aggregator")):
                row(
                    f"{name} invocations per 1,000 pageviews",
                    calls[name] * 1000 / pageviews,
                    "",
                    "",
                )
            # What a pageview costs, every line item: the `bill` group (bench/bill_run.py).

            meter.reset()
            get_json(f"{url}/api/realtime?site_id={SITE}", key)
            refresh = meter.reset()
            row("realtime refresh: read units", refresh.total_read_units, "RCU", "≤ 10")
            row("realtime refresh: items read", sum(refresh.items_read.values()), "items", "")

            progress("dashboard in Chromium")
            rows.extend(dashboard.rows(url, SITE, key))

            env = {**os.environ, **aws_environment(stack.moto.endpoint)}
            row(
                "ingest cold start (imports + first invocation, median of 5)",
                cold_start(env) * 1000,
                "ms",
                "≤ 250",
            )

            progress("low-rate traffic")
            rows.extend(low_rate_cost(url, key, meter, stack))
            progress("steady traffic in batching windows")
            rows.extend(aggregation.steady_window_cost(stack.moto.endpoint, meter))
            progress("mid-month traffic")
            rows.extend(aggregation.mid_month_cost(stack.moto.endpoint, meter))
            rows.extend(aggregation.mid_month_cost(stack.moto.endpoint, meter, rollup_window=60))
            progress("aggregator CPU")
            rows.extend(aggregation.cpu_per_batch())
            progress("oracle campaign")
            rows.extend(aggregation.campaign(stack.moto.endpoint, meter, EVENTS, SCHEDULES))
            for scale in (1, 10):
                progress(f"queries at {scale}x traffic")
                rows.extend(queries.measure(stack.moto.endpoint, meter, scale))
            progress("flood")
            rows.extend(aggregation.flood(stack.moto.endpoint, paths=FLOOD_PATHS))
            # Groups that start what they need (with the functions' logs still going to the file)
            rows.extend(run_groups(list(GROUPS)))
        finally:
            stack.stop()
            meter.uninstall()
            sys.stdout = console

    rows.extend(tracker.rows())
    write_and_print(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
