"""`make bench` group `funnels`: a funnel of 4 steps and a journey question over 30 days of a
site at 1 M pageviews a month (issue 19; goal ≤ 2 s for the funnel).

The archive is bench/archive.py's synthetic one (its generator and cache, its 32 day files: the
query's 30 days and one on each side) and the engine is the real one
(`query_api.funnels.PathEngine`), run by bench/archive.py's runner in a fresh interpreter held
to one core, as on Lambda at 1,769 MB: p50/p95 latency and CPU, peak memory.
"""

from __future__ import annotations

import json
import statistics
from datetime import timedelta
from typing import Any

from bench.archive import LAST_DAY, QUERY_DAYS, SITE, TZ, _on_one_core, generate, percentile

VOLUME = 1_000_000
RUNS = 9
GOAL_SECONDS = 2.0
# The synthetic site's pages are "/" and "/docs/page-N" (the low N most viewed); its custom
# events "Signup" and "Outbound Link: Click" follow a tenth of the pageviews.
STEPS = ["Visit /", "Visit /docs/*", "Visit /docs/page-1*", "Signup"]
ENTRY = "/"

RUNNER = r"""
import json, resource, sys, time
from datetime import date
sys.path.insert(0, sys.argv[1])
spec = json.loads(sys.argv[2])
from core.funnels import Funnel, validate_steps
from core.sites import Site
from query_api.funnels import PathEngine
from query_api.parse import DateRange, Query
site = Site(spec["site"], tz=spec["tz"])
query = Query(site, DateRange(date.fromisoformat(spec["first"]), date.fromisoformat(spec["last"])))
funnel = Funnel("0" * 12, site.domain, "bench", validate_steps(spec["steps"]))
out = {"funnel": [], "funnel_cpu": [], "journeys": [], "journeys_cpu": []}
for _ in range(spec["runs"]):
    engine = PathEngine(site, spec["files"])  # a fresh engine: nothing kept between questions
    c0, t0 = time.process_time(), time.perf_counter()
    result = engine.funnel(funnel, query)
    out["funnel"].append(time.perf_counter() - t0)
    out["funnel_cpu"].append(time.process_time() - c0)
    engine = PathEngine(site, spec["files"])
    c0, t0 = time.process_time(), time.perf_counter()
    paths = engine.journeys(query, spec["entry"], from_entry=True, steps=3, limit=10)
    out["journeys"].append(time.perf_counter() - t0)
    out["journeys_cpu"].append(time.process_time() - c0)
out["visitors"] = [s.visitors for s in result.steps]
out["top_path"] = list(paths[0].path) if paths else []
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def measure(runs: int = RUNS) -> dict[str, Any]:
    files, _ = generate(VOLUME)
    spec = {
        "site": SITE,
        "tz": TZ,
        "first": (LAST_DAY - timedelta(days=QUERY_DAYS - 1)).isoformat(),
        "last": LAST_DAY.isoformat(),
        "steps": STEPS,
        "entry": ENTRY,
        "files": [str(f) for f in files],
        "runs": runs,
    }
    return _on_one_core("funnel query", RUNNER, json.dumps(spec))


def _row(figure: str, value: float, unit: str, goal: str = "") -> dict[str, Any]:
    anchor = "issue 19; query_api/funnels.py"
    return {
        "figure": figure,
        "value": round(value, 4),
        "unit": unit,
        "goal": goal,
        "anchor": anchor,
    }


def rows() -> list[dict[str, Any]]:
    measured = measure()
    label = "30 days, 1 M pageviews/month, one core"
    goal = f"≤ {GOAL_SECONDS:g} s"
    out = []
    for key, what, wanted in (
        ("funnel", f"4-step funnel ({label}, PathEngine)", goal),
        ("journeys", f"journeys from the entry page {ENTRY}, 3 steps ({label})", ""),
    ):
        seconds, cpu = measured[key], measured[f"{key}_cpu"]
        out += [
            _row(f"{what} p50", statistics.median(seconds), "s", wanted),
            _row(f"{what} p95", percentile(seconds, 0.95), "s", wanted),
            _row(f"{what} CPU p50", statistics.median(cpu), "s", wanted),
        ]
    out.append(_row(f"funnel and journeys: peak memory ({label})", measured["peak_rss_mb"], "MB"))
    visitors = measured["visitors"]
    out.append(_row(f"funnel: visitors entering ({label})", visitors[0], "visitors"))
    out.append(_row(f"funnel: visitors completing all 4 steps ({label})", visitors[-1], "visitors"))
    return out


if __name__ == "__main__":
    for r in rows():
        print(f"| {r['figure']} | {r['value']} {r['unit']} | {r['goal']} | {r['anchor']} |")
