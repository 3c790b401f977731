"""`make bench` group `archive`: the event archive's size, cost and query latency (issue 18).

Synthetic archives of 1 M and 10 M pageviews a month, generated here with DuckDB straight to
Parquet in the archive's layout (archive/layout.py: `events/<site>/<day>/compact-*.parquet`, one
compacted file per site-local day, rows sorted as archive/parquet.py writes them, its zstd
options). Their shape: ~2.5 pageviews a visit, an engagement event after each pageview (time and
scroll depth), a few outbound/custom events, sources, countries, pages and browsers skewed as
real traffic is (a few values take most of it), returning visitors, a site in New York's zone;
beside each day file its visits file, written by compaction's code (archive/visits.py).

Then the real engine (`query_api.archive_engine.ArchiveEngine(site, files)`) answers a two-filter
30-day page breakdown (`visit:source==Google;visit:country==US`, property `event:page`, metrics
visitors, pageviews, bounce_rate) over the 32 files it would get (a day on each side), in a
fresh interpreter held to one core, as on Lambda at 1,769 MB: p50/p95 latency, bytes read
(the `read` syscalls' bytes: what S3 would have to deliver were the cache cold), peak memory
(what sizes the query function), and $ per 1,000 queries. Also: archive bytes per event, a
compaction run's CPU and memory (a day's file merged with an hour of parts) and the archive's
cost per million pageviews (bench/bill.py's lines: PUTs at the rollup tier's batch rate,
storage, compaction runs).

Generated archives are kept in build/bench-archive/ (deterministic, ~1 GB at 10 M): a second
run reuses them.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from archive import layout
from archive.parquet import PARQUET_OPTIONS, SORT

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "build" / "bench-archive"
GENERATOR_VERSION = 3  # bump when the generated shape changes: cached archives are remade
# (3: the visitor_key column)
SITE = "archive-bench.example"
TZ = "America/New_York"
LAST_DAY = date(2026, 11, 30)  # the query's last day; fixed, so nothing depends on today
QUERY_DAYS = 30
FILTERS = "visit:source==Google;visit:country==US"
PROPERTY = "event:page"
METRICS = "visitors,pageviews,bounce_rate"
GOALS_SECONDS = {1_000_000: 1.5, 10_000_000: 5.0}
BYTES_PER_EVENT_GOAL = 100.0
RUNS = {1_000_000: 9, 10_000_000: 5}
PAGEVIEWS_PER_VISIT = 2.5

# Skewed value lists: index 0 is the most common (a power of a uniform draw picks the head).
SOURCES = [
    "Google", "", "Bing", "DuckDuckGo", "Twitter", "Facebook", "LinkedIn", "Reddit",
    "Hacker News", "GitHub", "Yahoo!", "Ecosia", "Instagram", "YouTube", "Newsletter",
    "Brave", "Qwant", "Baidu", "Yandex", "Mastodon",
]  # fmt: skip
COUNTRIES = [
    "US", "DE", "GB", "IN", "FR", "CA", "NL", "BR", "AU", "ES", "IT", "PL", "SE", "JP",
    "CH", "AT", "BE", "DK", "NO", "FI", "IE", "PT", "CZ", "MX", "AR", "KR", "SG", "ZA",
    "NZ", "TR",
]  # fmt: skip
BROWSERS = ["Chrome", "Safari", "Firefox", "Edge", "Samsung Internet", "Opera"]
OSES = ["Windows", "iOS", "Android", "Mac", "Linux", "ChromeOS"]
DEVICES = ["Desktop", "Mobile", "Tablet"]
PAGES = 400


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _pick(values: list[str], skew: float, draw: str) -> str:
    """A value of `values`, the first ones far more often (`skew` > 1: more skewed)."""
    n = len(values)
    return f"{_sql_list(values)}[1 + least({n - 1}, floor({n} * pow({draw}, {skew}))::INT)]"


def day_bounds(day: date) -> tuple[int, int]:
    """Epoch ms of the site-local day's first and next day's first millisecond."""
    zone = ZoneInfo(TZ)
    start = datetime.combine(day, datetime.min.time(), zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def generate_day(con: Any, day: date, visits: int, seed: int, path: Path) -> int:
    """One compacted day: `visits` visits and their events, written as the archive writes."""
    start, end = day_bounds(day)
    con.execute(f"SELECT setseed({(seed % 10_000) / 10_000})")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE visits AS
        SELECT v,
            -- returning visitors: a pool a fifth the size of a month's visits
            substr(md5('visitor' || floor(pow(random(), 1.3) * {visits * 6})::BIGINT), 1, 16)
                AS visitor_id,
            {start} + floor(random() * ({end - start} - 1800000))::BIGINT AS t0,
            1 + floor(-ln(1 - random()) * 2.0)::INT AS pageviews,
            {_pick(SOURCES, 2.2, "random()")} AS source,
            {_pick(COUNTRIES, 2.6, "random()")} AS country,
            {_pick(BROWSERS, 2.0, "random()")} AS browser,
            {_pick(OSES, 1.8, "random()")} AS os,
            {_pick(DEVICES, 1.7, "random()")} AS device,
            floor(pow(random(), 2.5) * {PAGES})::INT AS entry
        FROM range({visits}) AS r(v)
        """
    )
    # Each pageview: a page (the entry, then skewed), ~40 s apart; an engagement event after it;
    # now and then an outbound link or a custom event.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE views AS
        SELECT visits.*, k,
            t0 + k * (5000 + floor(random() * 70000)::BIGINT) AS ts,
            CASE WHEN k = 0 THEN entry ELSE floor(pow(random(), 2.5) * 400)::INT END AS p,
            random() AS extra
        FROM visits, range(pageviews) AS g(k)
        """
    )
    columns = ", ".join(layout.COLUMN_NAMES)
    common = (
        f"'{SITE}' AS site, visitor_id, {layout.visitor_key_sql()} AS visitor_key, '{TZ}' AS tz, '' AS previous_visitor_id, "
        "'archive-bench.example' AS hostname, "
        "CASE WHEN p = 0 THEN '/' ELSE '/docs/page-' || p END AS page, "
        "CASE WHEN source = '' THEN '' ELSE 'https://' || lower(replace(source, ' ', '')) "
        "|| '.com/' END AS referrer, source, '' AS utm_medium, "
        "CASE WHEN source = 'Newsletter' THEN 'newsletter' ELSE '' END AS utm_source, "
        "'' AS utm_campaign, '' AS utm_content, '' AS utm_term, country, browser, "
        "(100 + floor(random() * 30)::INT)::VARCHAR AS browser_version, os, "
        "'' AS os_version, device, true AS interactive, false AS internal, "
        "'' AS revenue_amount, '' AS revenue_currency"
    )
    events = f"""
        SELECT md5(visitor_id || ts || 'pv') AS event_id, ts, 'pageview' AS name,
            {common}, MAP {{}}::MAP(VARCHAR, VARCHAR) AS props,
            NULL::INTEGER AS scroll_depth, NULL::BIGINT AS engaged_ms
        FROM views
        UNION ALL
        SELECT md5(visitor_id || ts || 'en'), ts + 4000 + floor(random() * 60000)::BIGINT,
            'engagement', {common}, MAP {{}}::MAP(VARCHAR, VARCHAR),
            floor(random() * 101)::INTEGER, 2000 + floor(random() * 90000)::BIGINT
        FROM views
        UNION ALL
        SELECT md5(visitor_id || ts || 'cu'), ts + 2000,
            CASE WHEN extra < 0.05 THEN 'Outbound Link: Click' ELSE 'Signup' END, {common},
            CASE WHEN extra < 0.05 THEN MAP {{'url': 'https://github.com/'}}
                ELSE MAP {{'plan': 'free'}} END,
            NULL::INTEGER, NULL::BIGINT
        FROM views WHERE extra < 0.1
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(
        # each event id once, as compaction leaves a day (a visitor drawn twice at the same
        # millisecond makes the same id: 82 of 22.8 M at 10 M pageviews)
        f"COPY (SELECT {columns} FROM ({events}) "
        "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY ts) = 1 "
        f"ORDER BY {SORT}) TO '{path}' ({PARQUET_OPTIONS})"
    )
    row = con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()
    return int(row[0]) if row else 0


