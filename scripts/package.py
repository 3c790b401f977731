"""`make package`: one deployment zip per Lambda, `build/lambda/<name>.zip`.

Each zip holds only what its function imports: the project packages it needs (`core` and its own
folder) and the closure of its third-party requirements, read from uv.lock and installed from the
pinned, hashed requirements.txt as manylinux wheels for the target (`pip --platform`). Nothing is
built from source, so a zip made on x86_64 runs on Lambda arm64.

Cold start: Lambda's file system is read-only, so a module without a usable .pyc is compiled on
every cold start. We ship unchecked-hash .pyc files (valid whatever the zip's timestamps) and prune
botocore's service models, and their entries in endpoints.json, to the services the code creates
clients for (all of botocore's data is ~20 MB zipped, one service a few hundred KB; decision 0022).

Zips are reproducible (sorted entries, fixed timestamps), so Terraform's source_code_hash only
changes when the content does. Wheels are cached in build/wheelhouse/<platform>/: once filled,
building is offline.
"""

from __future__ import annotations

import argparse
import compileall
import gzip
import importlib.util
import json
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker

REPO = Path(__file__).resolve().parent.parent
LOCK_FILE = REPO / "uv.lock"
REQUIREMENTS = REPO / "requirements.txt"
DEFAULT_OUT = REPO / "build" / "lambda"
WHEELHOUSE = REPO / "build" / "wheelhouse"
AARCH64 = "manylinux2014_aarch64"  # what Terraform deploys (architectures = ["arm64"])
X86_64 = "manylinux2014_x86_64"  # this machine: the variant the tests import and `make bench` times
PYTHON_VERSION = "3.11"
MB = 1024 * 1024
# Lambda's hard limits: 50 MB zipped for a direct upload, 250 MB unzipped.
LAMBDA_UNZIPPED_LIMIT = 250 * MB
# Files no function reads at run time.
PRUNE_DIRS = {"__pycache__", "bin", "tests", "test"}
# Parts of a distribution no function imports: DuckDB's Spark-compatible API and its profile
# viewer (`import duckdb` loads neither).
PRUNE_PATHS = ("duckdb/experimental", "duckdb/query_graph", "duckdb-stubs")
PRUNE_SUFFIXES = (".pyi", ".pyc", ".c", ".h", ".pxd", ".pyx")


