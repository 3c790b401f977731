"""Each Lambda zip works on its own: its handler imports and answers a first invocation in a plain
interpreter whose only non-stdlib path is the unpacked zip.

Lambda runs the arm64 zips `make package` builds; this machine cannot import aarch64 wheels, so
the test builds the x86_64 variant with the same code (scripts/package.py) and checks that both
platforms resolve to the same distributions. The interpreter is the base Python (not the project's
virtualenv) started with -I -S -B: no site-packages, no user site, no PYTHON* variables, no .pyc
written (Lambda's file system is read-only). The first invocation talks to the moto server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from local.front import api_gateway_event
from scripts.package import AARCH64, FUNCTIONS, X86_64, Artifact, base_python, build, closure
from tests.infra import terraform as tf
from tests.integration.pipeline import DESKTOP_UA, Pipeline

SITE = "zip.example"
PROJECT_PACKAGES = {
    "core",
    "ingest",
    "aggregator",
    "query_api",
    "archive",
    "alerts",
    "local",
    "bench",
    "tests",
    "imports",
    "reports",
}
# Amazon Linux 2, under Lambda's python3.11 runtime: a shared library needing a newer glibc does
# not load there (issue 18: DuckDB wheels past 1.2 may be manylinux_2_28 only).
LAMBDA_GLIBC = (2, 26)
ENDPOINT_PREFIX = {"sesv2": "email"}
WITH_DUCKDB = {"aggregator", "query", "archive", "reports"}

RUNNER = r"""
import asyncio, importlib, json, sys, time
root, module_name, events_file, out_file = sys.argv[1:5]
sys.path.insert(0, root)
started = time.perf_counter()
module = importlib.import_module(module_name)
import_seconds = time.perf_counter() - started
duckdb_on_import = "duckdb" in sys.modules
outside = sorted(
    name for name, m in list(sys.modules.items())
    if (f := getattr(m, "__file__", None)) and not f.startswith(root)
    and (not f.startswith(sys.base_prefix) or "site-packages" in f)
)

class Context:
    function_name = "zip-test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:zip-test"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    def get_remaining_time_in_millis(self):
        return 30000

asyncio.set_event_loop(asyncio.new_event_loop())  # as Lambda's runtime provides one
with open(events_file) as f:
    events = json.load(f)
results = [module.handler(event, Context()) for event in events]
with open(out_file, "w") as f:
    json.dump({"outside": outside, "import_seconds": import_seconds, "results": results,
               "duckdb_on_import": duckdb_on_import, "duckdb_at_end": "duckdb" in sys.modules}, f)
