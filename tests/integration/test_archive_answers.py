"""The archive engine on the stats-world traffic (real ingest and aggregator): its answers equal
the stats oracle for two-property questions, with the archive written under the fault
campaign's delivery schedules; and on every question the counters answer, the counters and the
archive agree (a bug in either path shows up as a difference)."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest

from archive.parquet import write_events
from core.events import RawEvent
from core.keys import Granularity, bucket_label
from core.sites import Site
from query_api import counters, parse
from query_api.archive_engine import ArchiveEngine
from query_api.metrics import Number, compute
from query_api.reader import CounterReader
from tests.faults import FAULTS, Schedule, stored_events
from tests.integration.stats_world import FIRST, LAST, SITE, TZ, World
from tests.stats_oracle import Cond, MultiOracle

ALL = "visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration,events"


def archive_under(schedule: Schedule, events: list[RawEvent], directory: Path) -> list[Path]:
    """The part files the rollup tier writes when the stream is delivered under the schedule:
    one file per (batch, site-local day) at each delivery; a retried batch rewrites its own file,
    a bisected batch writes its halves and then itself, a crash after the write writes it again,
    and an old batch may come again late."""
    events = sorted(events, key=lambda e: (e.ts, e.event_id))
    rnd = random.Random(schedule.seed)
    written: dict[str, list[RawEvent]] = {}

    def deliver(batch: list[RawEvent]) -> None:
        by_day: dict[str, list[RawEvent]] = defaultdict(list)
        for event in batch:
            by_day[bucket_label(Granularity.DAY, event.ts, event.tz)].append(event)
        for day, part in by_day.items():
            name = f"{day}-{'-'.join(sorted(e.event_id for e in part))[:40]}-{len(part)}"
            written[f"{name}-{abs(hash(tuple(e.event_id for e in part)))}"] = part

    position, delivered = 0, []
    for size, fault in schedule.batches:
        batch = events[position : position + size]
        position += size
        if fault == "reorder":
            rnd.shuffle(batch)
        if fault == "bisect":
            deliver(batch[: len(batch) // 2])
            deliver(batch[len(batch) // 2 :])
        deliver(batch)
        if fault in ("retry", "duplicate", "crash_after", "throttle"):
            deliver(batch)
        delivered.append(batch)
    if delivered and rnd.random() < 0.5:
        deliver(rnd.choice(delivered))
    paths = []
    for index, part in enumerate(written.values()):
        path = directory / f"part-{index}.parquet"
        write_events(part, path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def events(world: World) -> list[RawEvent]:
    return stored_events(world.pipeline.ddb, world.pipeline.names)


@pytest.fixture(scope="module")
def files(events: list[RawEvent], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    # bisected batches: their halves and then the whole batch, so events in two objects
    schedule = Schedule([(size, "bisect") for size in (7, 13, 40)] * 20, seed=1)
    return archive_under(schedule, events, tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def oracle(events: list[RawEvent]) -> MultiOracle:
    return MultiOracle(events, TZ)


SITE_RECORD = Site(SITE, tz=TZ)


def query(filters: str, metrics: str, first: date = FIRST, last: date = LAST) -> parse.Query:
    return parse.Query(
        SITE_RECORD,
        parse.DateRange(first, last),
        parse.parse_filters(filters),
        tuple(metrics.split(",")),
    )


def conds(filters: str) -> tuple[Cond, ...]:
    return tuple(Cond(f.prop.name, f.values, f.negated) for f in parse.parse_filters(filters))


def expect(cell: dict[str, int], metrics: str) -> dict[str, Number]:
    return {m: compute(m, cell) for m in metrics.split(",")}


TWO_PROPERTIES = (
    ("visit:source==Google;visit:browser==Chrome|Firefox", None),
    ("visit:source!=Google;event:page==/blog*", None),
    ("visit:utm_source==news;event:page!=/", None),
    ("visit:source==Google", "event:page"),
    ("event:page==/pricing|/blog", "visit:source"),
    ("visit:country!=DE;visit:device==Desktop", "visit:entry_page"),
    ("event:props:plan==pro|free", "visit:browser"),
    ("visit:browser==Chrome", "event:goal"),
)


def mismatches(engine: ArchiveEngine, oracle: MultiOracle) -> list[str]:
    problems = []
    for filters, prop in TWO_PROPERTIES:
        event_only = "event:props" in filters or (prop or "").startswith("event:goal")
        metrics = "visitors,pageviews,events" + ("" if event_only else ",visits,bounce_rate")
        if prop is None:
            got: object = {
                m: v["value"] for m, v in engine.aggregate(query(filters, metrics)).items()
            }
            want: object = expect(oracle.answer(FIRST, LAST, conds(filters)).get("", {}), metrics)
        else:
            parsed = parse.parse_property(prop)
            rows, _ = engine.breakdown(query(filters, metrics), parsed, limit=1000)
            got = {r[parsed.key]: {m: r[m] for m in metrics.split(",")} for r in rows}
            want = {
                v: expect(c, metrics)
                for v, c in oracle.answer(FIRST, LAST, conds(filters), prop).items()
            }
        if got != want:
            problems.append(f"{filters} by {prop}: archive {got}, oracle {want}")
    for day in (FIRST, FIRST + timedelta(days=3), LAST):
        filters = "visit:source!=Google;event:page==/blog*|/"
        series = engine.timeseries(query(filters, "visitors,pageviews,visits", day, day), "day")
        cell = oracle.answer(day, day, conds(filters), units="day").get("", {})
        if {k: v for k, v in series[0].items() if k != "date"} != expect(
            cell, "visitors,pageviews,visits"
        ):
            problems.append(f"{day}: {series}")
    return problems


def test_two_property_answers_equal_the_oracle(files: list[Path], oracle: MultiOracle) -> None:
    assert mismatches(ArchiveEngine(SITE_RECORD, files), oracle) == []


@pytest.mark.parametrize("seed", range(4))
def test_two_property_answers_equal_the_oracle_under_fault_schedules(
    events: list[RawEvent], oracle: MultiOracle, tmp_path: Path, seed: int
) -> None:
    rnd = random.Random(seed)
    schedule = Schedule.random(rnd, len(events))
    assert {f for _, f in schedule.batches} & {"bisect", "retry", "duplicate"}, FAULTS
    paths = archive_under(schedule, events, tmp_path)
    assert mismatches(ArchiveEngine(SITE_RECORD, paths), oracle) == []


# ---- counters and archive agree where both answer ------------------------------------------


def counter_engine(world: World) -> counters.CounterEngine:
    reader = CounterReader(world.pipeline.ddb, world.pipeline.names["aggregates"])
    return counters.CounterEngine(reader, SITE_RECORD)


ANSWERABLE = [
    ("", ALL),
    ("visit:source==Google", "visitors,visits,pageviews,bounce_rate,visit_duration"),
    ("visit:browser==Chrome|Firefox", "visitors,visits,pageviews"),
    ("visit:entry_page==/blog", "visitors,visits,bounce_rate"),
    ("visit:utm_source!=news", "visits,pageviews"),
    ("event:page==/blog", "visitors,pageviews,time_on_page,scroll_depth"),
    ("event:page==/blog*", "pageviews,time_on_page,scroll_depth"),
    ("event:page!=/blog", "pageviews"),
    ("event:goal==Signup", "visitors,events,conversion_rate"),
    ("event:name==Signup", "visitors,events"),
    ("event:props:plan==pro", "visitors,events"),
    ("event:hostname==stats.example", "visitors,pageviews,events"),
]
BREAKDOWNS = [
    ("visit:source", "visitors,visits,pageviews,bounce_rate,visit_duration"),
    ("visit:browser", "visitors,visits"),
    ("visit:entry_page", "visitors,visits,bounce_rate"),
    ("visit:exit_page", "visits"),
    ("event:page", "visitors,pageviews,time_on_page,scroll_depth"),
    ("event:goal", "visitors,events,conversion_rate"),
    ("event:name", "visitors,events"),
    ("event:props:plan", "visitors,events"),
    ("event:hostname", "visitors,pageviews"),
]


@pytest.mark.parametrize(("filters", "metrics"), ANSWERABLE)
@pytest.mark.parametrize(
    "span", [(FIRST, LAST), (date(2026, 10, 1), date(2026, 11, 30)), (LAST, LAST)]
)
def test_counters_and_archive_agree_on_aggregates(
    world: World, files: list[Path], filters: str, metrics: str, span: tuple[date, date]
) -> None:
    q = query(filters, metrics, *span)
    assert ArchiveEngine(SITE_RECORD, files).aggregate(q, compare=True) == counter_engine(
        world
    ).aggregate(q, compare=True)


@pytest.mark.parametrize(("prop", "metrics"), BREAKDOWNS)
def test_counters_and_archive_agree_on_breakdowns(
    world: World, files: list[Path], prop: str, metrics: str
) -> None:
    q = query("", metrics, date(2026, 10, 1), date(2026, 11, 30))
    parsed = parse.parse_property(prop)
    rows, _ = ArchiveEngine(SITE_RECORD, files).breakdown(q, parsed, limit=1000)
    want, folded = counter_engine(world).breakdown(q, parsed, limit=1000)
    assert not folded and rows == want and rows


@pytest.mark.parametrize(
    ("interval", "first", "last"),
    [
        ("day", FIRST - timedelta(days=2), LAST),
        ("month", date(2026, 6, 1), date(2026, 11, 30)),
        ("hour", date(2026, 10, 29), date(2026, 10, 29)),
        ("hour", date(2026, 11, 1), date(2026, 11, 1)),
    ],
)
def test_counters_and_archive_agree_on_timeseries(
    world: World, files: list[Path], interval: str, first: date, last: date
) -> None:
    metrics = "visitors,visits,pageviews,bounce_rate,visit_duration,events"
    q = query("", metrics, first, last)
    got = ArchiveEngine(SITE_RECORD, files).timeseries(q, interval)
    assert got == counter_engine(world).timeseries(q, interval)
    assert any(p["pageviews"] for p in got)


def test_the_archive_was_written_with_copies(files: list[Path], events: list[RawEvent]) -> None:
    from archive.parquet import connect

    con = connect()
    rows = con.execute("SELECT count(*) FROM read_parquet($1)", [[str(f) for f in files]])
    assert rows.fetchone()[0] > len({e.event_id for e in events})