@dataclass(frozen=True)
class Function:
    """One Lambda: what goes into its zip. Terraform's `local.functions` must agree (tests/infra)."""

    name: str
    handler: str  # module.function, as Lambda's `handler` setting spells it
    packages: tuple[str, ...]  # project packages, copied with their data files
    requires: tuple[str, ...]  # top-level distributions; their closure comes from uv.lock
    botocore_services: tuple[str, ...]  # service models kept in botocore/data
    budget_zipped: int  # bytes; the build fails above it
    # Bytes unzipped; the build fails above it. Lambda's limit is 250 MB: a function with DuckDB
    # (a 58 MB shared library, decision 0029) gets its own, lower number, so growth shows early.
    budget_unzipped: int = LAMBDA_UNZIPPED_LIMIT


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function(
            name="ingest",
            handler="ingest.handler.handler",
            packages=("core", "ingest"),
            requires=("aws-lambda-powertools", "botocore", "ua-parser", "ua-parser-builtins"),
            botocore_services=("dynamodb",),
            budget_zipped=6 * MB,
        ),
        Function(
            name="aggregator",
            handler="aggregator.handler.handler",
            # archive: the rollup tier writes each batch's events as Parquet to S3 (DuckDB,
            # imported only when a batch is archived: decision 0029).
            # alerts: the realtime tier evaluates the sites' alert rules and queues (SQS) what
            # crosses them (decision 0036).
            packages=("core", "aggregator", "archive", "alerts"),
            requires=("aws-lambda-powertools", "botocore", "duckdb"),
            botocore_services=("dynamodb", "s3", "sqs"),
            budget_zipped=26 * MB,
            budget_unzipped=90 * MB,
        ),
        Function(
            name="query",
            handler="query_api.handler.handler",
            # reports: the admin API's subscriptions and the public unsubscribe link
            # (query_api/reports_api.py, decision 0038).
            packages=("core", "query_api", "archive", "alerts", "imports", "reports"),
            requires=(
                "aws-lambda-powertools",
                "botocore",
                "fastapi",
                "mangum",
                "jinja2",
                "itsdangerous",
                "duckdb",
            ),
            # ssm: the sign-in secrets are read from SSM parameters (query_api/auth.py); s3: the
            # archive's objects, read by the archive engine (query_api/archive_engine.py).
            botocore_services=("dynamodb", "ssm", "s3"),
            budget_zipped=32 * MB,
            budget_unzipped=110 * MB,
        ),
        Function(
            name="archive",
            handler="archive.handler.handler",
            # Merges a site-day's small archive objects into one, hourly (EventBridge); reads the
            # sites' retention from the meta table.
            # imports, aggregator, ingest: Umami imports asked through the admin API, done on S3's
            # notification (imports/worker.py: Umami's rows read as ingest reads a referrer, the
            # days' counters rebuilt as aggregator/rebuild.py does; decision 0039).
            packages=("core", "archive", "imports", "aggregator", "ingest"),
            requires=(
                "aws-lambda-powertools",
                "botocore",
                "duckdb",
                "ua-parser",
                "ua-parser-builtins",
            ),
            botocore_services=("dynamodb", "s3"),
            budget_zipped=26 * MB,
            budget_unzipped=90 * MB,
        ),
        Function(
            name="reports",
            handler="reports.handler.handler",
            # The hourly email reports (decision 0038): a run with nothing due imports only core
            # and reports; a due report asks the query side's planner (query_api: its parse and
            # deps modules bring fastapi, pydantic and itsdangerous; the archive engine, for what
            # the counters refuse, archive and DuckDB) and renders with jinja2; sent by SES v2,
            # the unsubscribe key's secret and the public URL read from SSM.
            packages=("core", "reports", "query_api", "archive"),
            requires=(
                "aws-lambda-powertools",
                "botocore",
                "fastapi",
                "jinja2",
                "itsdangerous",
                "duckdb",
            ),
            botocore_services=("dynamodb", "s3", "ssm", "sesv2"),
            budget_zipped=32 * MB,
            budget_unzipped=110 * MB,
        ),
        Function(
            name="alerts",
            handler="alerts.handler.handler",
            # Posts queued alerts to their webhooks (decision 0036): the rules and the delivery
            # log in meta, backoff through the queue's visibility.
            packages=("core", "alerts"),
            requires=("aws-lambda-powertools", "botocore"),
            # sesv2: a rule's email recipients (decision 0038)
            botocore_services=("dynamodb", "sqs", "sesv2"),
            budget_zipped=6 * MB,
        ),
        Function(
            name="alert_schedule",
            handler="alerts.schedule.handler",
            # Every minute (EventBridge Scheduler): the alert rules no event can trigger, drop
            # and new top referrer, and firing spikes when traffic stops (decision 0037); reads
            # rules and sites in meta and the counters, queues on the alerts queue.
            packages=("core", "alerts"),
            requires=("aws-lambda-powertools", "botocore"),
            botocore_services=("dynamodb", "sqs"),
            budget_zipped=6 * MB,
        ),
    )
}


class PackagingError(RuntimeError):
    """A zip cannot be built, or is over its budget."""


@dataclass(frozen=True)
class Artifact:
    function: str
    platform: str
    path: Path
    zipped_bytes: int
    unzipped_bytes: int
    distributions: tuple[str, ...]


# ---- requirements: the closure from uv.lock, the pins and hashes from requirements.txt ----------


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _marker_env(platform: str) -> dict[str, str]:
    machine = "aarch64" if platform.endswith("aarch64") else "x86_64"
    return {
        "implementation_name": "cpython",
        "implementation_version": "3.11.0",
        "os_name": "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": "3.11.0",
        "python_version": PYTHON_VERSION,
        "sys_platform": "linux",
        "extra": "",
    }


def closure(roots: Iterable[str], platform: str, lock_file: Path = LOCK_FILE) -> set[str]:
    """Every distribution `roots` need on Lambda's platform, following extras and markers."""
    packages = {_normalize(p["name"]): p for p in tomllib.loads(lock_file.read_text())["package"]}
    env = _marker_env(platform)
    seen: set[str] = set()
    pending: list[tuple[str, tuple[str, ...]]] = [(_normalize(r), ()) for r in roots]
    while pending:
        name, extras = pending.pop()
        package = packages.get(name)
        if package is None:
            raise PackagingError(f"{name} is not in uv.lock")
        deps = list(package.get("dependencies", []))
        for extra in extras:
            deps.extend(package.get("optional-dependencies", {}).get(extra, []))
        is_new = name not in seen
        seen.add(name)
        if not is_new and not extras:
            continue
        for dep in deps:
            marker = dep.get("marker")
            if marker and not Marker(marker).evaluate(env):
                continue
            pending.append((_normalize(dep["name"]), tuple(dep.get("extra", ()))))
    return seen