def days_of_query() -> list[date]:
    """The query's 30 days and one on each side: the files the engine is given."""
    first = LAST_DAY - timedelta(days=QUERY_DAYS - 1)
    return [first + timedelta(days=i) for i in range(-1, QUERY_DAYS + 1)]


def generate(pageviews_per_month: int, root: Path = CACHE) -> tuple[list[Path], int]:
    """The archive of a site with that many pageviews a month: (day files, events)."""
    import duckdb

    directory = root / f"{pageviews_per_month}-v{GENERATOR_VERSION}"
    manifest = directory / "manifest.json"
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        files = [directory / f for f in saved["files"]]
        if all(f.exists() for f in files):
            return files, int(saved["events"])
    shutil.rmtree(directory, ignore_errors=True)
    con = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    visits_per_day = round(pageviews_per_month / 30 / PAGEVIEWS_PER_VISIT)
    files, events = [], 0
    for i, day in enumerate(days_of_query()):
        key = layout.compact_key(SITE, day.isoformat(), [f"generated-{i}"])
        path = directory / key.key
        events += generate_day(con, day, visits_per_day, seed=pageviews_per_month + i, path=path)
        files.append(path)
    manifest.write_text(
        json.dumps({"files": [str(f.relative_to(directory)) for f in files], "events": events})
    )
    return files, events