"""


IMPORTER = """
import gc, importlib, sys
sys.path.insert(0, sys.argv[1])
gc.collect()  # counts from 0: the few allocations before the handler's first line trigger none
before = gc.get_stats()[0]["collections"]
importlib.import_module(sys.argv[2])
print(gc.get_stats()[0]["collections"] - before, int(gc.isenabled()), gc.get_freeze_count())
"""


@pytest.fixture(scope="module")
def zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Artifact]:
    out = tmp_path_factory.mktemp("lambda-x86_64")
    # Side by side: most of a build waits on pip's subprocess or on zlib, which lets go of the GIL
    with ThreadPoolExecutor(max_workers=4) as pool:
        built = {
            name: pool.submit(build, function, X86_64, out) for name, function in FUNCTIONS.items()
        }
        return {name: future.result() for name, future in built.items()}


def unpack(artifact: Artifact, tmp_path: Path) -> Path:
    root = tmp_path / artifact.function
    with zipfile.ZipFile(artifact.path) as archive:
        archive.extractall(root)
    return root


def invoke_from_zip(
    artifact: Artifact, tmp_path: Path, events: list[dict[str, Any]]
) -> dict[str, Any]:
    root = unpack(artifact, tmp_path)
    module = FUNCTIONS[artifact.function].handler.rpartition(".")[0]
    events_file, out_file = tmp_path / "events.json", tmp_path / "out.json"
    events_file.write_text(json.dumps(events))
    done = subprocess.run(
        [
            base_python(),
            "-I",
            "-S",
            "-B",
            "-c",
            RUNNER,
            str(root),
            module,
            str(events_file),
            str(out_file),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ),  # the aws_env fixture's endpoint and LIVEINSIGHT_* tables
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(out_file.read_text())
    assert result["outside"] == [], f"imported from outside the zip: {result['outside']}"
    return result


def test_deployed_and_tested_platforms_resolve_the_same_distributions() -> None:
    for function in FUNCTIONS.values():
        assert closure(function.requires, AARCH64) == closure(function.requires, X86_64)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_zip_holds_only_what_its_function_needs(name: str, zips: dict[str, Artifact]) -> None:
    with zipfile.ZipFile(zips[name].path) as archive:
        names = archive.namelist()
    top = {n.split("/")[0] for n in names}
    assert top & PROJECT_PACKAGES == set(FUNCTIONS[name].packages)
    services = {
        n.split("/")[2] for n in names if n.startswith("botocore/data/") and n.count("/") > 2
    }
    assert services == set(FUNCTIONS[name].botocore_services)
    # endpoints.json lists those services only: every client creation parses it (decision 0022)
    with zipfile.ZipFile(zips[name].path) as archive:
        endpoints = json.loads(archive.read("botocore/data/endpoints.json"))
    listed = {s for p in endpoints["partitions"] for s in p["services"]}
    # endpoints.json names a service by its endpoint prefix: SES v2's is "email"
    assert listed == {ENDPOINT_PREFIX.get(s, s) for s in FUNCTIONS[name].botocore_services}
    assert {p["partition"] for p in endpoints["partitions"]} >= {"aws", "aws-cn", "aws-us-gov"}
    module = FUNCTIONS[name].handler.rpartition(".")[0].replace(".", "/")
    assert any(n.startswith(f"{module.rpartition('/')[0]}/__pycache__/") for n in names)
    if name == "ingest":
        assert not top & {"fastapi", "starlette", "jinja2", "pydantic", "mangum"}
    # DuckDB goes where the archive is written or read, never into ingest (decision 0029)
    assert ("duckdb" in top) == (name in WITH_DUCKDB)
    assert not any(n.startswith(("duckdb/experimental/", "duckdb-stubs/")) for n in names)


def test_ingest_needs_no_archive_distribution() -> None:
    assert "duckdb" not in closure(FUNCTIONS["ingest"].requires, AARCH64)
    assert "archive" not in FUNCTIONS["ingest"].packages
    for name in WITH_DUCKDB:
        assert "duckdb" in closure(FUNCTIONS[name].requires, AARCH64)


def glibc_versions(shared_library: bytes) -> set[tuple[int, int]]:
    """The GLIBC_x.y symbol versions an ELF file names (what the dynamic loader will demand)."""
    return {
        (int(m.group(1)), int(m.group(2)))
        for m in re.finditer(rb"GLIBC_(\d+)\.(\d+)", shared_library)
    }


def test_deployed_duckdb_is_the_manylinux2014_aarch64_build_that_loads_on_amazon_linux_2(
    tmp_path: Path,
) -> None:
    # Given the arm64 compaction zip, built as `make package` builds it (within its budgets)
    artifact = build(FUNCTIONS["archive"], AARCH64, tmp_path)
    with zipfile.ZipFile(artifact.path) as archive:
        (library,) = [n for n in archive.namelist() if re.fullmatch(r"duckdb/duckdb\..*\.so", n)]
        wheel = "duckdb-1.2.2.dist-info/WHEEL"
        tags = archive.read(wheel).decode()
        needed = glibc_versions(archive.read(library))
    # Then it is DuckDB 1.2.2's aarch64 wheel for glibc 2.17, which needs nothing past 2.26
    assert "aarch64" in library
    assert "manylinux_2_17_aarch64" in tags and "2_28" not in tags
    assert needed and max(needed) <= LAMBDA_GLIBC, max(needed)


@pytest.mark.parametrize("module", ["query_api.app", "query_api.handler", "aggregator.handler"])
def test_importing_a_handler_does_not_import_duckdb(module: str) -> None:
    # Given a fresh interpreter (the project's, as the local stack runs the handlers)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, {module}; print('duckdb' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tf.REPO,
        env={**os.environ, "LIVEINSIGHT_EVENTS_TABLE": "t", "LIVEINSIGHT_AGGREGATES_TABLE": "t"},
        timeout=120,
    )
    # When the handler module is imported, then DuckDB is not: only an archive path loads it
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False"]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_zip_imports_its_handler_from_bytecode_without_reading_a_source(
    name: str, zips: dict[str, Artifact], tmp_path: Path
) -> None:
    # Given the unpacked zip with every source replaced by one that fails: a module whose .pyc
    # Python cannot use is compiled from source, on every cold start (Lambda's disk is read-only)
    root = unpack(zips[name], tmp_path)
    for source in root.rglob("*.py"):
        source.write_text("raise ImportError('compiled from source: no usable .pyc')\n")
    module = FUNCTIONS[name].handler.rpartition(".")[0]
    # When Lambda's kind of interpreter imports the handler module
    done = subprocess.run(
        [base_python(), "-I", "-S", "-B", "-c", IMPORTER, str(root), module],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    # Then every module it imported came from its .pyc
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("name", ["ingest", "query"])
def test_handler_module_imports_without_collecting_garbage_and_leaves_the_collector_on(
    name: str, zips: dict[str, Artifact], tmp_path: Path
) -> None:
    # Given the unpacked zip (core/coldstart.py, decision 0022)
    root = unpack(zips[name], tmp_path)
    module = FUNCTIONS[name].handler.rpartition(".")[0]
    # When the handler module is imported
    done = subprocess.run(
        [base_python(), "-I", "-S", "-B", "-c", IMPORTER, str(root), module],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    collections, enabled, frozen = map(int, done.stdout.split())
    # Then no collection ran, the collector is on again, and what the import made is frozen
    assert (collections, enabled) == (0, 1)
    assert frozen > 10_000


def test_ingest_zip_stores_an_event(
    aws_env: dict[str, str], zips: dict[str, Artifact], tmp_path: Path
) -> None:
    # Given a site
    pipeline = Pipeline(aws_env)
    pipeline.add_site(SITE)
    body = json.dumps({"n": "pageview", "u": f"https://{SITE}/", "d": SITE}).encode()
    headers = {"content-type": "text/plain", "user-agent": DESKTOP_UA, "x-forwarded-for": "1.2.3.4"}
    event = api_gateway_event("POST", "/api/event", headers, body, "127.0.0.1")
    # When the ingest zip handles a POST /api/event
    result = invoke_from_zip(zips["ingest"], tmp_path, [event])
    # Then it answers 202 and the event is in the events table
    assert result["results"][0]["statusCode"] == 202
    assert len(pipeline.scan("events")) == 1


def test_aggregator_zip_counts_a_stream_batch(
    aws_env: dict[str, str], zips: dict[str, Artifact], tmp_path: Path
) -> None:
    pipeline = Pipeline(aws_env)
    key = pipeline.add_site(SITE)
    pipeline.send({"n": "pageview", "u": f"https://{SITE}/", "d": SITE})
    records = pipeline.read_stream()
    result = invoke_from_zip(zips["aggregator"], tmp_path, [{"Records": records}])
    assert result["results"] == [{"batchItemFailures": []}]
    assert pipeline.realtime(SITE, key)["pageviews"] == 1


def test_alert_schedule_zip_runs_a_minute(
    aws_env: dict[str, str], zips: dict[str, Artifact], tmp_path: Path
) -> None:
    from alerts.rules import RuleStore, ScheduleIndex
    from core.aws import make_client

    # Given a site with a drop rule (in no usual hour: no history), and the alerts queue
    pipeline = Pipeline(aws_env)
    pipeline.add_site(SITE)
    RuleStore(pipeline.ddb, aws_env["meta"]).add(SITE, "drop", None, "https://hooks.example/")
    queue = make_client("sqs").create_queue(QueueName="zip-alerts")["QueueUrl"]
    os.environ["LIVEINSIGHT_ALERTS_QUEUE_URL"] = queue
    try:
        # When the schedule's zip handles a scheduled event
        event = {"source": "aws.scheduler", "detail-type": "Scheduled Event"}
        result = invoke_from_zip(zips["alert_schedule"], tmp_path, [event])
    finally:
        del os.environ["LIVEINSIGHT_ALERTS_QUEUE_URL"]
    # Then it looked at the one site listed, and found nothing to send
    (answer,) = result["results"]
    assert answer["sites"] == 1 and answer["recorded"] == [] and answer["errors"] == 0
    assert SITE in ScheduleIndex(pipeline.ddb, aws_env["meta"]).sites()


def test_query_zip_serves_json_and_a_dashboard_card(
    aws_env: dict[str, str], zips: dict[str, Artifact], tmp_path: Path
) -> None:
    pipeline = Pipeline(aws_env)
    key = pipeline.add_site(SITE)
    pipeline.send({"n": "pageview", "u": f"https://{SITE}/", "d": SITE})
    pipeline.pump()
    auth = {"authorization": f"Bearer {key}"}
    events = [
        api_gateway_event("GET", f"/api/realtime?site_id={SITE}", auth, b"", "127.0.0.1"),
        api_gateway_event("GET", f"/api/realtime/card?site_id={SITE}", auth, b"", "127.0.0.1"),
    ]
    result = invoke_from_zip(zips["query"], tmp_path, events)
    # DuckDB stays unloaded when the counters answer (decision 0029)
    assert (result["duckdb_on_import"], result["duckdb_at_end"]) == (False, False)
    realtime, card = result["results"]
    assert realtime["statusCode"] == 200
    assert json.loads(realtime["body"])["pageviews"] == 1
    assert card["statusCode"] == 200  # the Jinja2 templates are in the zip
    assert card["headers"]["content-type"].startswith("text/html")


def test_query_zip_signs_in_with_secrets_read_from_ssm(
    aws_env: dict[str, str],
    zips: dict[str, Artifact],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the sign-in secrets in SSM, named in the environment as Terraform names them
    from core.aws import make_client
    from query_api.auth import hash_password

    ssm = make_client("ssm")
    for name, value in (
        ("/zip/admin-password-hash", hash_password("zip test password")),
        ("/zip/session-signing-key", "z" * 64),
    ):
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
    for direct in ("LIVEINSIGHT_ADMIN_PASSWORD_HASH", "LIVEINSIGHT_SESSION_SECRET"):
        monkeypatch.delenv(direct, raising=False)  # a value set directly would win over SSM
    monkeypatch.setenv("LIVEINSIGHT_ADMIN_PASSWORD_HASH_PARAMETER", "/zip/admin-password-hash")
    monkeypatch.setenv("LIVEINSIGHT_SESSION_SECRET_PARAMETER", "/zip/session-signing-key")
    body = json.dumps({"password": "zip test password"}).encode()
    event = api_gateway_event(
        "POST", "/api/auth/login", {"content-type": "application/json"}, body, "127.0.0.1"
    )
    # When the query zip handles a sign-in (itsdangerous and botocore's ssm model are in the zip)
    (result,) = invoke_from_zip(zips["query"], tmp_path, [event])["results"]
    # Then the admin is signed in with a session cookie
    assert result["statusCode"] == 200, result
    assert result["cookies"][0].startswith("li_session=")


# The reports handler with its clock set to a Monday 09:30 in New York (a weekly report due),
# then one scheduled invocation; which modules came from outside the zip.
REPORTS_RUNNER = r"""
import json, sys
from datetime import UTC, datetime
root, out_file = sys.argv[1:3]
sys.path.insert(0, root)
from reports import handler

