"""Bench rows for the deployable Lambdas: zip sizes and cold starts per function.

Sizes are those of the arm64 zips Terraform deploys (scripts/package.py, the same code as
`make package`). A cold start cannot run an aarch64 zip here, so it times the x86_64 variant built
by the same code: a fresh base interpreter (`python3.11 -I -S -B`: no site-packages, no .pyc
written, as on Lambda's read-only file system) whose only non-stdlib path is the unpacked zip,
held to one core (Lambda's 1,769 MB is one vCPU; 256 MB is a share of one). Inside it: the import
of the handler module, then its first invocation with a realistic event (ingest: a POST /api/event
as API Gateway v2 delivers it; query: a GET /api/stats/aggregate) against a moto server on
127.0.0.1 (local/stack.py's), with tables, a site and a key made beforehand. moto answers a call in
a few ms, as DynamoDB does from inside a region. Median of 5 runs; the machine is shared and
noisy, so these are figures, not gates.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.package import AARCH64, FUNCTIONS, MB, X86_64, base_python, build

RUNS = 5
SITE = "cold.example"
# Issue 20 / decision 0022: import plus first invocation (the aggregator: its import, as before).
COLD_START_GOALS = {
    "ingest": "≤ 250 ms",
    "aggregator": "≤ 400 ms",
    "query": "≤ 500 ms",
    "archive": "",  # hourly, asynchronous: nobody waits for its cold start
    # Asynchronous too: a queue's messages (alerts), a minute's and an hour's schedule
    "alerts": "",
    "alert_schedule": "",
    "reports": "",
}
COLD_START_ANCHOR = "DESIGN.md: plain handler ~200 ms, FastAPI + Mangum ~400 ms of imports"
SIZE_ANCHOR = "Lambda limits: 50 MB zipped (direct upload), 250 MB unzipped"
DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)

# Runs in the fresh interpreter: import, then one invocation; prints both durations and the answer.
RUNNER = r"""
import importlib, json, sys, time
root, module_name, attribute, event_file, preload = sys.argv[1:6]
sys.path.insert(0, root)
cpu_started = time.process_time()
started = time.perf_counter()
if preload:  # what the cold start would be were `preload` imported eagerly (decision 0029)
    importlib.import_module(preload)
module = importlib.import_module(module_name)
imported = time.perf_counter()

class Context:
    function_name = "cold-start"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:cold-start"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    def get_remaining_time_in_millis(self):
        return 30000

answer, invoked = {"statusCode": 200}, time.perf_counter()
if event_file != "-":  # "-": the import alone
    with open(event_file) as f:
        event = json.load(f)
    invoked = time.perf_counter()
    answer = getattr(module, attribute)(event, Context())
done = time.perf_counter()
print(json.dumps({
    "import": imported - started, "invocation": done - invoked, "status": answer.get("statusCode"),
    "cpu": time.process_time() - cpu_started,
}))
"""


@dataclass(frozen=True)
class ColdStart:
    """Medians over the runs (so total is not quite import + invocation). cpu_seconds is the
    process's own CPU time over both: other processes on a busy machine stretch the wall clock,
    not it (nor does it count waiting for moto's answers)."""

    import_seconds: float
    invocation_seconds: float
    total_seconds: float
    cpu_seconds: float


def _one_core() -> None:
    # Runs in the child before exec: every thread of the cold start shares one CPU, as on Lambda.
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def cold_start(
    root: Path,
    handler: str,
    event: dict[str, Any] | None,
    env: dict[str, str],
    runs: int = RUNS,
    preload: str = "",
) -> ColdStart:
    """Median import and first-invocation seconds of `handler` (module.function) from `root`;
    without an event, the import alone; with `preload`, that module imported first."""
    module, _, attribute = handler.rpartition(".")
    imports, invocations, cpus = [], [], []
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        event_file = Path(tmp) / "event.json"
        event_file.write_text(json.dumps(event))
        command = [base_python(), "-I", "-S", "-B", "-c", RUNNER, str(root), module, attribute]
        command.append(str(event_file) if event is not None else "-")
        command.append(preload)
        for _ in range(runs):
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
                env=env,
                preexec_fn=_one_core,
            )
            if done.returncode:
                raise RuntimeError(f"{handler} failed from {root}:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if not 200 <= (result["status"] or 0) < 300:
                raise RuntimeError(f"{handler} answered {result['status']}: {done.stderr[-3000:]}")
            imports.append(result["import"])
            invocations.append(result["invocation"])
            cpus.append(result["cpu"])
    totals = [i + j for i, j in zip(imports, invocations, strict=True)]
    return ColdStart(
        statistics.median(imports),
        statistics.median(invocations),
        statistics.median(totals),
        statistics.median(cpus),
    )


@contextmanager
def cold_start_stack() -> Iterator[tuple[dict[str, str], dict[str, dict[str, Any]]]]:
    """A moto server with tables, a site and its key: the environment the functions get, and one
    realistic first event for ingest and query (the aggregator's cold start is its import alone,
    as before; its first stream batch is in `make bench`'s aggregation rows)."""
    from core.aws import make_client
    from core.edge import ORIGIN_HEADER
    from core.sites import SiteStore
    from local import tables
    from local.front import LOCAL_ORIGIN_SECRET, api_gateway_event
    from local.stack import MotoServer, aws_environment

    server = MotoServer()
    endpoint = server.start()
    try:
        aws = aws_environment(endpoint, "cold")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "POWERTOOLS_METRICS_NAMESPACE": "LiveInsight",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            **aws,
        }
        saved = {k: os.environ.get(k) for k in aws}
        os.environ.update(aws)
        try:
            client = make_client("dynamodb")
            tables.create_tables(client, tables.table_names("cold"), with_stream=True)
            sites = SiteStore(client, aws["LIVEINSIGHT_META_TABLE"], cache_seconds=0)
            sites.add(SITE)
            key = sites.create_key(SITE)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        body = json.dumps({"n": "pageview", "u": f"https://{SITE}/pricing", "d": SITE, "r": ""})
        ingest_headers = {
            "content-type": "text/plain",
            "user-agent": DESKTOP_UA,
            "cloudfront-viewer-address": "198.51.100.7:443",
            "cloudfront-viewer-country": "DE",
            ORIGIN_HEADER: LOCAL_ORIGIN_SECRET,
        }
        query_headers = {"authorization": f"Bearer {key}"}
        events = {
            "ingest": api_gateway_event(
                "POST", "/api/event", ingest_headers, body.encode(), "198.51.100.7"
            ),
            "query": api_gateway_event(
                "GET",
                f"/api/stats/aggregate?site_id={SITE}&period=day",
                query_headers,
                b"",
                "198.51.100.7",
            ),
        }
        yield env, events
    finally:
        server.stop()