def generate_visits(files: list[Path]) -> int:
    """Each day file's visits file beside it, as compaction writes it (archive/visits.py,
    decision 0032); kept like the day files. Their bytes."""
    from archive.parquet import connect
    from archive.visits import sidecar_path, write_visits

    con = connect()
    for path in files:
        target = sidecar_path(path)
        if not target.exists():
            write_visits([path], path.parent.name, target, con)
    return sum(sidecar_path(f).stat().st_size for f in files)


# Runs in a fresh interpreter held to one core: the engine, as the query function runs it.
QUERY_RUNNER = r"""
import json, resource, sys, time
from datetime import date
sys.path.insert(0, sys.argv[1])
spec = json.loads(sys.argv[2])

def rchar():
    with open("/proc/self/io") as f:
        return int(next(l for l in f if l.startswith("rchar")).split()[1])

started = time.perf_counter()
from core.sites import Site
from query_api.archive_engine import ArchiveEngine
from query_api.parse import DateRange, Query, parse_filters, parse_metrics, parse_property
imported = time.perf_counter() - started
site = Site(spec["site"], tz=spec["tz"])
span = DateRange(date.fromisoformat(spec["first"]), date.fromisoformat(spec["last"]))
prop = parse_property(spec["property"])
filters = parse_filters(spec["filters"])
query = Query(site, span, filters, tuple(parse_metrics(spec["metrics"], prop, filters)))
times, reads, cpus = [], [], []
rows = None
for _ in range(spec["runs"]):
    engine = ArchiveEngine(site, spec["files"])  # a fresh engine: nothing kept between queries
    r0, c0, t0 = rchar(), time.process_time(), time.perf_counter()
    rows, folded = engine.breakdown(query, prop, limit=100)
    visits = engine.answered_by_visits
    times.append(time.perf_counter() - t0)
    cpus.append(time.process_time() - c0)
    reads.append(rchar() - r0)
print(json.dumps({
    "seconds": times, "cpu": cpus, "read_bytes": reads, "import_seconds": imported,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rows": len(rows or []), "top": (rows or [None])[0], "visits": visits,
}, default=str))
"""


def _one_core() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def run_queries(files: list[Path], runs: int) -> dict[str, Any]:
    first = LAST_DAY - timedelta(days=QUERY_DAYS - 1)
    spec = {
        "site": SITE,
        "tz": TZ,
        "first": first.isoformat(),
        "last": LAST_DAY.isoformat(),
        "property": PROPERTY,
        "filters": FILTERS,
        "metrics": METRICS,
        "files": [str(f) for f in files],
        "runs": runs,
    }
    return _on_one_core("archive query", QUERY_RUNNER, json.dumps(spec))