class Context:
    function_name = "zip-test"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:zip-test"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    def get_remaining_time_in_millis(self):
        return 300000

handler.clock = lambda: datetime(2025, 3, 17, 13, 30, tzinfo=UTC)
result = handler.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, Context())
outside = sorted(
    name for name, m in list(sys.modules.items())
    if (f := getattr(m, "__file__", None)) and not f.startswith(root)
    and (not f.startswith(sys.base_prefix) or "site-packages" in f)
)
with open(out_file, "w") as f:
    json.dump({"result": result, "outside": outside}, f)
"""


def test_reports_zip_sends_a_due_report_by_ses(
    aws_env: dict[str, str],
    zips: dict[str, Artifact],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from core.aws import make_client
    from local import outbox
    from reports.store import ReportStore

    # Given a New York site with a weekly subscriber, SES's sender verified, the session key
    pipeline = Pipeline(aws_env)
    pipeline.add_site(SITE, tz="America/New_York")
    ReportStore(pipeline.ddb, aws_env["meta"]).subscribe(SITE, "owner@zip.example", ["weekly"])
    make_client("sesv2").create_email_identity(EmailIdentity="liveinsight.test")
    monkeypatch.setenv("LIVEINSIGHT_EMAIL_FROM", "reports@liveinsight.test")
    monkeypatch.setenv("LIVEINSIGHT_SESSION_SECRET", "z" * 64)
    monkeypatch.setenv("LIVEINSIGHT_PUBLIC_URL", "https://stats.zip.example")
    before = len(outbox.sent())
    root = unpack(zips["reports"], tmp_path)
    out_file = tmp_path / "out.json"
    # When the reports zip runs the schedule at a time its weekly report is due
    done = subprocess.run(
        [base_python(), "-I", "-S", "-B", "-c", REPORTS_RUNNER, str(root), str(out_file)],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ),
        timeout=120,
    )
    # Then the report was built (planner, jinja2 templates) and sent by SES, all from the zip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out_file.read_text())
    assert result["outside"] == [], f"imported from outside the zip: {result['outside']}"
    assert result["result"] == {"sent": 1}
    (mail,) = outbox.sent()[before:]
    assert mail.to == "owner@zip.example" and "weekly report" in mail.subject
    assert "/api/reports/unsubscribe?" in mail.headers["List-Unsubscribe"]
