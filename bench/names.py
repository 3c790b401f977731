"""What Plausible's names cost on read (decision 0034): the archive engines' statements with and
without the renaming of browser and OS, on the bench archive (bench/archive.py: a month of a
site with 1 M pageviews, its browsers under ua-parser's names, "Edge" and "Samsung Internet"
among them); the counters' merge of rows; the import; and what a rewrite of one archived day
would cost instead. `python -m bench.names [pageviews a month]`."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from bench import archive as bench_archive
from core import names
from core.sites import Site
from query_api import archive_engine, counters, parse
from query_api.archive_engine import ArchiveEngine

RUNS = 5
QUESTIONS = (
    ("breakdown by browser", "", "visit:browser"),
    ("visit:browser==Chrome", "visit:browser==Chrome", None),
    ("browser==Chrome, by os", "visit:browser==Chrome", "visit:os"),
)


@contextmanager
def renaming(on: bool) -> Any:
    if on:
        yield
        return
    # no renaming: the tables empty, and the visits files' view left as stored
    with (
        mock.patch.object(names, "TABLES", {}),
        mock.patch.object(archive_engine, "_renamed_all", lambda relation: relation),
    ):
        yield


def _ask(engine: ArchiveEngine, filters: str, prop: str | None) -> None:
    first, last = bench_archive.days_of_query()[0], bench_archive.days_of_query()[-1]
    query = parse.Query(
        engine.site,
        parse.DateRange(first, last),
        parse.parse_filters(filters),
        ("visitors", "visits", "pageviews"),
    )
    if prop is None:
        engine.aggregate(query)
    else:
        engine.breakdown(query, parse.parse_property(prop))


def archive_seconds(files: list[Path], visits: bool) -> dict[str, dict[str, float]]:
    site = Site(bench_archive.SITE, tz="UTC")
    out: dict[str, dict[str, float]] = {}
    for label, filters, prop in QUESTIONS:
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(RUNS):
            for on in (False, True):  # interleaved: the machine's load hits both alike
                with renaming(on):
                    engine = ArchiveEngine(site, files, visits=visits)
                    engine.visit_files()  # footers read before the clock starts, as a warm Lambda
                    start = time.process_time()
                    _ask(engine, filters, prop)
                    times[on].append(time.process_time() - start)
        out[label] = {
            "off_cpu_s": round(statistics.median(times[False]), 3),
            "on_cpu_s": round(statistics.median(times[True]), 3),
        }
    return out


def counters_microseconds(values: int = 60) -> float:
    """The counters' renaming of a breakdown's rows (once a query, after the buckets are
    added): 60 browser values, a third under old names."""
    rows = {
        f"v{i}" if i % 3 else f"Chrome Mobile {i}": {"visitors": 1, "visits": 2, "pageviews": 3}
        for i in range(values)
    }
    start = time.perf_counter()
    for _ in range(1000):
        counters._renamed("browser", rows)
    return round((time.perf_counter() - start) / 1000 * 1e6, 1)


def import_ms() -> float:
    probe = (
        "import time; t = time.perf_counter(); import core.names; print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return round(float(out.stdout) * 1000, 2)


def rewrite_one_day(day_file: Path) -> dict[str, float]:
    """A migration's work for one archived day: read it, rename, write it back (its visits
    file would be remade too, as compaction does)."""
    import duckdb

    con = duckdb.connect()
    renamed = ", ".join(f"{names.sql(c, c)} AS {c}" for c in names.TABLES)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "day.parquet"
        start = time.process_time()
        con.execute(
            f"COPY (SELECT * REPLACE ({renamed}) FROM read_parquet('{day_file}')) "
            f"TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
        )
        cpu = time.process_time() - start
    return {"cpu_s": round(cpu, 3), "bytes": day_file.stat().st_size}


def main(pageviews: int = 1_000_000) -> dict[str, Any]:
    files, events = bench_archive.generate(pageviews)
    bench_archive.generate_visits(files)
    return {
        "pageviews_a_month": pageviews,
        "events": events,
        "archive_events_path": archive_seconds(files, visits=False),
        "archive_visits_path": archive_seconds(files, visits=True),
        "counters_rename_us_per_query_60_values": counters_microseconds(),
        "import_core_names_ms": import_ms(),
        "rewrite_one_day": rewrite_one_day(files[0]),
    }


if __name__ == "__main__":
    print(json.dumps(main(*(int(a) for a in sys.argv[1:])), indent=2))
