"""`make soak`: `liveinsight dev` with demo traffic for an hour (`--minutes` to try it for a few),
as `make dev` runs it (data kept, rollup window 10 s), watched from outside.

Every SAMPLE seconds: the process's resident memory, the functions' log (lambda.log and the
rotated lambda.log.1), the data dir, and the items the stack holds (from its snapshot). At the
end: errors in the log, and SIGTERM to exit. Growth per hour is the slope of a least-squares line
through the samples after WARM_UP (start-up, first imports, iterators filling); the items are
the demo's own data (raw events live 7 days), so memory per stored item is shown beside it.

Not in `make bench` or `make test`: it takes its whole duration. Bounded: it sends nothing itself
(the demo's generator stops by itself after 20,000 events) and stops after `--minutes`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.devstack import DevProcess

SAMPLE = 30.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1024 / 1024


def log_mb(data_dir: Path) -> float:
    logs = [data_dir / "lambda.log", data_dir / "lambda.log.1"]
    return sum(p.stat().st_size for p in logs if p.exists()) / 1024 / 1024


def stored_items(data_dir: Path) -> int:
    try:
        saved = json.loads((data_dir / "snapshot.json").read_text())
    except (OSError, ValueError):
        return 0
    return sum(len(items) for items in saved.get("tables", {}).values())


def errors(data_dir: Path) -> list[str]:
    """Log lines at ERROR or worse, in lambda.log and its rotated predecessor."""
    found = []
    for path in (data_dir / "lambda.log.1", data_dir / "lambda.log"):
        if not path.exists():
            continue
        with path.open(errors="replace") as log:
            for line in log:
                if '"level":"ERROR"' in line or '"level":"CRITICAL"' in line:
                    found.append(line.strip()[:300])
    return found


WARM_UP = 360.0  # seconds: start-up, first imports, and shard iterators filling their 5 minutes


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per hour, after the warm-up (or the first tenth
    of a run too short to leave three samples after it)."""
    if len(samples) < 3:
        return 0.0
    kept = [(t, v) for t, v in samples if t >= WARM_UP]
    if len(kept) < 3:
        kept = samples[len(samples) // 10 :]
    n = len(kept)
    mean_t = sum(t for t, _ in kept) / n
    mean_v = sum(v for _, v in kept) / n
    spread = sum((t - mean_t) ** 2 for t, _ in kept)
    if not spread:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in kept) / spread * 3600


def soak(minutes: float, sample: float = SAMPLE) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        data_dir = Path(tmp)
        dev = DevProcess(data_dir, "--demo-traffic", "--rollup-window", "10")
        series: dict[str, list[tuple[float, float]]] = {
            "rss": [],
            "log": [],
            "data": [],
            "items": [],
        }
        started = time.monotonic()
        try:
            while time.monotonic() - started < minutes * 60:
                time.sleep(min(sample, max(0.0, minutes * 60 - (time.monotonic() - started))))
                at = time.monotonic() - started
                series["rss"].append((at, rss_mb(dev.process.pid)))
                series["log"].append((at, log_mb(data_dir)))
                series["data"].append((at, dir_mb(data_dir) - log_mb(data_dir)))
                series["items"].append((at, stored_items(data_dir)))
                print(
                    f"soak {at / 60:5.1f} min: rss {series['rss'][-1][1]:.0f} MB, "
                    f"log {series['log'][-1][1]:.1f} MB, data {series['data'][-1][1]:.1f} MB, "
                    f"items {series['items'][-1][1]:.0f}",
                    file=sys.stderr,
                    flush=True,
                )
        except BaseException:
            dev.kill()
            raise
        seconds, code = dev.terminate()
        logged = errors(data_dir)
        console = dev.output.read_text()
    growth = {name: slope_per_hour(points) for name, points in series.items()}
    per_item_kb = growth["rss"] * 1024 / growth["items"] if growth["items"] > 0 else 0.0
    span = f"{minutes:g} min of demo traffic (1.5 events/s)"
    rows = [
        {
            "figure": f"soak: memory growth of liveinsight dev ({span})",
            "value": round(growth["rss"], 1),
            "unit": "MB/h",
            "goal": "bounded",
            "anchor": (
                f"rss {series['rss'][0][1]:.0f} → {series['rss'][-1][1]:.0f} MB; stored items "
                f"+{growth['items']:.0f}/h (the demo's data, kept 7 days): {per_item_kb:.1f} KB "
                "of memory per item stored"
            )
            if series["rss"]
            else "",
        },
        {
            "figure": "soak: lambda.log growth (rotated past 50 MB, one old log kept)",
            "value": round(growth["log"], 1),
            "unit": "MB/h",
            "goal": "bounded",
            "anchor": "at most 2 x 50 MB on disk",
        },
        {
            "figure": "soak: data dir growth (snapshot, without logs)",
            "value": round(growth["data"], 2),
            "unit": "MB/h",
            "goal": "bounded",
            "anchor": "the stored data itself (raw events expire after 7 days)",
        },
        {
            "figure": "soak: errors in .liveinsight/lambda.log",
            "value": len(logged),
            "unit": "lines",
            "goal": "0",
            "anchor": logged[0][:160] if logged else "",
        },
        {
            "figure": "soak: shutdown after the soak (SIGTERM → exit)",
            "value": round(seconds, 2),
            "unit": "s",
            "goal": "≤ 5, data saved",
            "anchor": f"exit {code}; " + (console.strip().splitlines() or [""])[-1][-200:],
        },
    ]
    return rows, series


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--sample", type=float, default=SAMPLE, help="seconds between samples")
    args = parser.parse_args(argv)
    from bench.__main__ import write_and_print

    rows, _ = soak(args.minutes, args.sample)
    write_and_print(rows, merge=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
