"""Bench rows for the deployable Lambdas: zip sizes and a cold-start proxy per function.

Sizes are those of the arm64 zips Terraform deploys (scripts/package.py, the same code as
`make package`). The cold-start proxy cannot run an aarch64 zip here, so it times the x86_64
variant built by the same code: a fresh base interpreter (`python3.11 -I -S -B`: no site-packages,
no .pyc written, as on Lambda's read-only file system) whose only non-stdlib path is the unpacked
zip, timing the import of the handler module inside the process. Median of 5 runs; the machine is
shared and noisy, so these are figures, not gates.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from scripts.package import AARCH64, FUNCTIONS, MB, X86_64, base_python, build

RUNS = 5
# DESIGN.md / decision 0004: ingest's cold-start budget; the others have none of their own.
IMPORT_GOALS = {"ingest": "≤ 250 ms", "aggregator": "≤ 400 ms", "query": "≤ 600 ms"}
IMPORT_ANCHOR = "DESIGN.md: plain handler ~200 ms, FastAPI + Mangum ~400 ms of imports"
SIZE_ANCHOR = "Lambda limits: 50 MB zipped (direct upload), 250 MB unzipped"

TIMER = (
    "import importlib, sys, time\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "started = time.perf_counter()\n"
    "importlib.import_module(sys.argv[2])\n"
    "print(time.perf_counter() - started)\n"
)


def import_seconds(root: Path, module: str, runs: int = RUNS) -> float:
    """Median seconds to import `module` in a fresh interpreter that sees only `root`."""
    samples = []
    for _ in range(runs):
        done = subprocess.run(
            [base_python(), "-I", "-S", "-B", "-c", TIMER, str(root), module],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        samples.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def rows() -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-lambdas-") as tmp:
        out = Path(tmp)
        for name, function in FUNCTIONS.items():
            deployed = build(function, AARCH64, out / "arm64")
            result.append(
                {
                    "figure": f"{name} zip size (arm64, deployed)",
                    "value": round(deployed.zipped_bytes / MB, 2),
                    "unit": "MB",
                    "goal": f"≤ {function.budget_zipped / MB:.0f} MB (budget in scripts/package.py)",
                    "anchor": SIZE_ANCHOR,
                }
            )
            result.append(
                {
                    "figure": f"{name} unzipped size (arm64)",
                    "value": round(deployed.unzipped_bytes / MB, 1),
                    "unit": "MB",
                    "goal": "≤ 250 MB",
                    "anchor": SIZE_ANCHOR,
                }
            )
            local = build(function, X86_64, out / "x86_64")
            root = out / "unpacked" / name
            with zipfile.ZipFile(local.path) as archive:
                archive.extractall(root)
            module = function.handler.rpartition(".")[0]
            result.append(
                {
                    "figure": f"{name} cold-start proxy: import {module} from its zip (median of {RUNS})",
                    "value": round(import_seconds(root, module) * 1000, 1),
                    "unit": "ms",
                    "goal": IMPORT_GOALS[name],
                    "anchor": IMPORT_ANCHOR,
                }
            )
    return result


if __name__ == "__main__":
    for row in rows():
        print(
            f"| {row['figure']} | {row['value']} {row['unit']} | {row['goal']} | {row['anchor']} |"
        )