def requirement_blocks(requirements: Path = REQUIREMENTS) -> dict[str, str]:
    """requirements.txt split into one `name==version --hash ...` block per distribution."""
    blocks: dict[str, str] = {}
    current: list[str] = []
    for line in requirements.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" ") and current:
            _add_block(blocks, current)
            current = []
        current.append(line)
    if current:
        _add_block(blocks, current)
    return blocks


def _add_block(blocks: dict[str, str], lines: list[str]) -> None:
    match = re.match(r"([A-Za-z0-9_.\-]+)==", lines[0])
    if not match:
        raise PackagingError(f"unpinned requirement: {lines[0]}")
    # Environment markers were resolved by `closure`; drop them so pip installs for the target.
    lines = [lines[0].split(";")[0].rstrip().rstrip("\\").rstrip() + " \\", *lines[1:]]
    blocks[_normalize(match.group(1))] = "\n".join(lines).rstrip(" \\")


def subset_requirements(function: Function, platform: str) -> tuple[str, tuple[str, ...]]:
    names = sorted(closure(function.requires, platform))
    blocks = requirement_blocks()
    missing = [n for n in names if n not in blocks]
    if missing:
        raise PackagingError(f"not pinned in requirements.txt: {', '.join(missing)}")
    return "\n".join(blocks[n] for n in names) + "\n", tuple(names)


# ---- building -----------------------------------------------------------------------------


def base_python() -> str:
    """The interpreter this virtualenv was made from: a plain Python, no project packages."""
    return str(Path(sys.base_prefix) / "bin" / f"python{PYTHON_VERSION}")