# Merges a day's file with an hour of new parts, as compaction does (archive.parquet.merge_files).
COMPACTION_RUNNER = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
day, parts, out = sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
from archive.parquet import connect, merge_files
from archive.visits import write_visits
con = connect()
c0, t0 = time.process_time(), time.perf_counter()
rows = merge_files([day, *parts], out, con)
merge_cpu = time.process_time() - c0
write_visits([out], "2026-11-15", out + ".visits.parquet", con)  # decision 0032
print(json.dumps({"cpu": time.process_time() - c0, "seconds": time.perf_counter() - t0,
    "merge_cpu": merge_cpu, "visits_cpu": time.process_time() - c0 - merge_cpu,
    "rows": rows, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_compaction(day_file: Path, work: Path, parts: int = 12) -> dict[str, Any]:
    """A compaction run at this volume: the day's merged file plus `parts` new part objects
    (an hour of rollup batches: 4 shards x 3 windows), each a slice of another day's events."""
    import duckdb

    work.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    paths = []
    total = con.execute(f"SELECT count(*) FROM read_parquet('{day_file}')").fetchone()
    per_part = max(1, int(total[0] if total else 0) // 24 // parts)
    for i in range(parts):
        path = work / f"part-{i}.parquet"
        con.execute(
            f"COPY (SELECT * REPLACE (event_id || '-{i}' AS event_id) "
            f"FROM read_parquet('{day_file}') LIMIT {per_part} OFFSET {i * per_part}) "
            f"TO '{path}' ({PARQUET_OPTIONS})"
        )
        paths.append(str(path))
    return _on_one_core(
        "compaction",
        COMPACTION_RUNNER,
        str(day_file),
        json.dumps(paths),
        str(work / "merged.parquet"),
    )


def _on_one_core(what: str, runner: str, *args: str) -> dict[str, Any]:
    """Run a measuring script in a fresh interpreter pinned to one core; its last line's JSON."""
    done = subprocess.run(
        [sys.executable, "-c", runner, str(REPO), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        preexec_fn=_one_core,
        timeout=1800,
    )
    if done.returncode:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def query_usd_per_1000(cpu_seconds: float, gets: int, memory_mb: int) -> float:
    """A thousand queries: Lambda at `memory_mb` (CPU measured on a full core, stretched below
    1,769 MB) and the GETs of a cold cache (every day's object fetched)."""
    from bench import prices

    share = min(1.0, memory_mb / prices.LAMBDA_FULL_CORE_MB)
    gb_s = cpu_seconds / share * memory_mb / 1024
    per_query = gb_s * prices.LAMBDA_GB_SECOND_ARM.usd + prices.LAMBDA_REQUEST.usd
    return 1000 * (per_query + gets * prices.S3_GET.usd)


def archive_cost_per_million(bytes_per_event: float, compaction_cpu: float) -> dict[str, float]:
    """The archive's lines of the bill (bench/bill.py) for a month of a million pageviews."""
    from bench import bill, terraform_facts

    facts = terraform_facts.read()
    shape = replace(
        bill.Shape(tabs=0),
        archive_bytes_per_event=bytes_per_event,
        compaction_cpu_seconds_per_run=compaction_cpu,
    )
    empty = bill.Usage(units=1)
    month = bill.monthly(1e6, empty, empty, facts, shape)
    names = ("S3 archive", "Archive compaction", "EventBridge", "Lambda duration: archive")
    return {i.name: i.usd for i in month.items if i.name.startswith(names)}


def _row(figure: str, value: float, unit: str, goal: str = "", anchor: str = "") -> dict[str, Any]:
    return {
        "figure": figure,
        "value": round(value, 4),
        "unit": unit,
        "goal": goal,
        "anchor": anchor,
    }


def rows(volumes: tuple[int, ...] = (1_000_000, 10_000_000)) -> list[dict[str, Any]]:
    from bench import terraform_facts

    memory = terraform_facts.read().functions["query"].memory_mb
    out: list[dict[str, Any]] = []
    anchor = "issue 18; decisions 0029, 0030, 0032"
    for volume in volumes:
        label = f"{volume // 1_000_000} M pageviews/month"
        started = time.perf_counter()
        files, events = generate(volume)
        print(
            f"bench archive: {label}: {events:,} events in {len(files)} files "
            f"({time.perf_counter() - started:.0f} s)",
            file=sys.__stderr__,
            flush=True,
        )
        visits_size = generate_visits(files)
        size = sum(f.stat().st_size for f in files)
        per_event = (size + visits_size) / events
        measured = run_queries(files, RUNS[volume])
        seconds = measured["seconds"]
        p50, p95 = statistics.median(seconds), percentile(seconds, 0.95)
        cpu = statistics.median(measured["cpu"])
        cpu_p95 = percentile(measured["cpu"], 0.95)
        load = os.getloadavg()[0]  # the build machine is shared: wall time waits for the core
        read = statistics.median(measured["read_bytes"])
        path = "visits files" if measured["visits"] else "events"
        # the store fetches a day's events object and, beside it, its visits object
        gets = len(files) * (2 if measured["visits"] else 1)
        what = f"two-filter 30-day page breakdown, {label}, one core, ArchiveEngine from {path}"
        goal = f"≤ {GOALS_SECONDS[volume]:g} s"
        out += [
            _row(f"archive query p50 ({what})", p50, "s", goal, anchor),
            _row(f"archive query p95 ({what})", p95, "s", goal, anchor),
            _row(f"archive query CPU p50 ({what})", cpu, "s", goal, anchor),
            _row(f"archive query CPU p95 ({what})", cpu_p95, "s", goal, anchor),
            _row(f"archive query: machine load average after the runs ({label})", load, ""),
            _row(f"archive query: bytes read ({label})", read / 1e6, "MB", "", anchor),
            _row(f"archive query: files' bytes ({label}, 32 days)", size / 1e6, "MB", "", anchor),
            _row(
                f"archive visits files' bytes ({label}, 32 days; decision 0032)",
                visits_size / 1e6,
                "MB",
                "",
                anchor,
            ),
            _row(
                f"archive query: scan rate ({label}, events in the files / p50)",
                events / p50 / 1e6,
                "M events/s",
                "",
                anchor,
            ),
            _row(
                f"archive query: peak memory ({label})", measured["peak_rss_mb"], "MB", "", anchor
            ),
            _row(
                f"archive query: $ per 1,000 queries ({label}; Lambda at {memory} MB arm64, "
                f"{gets} GETs each: a cold cache)",
                query_usd_per_1000(cpu, gets, memory),
                "USD",
                "",
                anchor,
            ),
            _row(
                f"archive bytes per event after compaction ({label}; events and visits files)",
                per_event,
                "B",
                f"≤ {BYTES_PER_EVENT_GOAL:g}",
                anchor,
            ),
        ]
        compaction = run_compaction(files[len(files) // 2], CACHE / "compaction" / str(volume))
        out += [
            _row(
                f"archive compaction run: CPU ({label}: a day's file + 12 parts merged, one core)",
                compaction["cpu"],
                "s",
                "",
                anchor,
            ),
            _row(
                f"archive compaction run: of which the visits file, CPU ({label})",
                compaction["visits_cpu"],
                "s",
                "",
                "decision 0032",
            ),
            _row(f"archive compaction run: peak memory ({label})", compaction["peak_rss_mb"], "MB"),
        ]
        if volume == 1_000_000:
            lines = archive_cost_per_million(per_event, compaction["cpu"])
            for name, usd in sorted(lines.items()):
                out.append(_row(f"archive cost per million pageviews: {name}", usd, "USD"))
            out.append(
                _row(
                    "archive cost per million pageviews (PUTs, GETs, a month's storage, "
                    "compaction runs)",
                    sum(lines.values()),
                    "USD",
                    "",
                    "bench/bill.py lines at 1 M pageviews a month",
                )
            )
    return out


if __name__ == "__main__":
    only = tuple(int(v) for v in sys.argv[1:]) or (1_000_000, 10_000_000)
    for r in rows(only):
        print(f"| {r['figure']} | {r['value']} {r['unit']} | {r['goal']} | {r['anchor']} |")
