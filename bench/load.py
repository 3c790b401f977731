"""Sustained ingest on the local stack, and how long the stack takes to stop after traffic.

`liveinsight dev` runs in a subprocess (`--no-persist --rollup-window 10`, as `make dev` batches
the rollup tier), and a paced generator on 127.0.0.1 raises the rate step by step, each step on a
site of its own for HOLD seconds. A step holds when every event is answered 202 and counted by
the realtime API, the generator kept the rate, and no freshness probe waited more than 5 s.
Bounded: at most len(RATES) steps, each at most rate x HOLD events, and it stops at the first
step that does not hold.

Left out: API Gateway, Lambda's concurrency (one warm instance per function here, as the stack
emulates it) and DynamoDB's real latency; the generator shares the machine's two cores with the
stack (and with whatever else runs), so the figure is this machine's, not AWS's.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.devstack import DevProcess, Probe, paced_load

RATES = (25, 50, 100, 150, 200, 250, 300, 400, 500)
HOLD = float(os.environ.get("BENCH_LOAD_HOLD", "60"))
LATE = 5.0  # seconds: an event counted later than this is "delayed"
SHUTDOWN_MINUTES = float(os.environ.get("BENCH_SHUTDOWN_MINUTES", "6"))
SHUTDOWN_RATE = 20.0  # events/s of test traffic beside the demo's 1.5/s


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def step(dev: DevProcess, rate: float, hold: float) -> dict[str, Any]:
    site = f"load-{rate:g}.example"
    key = dev.add_site(site)
    probe_site = f"probe-{rate:g}.example"
    probe_key = dev.add_site(probe_site)
    with Probe(dev, probe_site, probe_key) as probe:
        load = paced_load(dev.url, site, rate, hold)
    deadline = time.monotonic() + 60
    counted = dev.pageviews(site, key)
    while counted < load.accepted and time.monotonic() < deadline:
        time.sleep(1)
        counted = dev.pageviews(site, key)
    delays = probe.delays
    outcome = {
        "rate": rate,
        "sent_rate": load.rate,
        "accepted": load.accepted,
        "counted": counted,
        "refused": sum(load.statuses.values()) + load.errors,
        "probe_lost": probe.lost,
        "p50": statistics.median(delays) if delays else 0.0,
        "p95": percentile(delays, 0.95),
        "max": max(delays, default=0.0),
    }
    outcome["held"] = (
        load.rate >= 0.97 * rate
        and outcome["refused"] == 0
        and counted == load.accepted == load.sent
        and probe.lost == 0
        and bool(delays)
        and outcome["max"] <= LATE
    )
    return outcome


def sustained(hold: float = HOLD) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows, and every step's outcome (for the report)."""
    steps: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        dev = DevProcess(Path(tmp), "--no-persist", "--rollup-window", "10")
        try:
            for rate in RATES:
                outcome = step(dev, rate, hold)
                steps.append(outcome)
                print(f"bench load: {outcome}", file=sys.stderr, flush=True)
                if not outcome["held"]:
                    break
        finally:
            dev.terminate()
    held = [s for s in steps if s["held"]]
    best = held[-1] if held else None
    failed = next((s for s in steps if not s["held"]), None)
    why = _why(failed) if failed else f"held every rate up to {RATES[-1]}"
    note = (
        f"{hold:g} s per step on liveinsight dev (rollup window 10 s); next step: {why}; "
        "leaves out API Gateway, Lambda concurrency, DynamoDB latency; generator on the same 2 cores"
    )
    return [
        {
            "figure": f"sustained ingest on the local stack (0 lost, none later than {LATE:g} s, no 5xx)",
            "value": best["rate"] if best else 0,
            "unit": "events/s",
            "goal": "≥ 200",
            "anchor": note,
        },
        {
            "figure": "  … realtime freshness p95 at that rate (probe POST → realtime API)",
            "value": round(best["p95"], 2) if best else 0,
            "unit": "s",
            "goal": "≤ 5",
            "anchor": f"p50 {best['p50']:.2f} s, max {best['max']:.2f} s" if best else "",
        },
    ], steps


def _why(outcome: dict[str, Any]) -> str:
    reasons = []
    if outcome["sent_rate"] < 0.97 * outcome["rate"]:
        reasons.append(f"answered only {outcome['sent_rate']:.0f}/s with 64 requests in flight")
    if outcome["refused"]:
        reasons.append(f"{outcome['refused']} not answered 202")
    if outcome["counted"] != outcome["accepted"] or outcome["probe_lost"]:
        reasons.append(f"{outcome['accepted'] - outcome['counted']} not counted")
    if outcome["max"] > LATE:
        reasons.append(f"probe max {outcome['max']:.1f} s (p95 {outcome['p95']:.1f} s)")
    return f"{outcome['rate']}/s failed ({', '.join(reasons) or 'no probe counted'})"


def shutdown(minutes: float = SHUTDOWN_MINUTES) -> list[dict[str, Any]]:
    """`liveinsight dev --demo-traffic` (data kept) with test traffic beside it for `minutes`,
    then SIGTERM: seconds until it exited, and whether it saved."""
    with tempfile.TemporaryDirectory(prefix="bench-shutdown-") as tmp:
        dev = DevProcess(Path(tmp), "--demo-traffic", "--rollup-window", "10")
        try:
            key = dev.add_site("traffic.example")
            load = paced_load(dev.url, "traffic.example", SHUTDOWN_RATE, minutes * 60, threads=4)
            counted = dev.pageviews("traffic.example", key)
        except BaseException:
            dev.kill()
            raise
        seconds, code = dev.terminate()
        said = dev.output.read_text()
        saved = code == 0 and "Saved" in said and (Path(tmp) / "snapshot.json").exists()
        steps = said.rsplit("(", 1)[-1].split(")")[0] if "Saved" in said else said[-300:]
    return [
        {
            "figure": f"dev stack shutdown after {minutes:g} minutes of demo + test traffic (SIGTERM → exit)",
            "value": round(seconds, 2),
            "unit": "s",
            "goal": "≤ 5, data saved",
            "anchor": (
                f"{'saved' if saved else f'NOT saved (exit {code})'}; {load.accepted} test events "
                f"({counted} counted) at {SHUTDOWN_RATE:g}/s + demo 1.5/s; steps: {steps}; one run"
            ),
        }
    ]