def unpacked(function: str, out: Path) -> Path:
    """The x86_64 zip of `function`, built as `make package` builds the arm64 one, unpacked."""
    artifact = build(FUNCTIONS[function], X86_64, out / "x86_64")
    root = out / "unpacked" / function
    with zipfile.ZipFile(artifact.path) as archive:
        archive.extractall(root)
    return root


def size_rows(name: str, out: Path) -> list[dict[str, Any]]:
    function = FUNCTIONS[name]
    deployed = build(function, AARCH64, out / "arm64")
    return [
        {
            "figure": f"{name} zip size (arm64, deployed)",
            "value": round(deployed.zipped_bytes / MB, 2),
            "unit": "MB",
            "goal": f"≤ {function.budget_zipped / MB:.0f} MB (budget in scripts/package.py)",
            "anchor": SIZE_ANCHOR,
        },
        {
            "figure": f"{name} unzipped size (arm64)",
            "value": round(deployed.unzipped_bytes / MB, 1),
            "unit": "MB",
            "goal": "≤ 250 MB",
            "anchor": SIZE_ANCHOR,
        },
    ]


def cold_start_rows(name: str, measured: ColdStart, invoked: bool) -> list[dict[str, Any]]:
    module = FUNCTIONS[name].handler.rpartition(".")[0]
    if not invoked:
        return [
            {
                "figure": f"{name} cold start: import {module} alone (x86_64 zip, one core, "
                f"median of {RUNS})",
                "value": round(measured.import_seconds * 1000, 1),
                "unit": "ms",
                "goal": COLD_START_GOALS[name],
                "anchor": COLD_START_ANCHOR,
            }
        ]
    where = f"x86_64 zip, one core, median of {RUNS}; first invocation against moto on 127.0.0.1"
    return [
        {
            "figure": f"{name} cold start: import {module} + first invocation ({where})",
            "value": round(measured.total_seconds * 1000, 1),
            "unit": "ms",
            "goal": COLD_START_GOALS[name],
            "anchor": COLD_START_ANCHOR,
        },
        {
            "figure": f"{name} cold start: of which import",
            "value": round(measured.import_seconds * 1000, 1),
            "unit": "ms",
            "goal": "",
            "anchor": COLD_START_ANCHOR,
        },
        {
            "figure": f"{name} cold start: CPU time of the process (import + first invocation; "
            "what a busy machine does not stretch)",
            "value": round(measured.cpu_seconds * 1000, 1),
            "unit": "ms",
            "goal": "",
            "anchor": COLD_START_ANCHOR,
        },
    ]


def duckdb_row(name: str, lazy: ColdStart, eager: ColdStart) -> dict[str, Any]:
    return {
        "figure": f"{name} cold start with duckdb imported eagerly: import + first invocation "
        f"(x86_64 zip, one core, median of {RUNS}; without it: {lazy.total_seconds * 1000:.0f} ms)",
        "value": round(eager.total_seconds * 1000, 1),
        "unit": "ms",
        "goal": "duckdb imported lazily (decision 0029)",
        "anchor": COLD_START_ANCHOR,
    }


def rows() -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-lambdas-") as tmp, cold_start_stack() as stack:
        out = Path(tmp)
        env, events = stack
        for name, function in FUNCTIONS.items():
            result.extend(size_rows(name, out))
            event = events.get(name)
            own_env = {**env, "POWERTOOLS_SERVICE_NAME": name}  # as Terraform sets it
            root = unpacked(name, out)
            measured = cold_start(root, function.handler, event, own_env)
            result.extend(cold_start_rows(name, measured, invoked=event is not None))
            if "duckdb" in (d.name for d in root.iterdir()):
                # DuckDB is imported on an archive path only; what an eager import would add
                eager = cold_start(root, function.handler, event, own_env, preload="duckdb")
                result.append(duckdb_row(name, measured, eager))
    return result


if __name__ == "__main__":
    for row in rows():
        print(
            f"| {row['figure']} | {row['value']} {row['unit']} | {row['goal']} | {row['anchor']} |"
        )