def _pip(args: list[str]) -> subprocess.CompletedProcess[str]:
    # pip only fetches and unpacks wheels for the target here, so any Python's pip will do: a
    # virtualenv made by uv has none, its base interpreter does.
    python = sys.executable if importlib.util.find_spec("pip") else base_python()
    command = [python, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _platform_args(platform: str) -> list[str]:
    return [
        "--platform",
        platform,
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--only-binary=:all:",
        "--no-deps",
        "--require-hashes",
    ]


def fetch_wheels(requirements: Path, platform: str) -> Path:
    """Fill the wheelhouse for `platform` (network only for wheels not there yet)."""
    house = WHEELHOUSE / platform
    house.mkdir(parents=True, exist_ok=True)
    done = _pip(["download", *_platform_args(platform), "-r", str(requirements), "-d", str(house)])
    if done.returncode:
        raise PackagingError(f"pip download failed for {platform}:\n{done.stderr}")
    return house


def install(requirements: Path, platform: str, target: Path) -> None:
    house = WHEELHOUSE / platform
    offline = [
        "install",
        *_platform_args(platform),
        "--no-index",
        "--find-links",
        str(house),
        "--target",
        str(target),
        "-r",
        str(requirements),
    ]
    if _pip(offline).returncode:  # a wheel is missing: fetch, then install offline again
        fetch_wheels(requirements, platform)
        done = _pip(offline)
        if done.returncode:
            raise PackagingError(f"pip install failed for {platform}:\n{done.stderr}")


def prune(target: Path, botocore_services: tuple[str, ...]) -> None:
    for relative in PRUNE_PATHS:
        shutil.rmtree(target / relative, ignore_errors=True)
    for path in sorted(target.rglob("*"), reverse=True):
        if path.is_dir() and path.name in PRUNE_DIRS and path.parent.name != "data":
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.name.endswith(PRUNE_SUFFIXES):
            path.unlink()
    data = target / "botocore" / "data"
    if data.is_dir():
        for service in data.iterdir():
            # Top-level files (endpoints.json, partitions.json, _retry.json, ...) stay.
            if service.is_dir() and service.name not in botocore_services:
                shutil.rmtree(service)
        prune_endpoints(data, botocore_services)


def _endpoint_prefix(data: Path, service: str) -> str:
    """The service's key in endpoints.json: its model's endpointPrefix (dynamodb, ssm, ...)."""
    for model in sorted(data.glob(f"{service}/*/service-2.json*"), reverse=True):
        raw = model.read_bytes()
        text = gzip.decompress(raw) if model.name.endswith(".gz") else raw
        prefix: str = json.loads(text)["metadata"].get("endpointPrefix", service)
        return prefix
    return service


def prune_endpoints(data: Path, botocore_services: tuple[str, ...]) -> None:
    """endpoints.json keeps the entries of the services the zip has models for.

    Every client creation parses the whole file (1.2 MB, ~300 services, ~8 ms of a cold start);
    a client of any other service cannot be made from this zip anyway. Partitions, regions and
    defaults stay as they are.
    """
    path = data / "endpoints.json"
    if not path.is_file():
        return
    keep = set(botocore_services) | {_endpoint_prefix(data, s) for s in botocore_services}
    endpoints = json.loads(path.read_text())
    for partition in endpoints["partitions"]:
        partition["services"] = {
            name: entry for name, entry in partition["services"].items() if name in keep
        }
    path.write_text(json.dumps(endpoints, separators=(",", ":"), sort_keys=True))


def copy_project(packages: tuple[str, ...], target: Path) -> None:
    for package in packages:
        shutil.copytree(
            REPO / package,
            target / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"),
        )


def compile_bytecode(target: Path) -> None:
    if sys.version_info[:2] != (3, 11):
        raise PackagingError("build with Python 3.11: .pyc files must match Lambda's python3.11")
    ok = compileall.compile_dir(
        str(target),
        quiet=2,
        workers=0,
        ddir="/var/task",
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        raise PackagingError("compileall failed")


LARGE_FILE = 8 * MB  # compressed at a faster level: a few % larger, a third of the time


def write_zip(source: Path, destination: Path) -> int:
    """A reproducible zip of `source`; returns the unzipped size."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_suffix(".zip.tmp")
    unzipped = 0
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), (1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            unzipped += len(data)
            # DuckDB's 60 MB library: level 9 takes 6.2 s for 19.0 MB, level 6 2.0 s for 20.0 MB
            archive.writestr(info, data, compresslevel=9 if len(data) < LARGE_FILE else 6)
    tmp.replace(destination)
    return unzipped


def build(function: Function, platform: str = AARCH64, out_dir: Path = DEFAULT_OUT) -> Artifact:
    text, names = subset_requirements(function, platform)
    with tempfile.TemporaryDirectory(prefix=f"package-{function.name}-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(text)
        staging = Path(tmp) / "staging"
        install(requirements, platform, staging)
        prune(staging, function.botocore_services)
        copy_project(function.packages, staging)
        compile_bytecode(staging)
        path = out_dir / f"{function.name}.zip"
        unzipped = write_zip(staging, path)
    artifact = Artifact(function.name, platform, path, path.stat().st_size, unzipped, names)
    over_unzipped = unzipped > min(function.budget_unzipped, LAMBDA_UNZIPPED_LIMIT)
    if artifact.zipped_bytes > function.budget_zipped or over_unzipped:
        raise PackagingError(
            f"{function.name}: {artifact.zipped_bytes / MB:.1f} MB zipped, "
            f"{unzipped / MB:.1f} MB unzipped; budget {function.budget_zipped / MB:.0f} MB zipped, "
            f"{function.budget_unzipped / MB:.0f} MB unzipped"
        )
    return artifact


def build_all(platform: str = AARCH64, out_dir: Path = DEFAULT_OUT) -> list[Artifact]:
    return [build(f, platform, out_dir) for f in FUNCTIONS.values()]


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--platform", default=AARCH64, help=f"pip platform tag ({AARCH64})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--function", action="append", choices=sorted(FUNCTIONS))
    parser.add_argument(
        "--fetch-only", action="store_true", help="fill the wheelhouse, build nothing"
    )
    args = parser.parse_args(argv)
    chosen = [FUNCTIONS[n] for n in (args.function or FUNCTIONS)]
    try:
        if args.fetch_only:
            with tempfile.TemporaryDirectory() as tmp:
                names = sorted({n for f in chosen for n in closure(f.requires, args.platform)})
                blocks = requirement_blocks()
                requirements = Path(tmp) / "requirements.txt"
                requirements.write_text("\n".join(blocks[n] for n in names) + "\n")
                house = fetch_wheels(requirements, args.platform)
            print(f"wheels for {args.platform} in {_shown(house)}")
            return 0
        print(f"{'function':<11} {'zipped':>9} {'unzipped':>9} {'budgets':>15}  ({args.platform})")
        for function in chosen:
            a = build(function, args.platform, args.out)
            print(
                f"{a.function:<11} {a.zipped_bytes / MB:>6.2f} MB {a.unzipped_bytes / MB:>6.1f} MB "
                f"{function.budget_zipped / MB:>4.0f} / {function.budget_unzipped / MB:>3.0f} MB  "
                f"{_shown(a.path)}"
            )
    except PackagingError as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
