"""The archive engine against the stats oracle (tests/stats_oracle.py MultiOracle) on raw events
made directly: several filters at once, breakdowns by another property, day, month and hour
series; events repeated across files are read once."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from archive.parquet import write_events
from core.events import RawEvent
from core.sites import Site
from query_api import parse
from query_api.archive_engine import ArchiveEngine, _alone
from query_api.metrics import Number, compute
from tests.stats_oracle import Cond, MultiOracle, local_hours
from tests.unit.archive_traffic import SITE, random_events, write_with_duplicates

TZ = "Europe/Berlin"
FIRST, LAST = date(2026, 10, 25), date(2026, 11, 2)
SESSION_METRICS = "visits,bounce_rate,visit_duration"
EVENT_METRICS = "visitors,pageviews,events"
GOALS = ("Signup", "Visit /pricing", "Visit /it's")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Path], MultiOracle]]:
    events = random_events(3, count=700)
    files = write_with_duplicates(events, tmp_path_factory.mktemp("archive"), seed=3)
    yield files, MultiOracle(events, TZ)


def engine(files: list[Path], goals: tuple[str, ...] = ()) -> ArchiveEngine:
    return ArchiveEngine(Site(SITE, tz=TZ, goals=goals), files)


def query(filters: str, metrics: str, first: date = FIRST, last: date = LAST) -> parse.Query:
    site = Site(SITE, tz=TZ)
    return parse.Query(
        site, parse.DateRange(first, last), parse.parse_filters(filters), tuple(metrics.split(","))
    )


def conds(filters: str) -> tuple[Cond, ...]:
    return tuple(Cond(f.prop.name, f.values, f.negated) for f in parse.parse_filters(filters))


def expect(cell: dict[str, int], metrics: str, site_visitors: int = 0) -> dict[str, Number]:
    return {m: compute(m, cell, site_visitors) for m in metrics.split(",")}


FILTERS = (
    "visit:source==Google;visit:country==DE",
    "visit:source==Google;event:page==/blog*",
    "visit:country!=DE;event:hostname==archive.example",
    "visit:browser==Chrome|Firefox;visit:device!=Mobile",
    "event:page!=/blog*;visit:source==news 'daily'|Twitter",
    "event:props:plan==pro|it's;visit:country==US|FR",
    "event:page==/100%|/blog_x;visit:utm_source!=news",
    "visit:entry_page==/blog*;visit:exit_page!=/",
    "event:name==Signup;visit:source!=Google",
    "event:goal==Download;visit:country==DE",
)


@pytest.mark.parametrize("filters", FILTERS)
def test_aggregate_with_two_properties_equals_the_oracle(
    archive: tuple[list[Path], MultiOracle], filters: str
) -> None:
    files, oracle = archive
    session_ok = not any(p in filters for p in ("event:props", "event:name", "event:goal"))
    metrics = EVENT_METRICS + ("," + SESSION_METRICS if session_ok else "")
    got = engine(files).aggregate(query(filters, metrics))
    want = expect(oracle.answer(FIRST, LAST, conds(filters)).get("", {}), metrics)
    assert {m: v["value"] for m, v in got.items()} == want
    assert got["pageviews"]["value"] or got["events"]["value"], "the filters should keep traffic"


BREAKDOWNS = (
    ("event:page", "visit:source==Google"),
    ("event:page", "visit:source==Google;visit:country==DE"),
    ("visit:source", "event:page==/blog*"),
    ("visit:entry_page", "visit:source!=Google"),
    ("visit:country", "event:props:plan==pro"),
    ("event:props:plan", "visit:country==DE|US"),
    ("event:hostname", "visit:browser==Chrome"),
    ("event:goal", "visit:country==DE"),
    ("event:name", "event:hostname==archive.example"),
    ("visit:exit_page", "event:hostname!=archive.example"),
    ("event:page", ""),
    ("visit:source", ""),
)


@pytest.mark.parametrize(("prop", "filters"), BREAKDOWNS)
def test_breakdown_by_another_property_equals_the_oracle(
    archive: tuple[list[Path], MultiOracle], prop: str, filters: str
) -> None:
    files, oracle = archive
    event_only = prop.startswith(("event:props", "event:name", "event:goal")) or any(
        p in filters for p in ("event:props", "event:name", "event:goal")
    )
    metrics = EVENT_METRICS + ("" if event_only else ",visits,bounce_rate,visit_duration")
    if prop == "event:page":
        metrics += ",time_on_page,scroll_depth"
    parsed = parse.parse_property(prop)
    rows, folded = engine(files).breakdown(query(filters, metrics), parsed, limit=1000)
    want = {
        value: expect(cell, metrics)
        for value, cell in oracle.answer(FIRST, LAST, conds(filters), prop).items()
    }
    assert not folded
    assert {str(r[parsed.key]): {m: r[m] for m in metrics.split(",")} for r in rows} == want
    assert want, "the breakdown should have rows"


def test_breakdown_rows_are_sorted_by_the_first_metric_and_paged(
    archive: tuple[list[Path], MultiOracle],
) -> None:
    files, _ = archive
    prop = parse.parse_property("event:page")
    every, _ = engine(files).breakdown(query("visit:country!=FR", "pageviews"), prop, 1000)
    assert [r["pageviews"] for r in every] == sorted((r["pageviews"] for r in every), reverse=True)
    second, _ = engine(files).breakdown(query("visit:country!=FR", "pageviews"), prop, 2, 2)
    assert second == every[2:4]


@pytest.mark.parametrize("interval", ["day", "month", "hour"])
def test_timeseries_with_two_filters_equals_the_oracle(
    archive: tuple[list[Path], MultiOracle], interval: str
) -> None:
    files, oracle = archive
    filters = "visit:country!=FR;event:page==/blog*|/"
    metrics = "visitors,pageviews,visits,bounce_rate"
    first, last = (FIRST, LAST) if interval != "hour" else (date(2026, 10, 25), date(2026, 10, 25))
    if interval == "month":
        first, last = date(2026, 10, 1), date(2026, 11, 30)
    points = engine(files).timeseries(query(filters, metrics, first, last), interval)
    units = {"day": "day", "month": "auto", "hour": "hour"}[interval]
    answer = oracle.answer(first, last, conds(filters), units=units)
    assert answer  # the whole range
    for point in points:
        label = str(point["date"])
        if interval == "month":
            month = date.fromisoformat(label)
            end = min((month + timedelta(days=32)).replace(day=1) - timedelta(days=1), last)
            cell = oracle.answer(month, end, conds(filters)).get("", {})
        elif interval == "day":
            day = date.fromisoformat(label)
            cell = oracle.answer(day, day, conds(filters), units="day").get("", {})
        else:
            continue
        assert {m: point[m] for m in metrics.split(",")} == expect(cell, metrics), label
    if interval == "hour":
        hours = local_hours(first, TZ)
        assert len(points) == 25  # Berlin's DST night
        assert [p["date"] for p in points] == [h.strftime("%Y-%m-%d %H:00:00") for h in hours]
        for point, hour in zip(points, hours, strict=True):
            only = hour.astimezone(UTC).isoformat()
            cell = oracle.answer(first, last, conds(filters), units="hour", only=only).get("", {})
            assert {m: point[m] for m in metrics.split(",")} == expect(cell, metrics), only
        assert sum(int(p["pageviews"]) for p in points) > 0


def test_conversion_rate_divides_by_the_visitors_of_the_other_filters(
    archive: tuple[list[Path], MultiOracle],
) -> None:
    files, oracle = archive
    got = engine(files).aggregate(
        query("event:goal==Signup;visit:country==DE", "visitors,events,conversion_rate")
    )
    goal = oracle.answer(FIRST, LAST, conds("event:goal==Signup;visit:country==DE"))[""]
    country = oracle.answer(FIRST, LAST, conds("visit:country==DE"))[""]
    want = expect(goal, "visitors,events,conversion_rate", country["visitors"])
    assert {m: v["value"] for m, v in got.items()} == want
    assert 0 < float(want["conversion_rate"]) < 100


def test_configured_goals_include_pageview_goals_and_rows_without_conversions(
    archive: tuple[list[Path], MultiOracle],
) -> None:
    files, oracle = archive
    goals = (*GOALS, "Never sent")
    goal_oracle = MultiOracle(
        [e for v in oracle.visits for e in v.events + v.engagement], TZ, goals
    )
    prop = parse.parse_property("event:goal")
    rows, _ = engine(files, goals).breakdown(query("visit:source!=Google", "visitors,events"), prop)
    want = goal_oracle.answer(FIRST, LAST, conds("visit:source!=Google"), "event:goal")
    assert {r["goal"]: (r["visitors"], r["events"]) for r in rows} == {
        g: (want.get(g, {}).get("visitors", 0), want.get(g, {}).get("events", 0)) for g in goals
    }
    assert want["Visit /it's"]["events"] > 0


def test_random_filter_combinations_equal_the_oracle(
    archive: tuple[list[Path], MultiOracle],
) -> None:
    files, oracle = archive
    rnd = random.Random(18)
    choices = {
        "visit:source": ["Google", "Twitter", "news 'daily'", "50%_off", "G*", "*o*"],
        "visit:country": ["DE", "US", "FR", "*"],
        "visit:browser": ["Chrome", "Firefox", "Safari"],
        "visit:entry_page": ["/", "/blog*", "/it's"],
        "event:page": ["/", "/blog", "/blog*", "/100%", "/blog_x", "/a\\b", "/ü/ñ", "*%*"],
        "event:hostname": ["archive.example", "*.archive.example"],
    }
    mismatches = []
    for _ in range(40):
        picked = rnd.sample(sorted(choices), rnd.choice((2, 3)))
        parts = []
        for name in picked:
            values = rnd.sample(choices[name], rnd.choice((1, 2)))
            parts.append(f"{name}{rnd.choice(('==', '!='))}{'|'.join(values)}")
        filters = ";".join(parts)
        metrics = "visitors,visits,pageviews,events,bounce_rate,visit_duration"
        got = engine(files).aggregate(query(filters, metrics))
        want = expect(oracle.answer(FIRST, LAST, conds(filters)).get("", {}), metrics)
        if {m: v["value"] for m, v in got.items()} != want:
            mismatches.append(filters)
    assert mismatches == []


def test_events_in_several_files_are_counted_once(tmp_path: Path) -> None:
    events = random_events(5, count=200)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    single = write_with_duplicates(events, tmp_path / "a", seed=1, files=1)
    many = write_with_duplicates(events, tmp_path / "b", seed=2, files=5)
    q = query("", "visitors,visits,pageviews,events,bounce_rate,visit_duration")
    assert engine(many).aggregate(q) == engine(single).aggregate(q)
    assert engine(many + single).aggregate(q) == engine(single).aggregate(q)


def one_file_a_day(events: list[RawEvent], directory: Path) -> list[Path]:
    """Each UTC day's events in a file of its own, as compaction leaves a day: no file shares
    an instant with another, so the engine reads them in row order without event ids."""
    days: dict[int, list[RawEvent]] = {}
    for event in events:
        days.setdefault(event.ts // 86_400_000, []).append(event)
    paths = []
    for day, part in sorted(days.items()):
        path = directory / f"compact-{day}.parquet"
        write_events(part, path)
        paths.append(path)
    return paths


@pytest.mark.parametrize("layout", ["overlapping parts", "one file a day"])
def test_events_at_the_same_instant_are_ordered_as_the_oracle_orders_them(
    tmp_path: Path, layout: str
) -> None:
    """Timestamps cut to whole 10 minutes: a visitor's events tie (counted events with other
    sources, engagement events beside a visit's first event), in parts that overlap (copies
    among them) or in one file a day. The first event of a visit is the first by (ts, event
    id), an engagement event at a counted event's instant follows it, copies count once."""
    rnd = random.Random(7)
    events = [
        replace(
            e,
            ts=e.ts // 600_000 * 600_000,
            event_id=f"x{rnd.randrange(10**6):06d}-{i}",
            previous_visitor_id=None,  # owners are visitor ids: the files' own order
        )
        for i, e in enumerate(random_events(9, count=500))
    ]
    # and one visit whose first pageview shares its instant with an engagement event of a
    # smaller id: the engagement event is that visit's, not the visit before's
    t = int(datetime(2026, 10, 28, 12, 0, tzinfo=UTC).timestamp() * 1000)
    base = replace(events[0], visitor_id="tie", previous_visitor_id=None, page="/tie")
    events += [
        replace(base, event_id="z1", ts=t, name="pageview", source="Twitter"),
        replace(base, event_id="a0", ts=t + 2_700_000, name="engagement", scroll_depth=80),
        replace(base, event_id="z2", ts=t + 2_700_000, name="pageview", source="Google"),
    ]
    if layout == "one file a day":
        files = one_file_a_day(events, tmp_path)
        assert set(engine(files)._file_facts()[2].ordered) == {str(f) for f in files}
    else:
        files = write_with_duplicates(events, tmp_path, seed=4, files=5)
        assert not engine(files)._file_facts()[2].ordered
    oracle = MultiOracle(events, TZ)
    metrics = "visitors,visits,pageviews,events,bounce_rate,visit_duration"
    for prop, filters in (
        ("visit:source", "visit:country!=FR"),
        ("visit:entry_page", "visit:source==Google|Twitter"),
        ("visit:exit_page", ""),
        ("event:page", "visit:source==Google"),
    ):
        extra = ",time_on_page,scroll_depth" if prop == "event:page" else ""
        parsed = parse.parse_property(prop)
        rows, _ = engine(files).breakdown(query(filters, metrics + extra), parsed, limit=1000)
        want = {
            value: expect(cell, metrics + extra)
            for value, cell in oracle.answer(FIRST, LAST, conds(filters), prop).items()
        }
        got = {str(r[parsed.key]): {m: r[m] for m in (metrics + extra).split(",")} for r in rows}
        assert got == want, f"{prop} {filters}"


def test_a_file_is_read_without_event_ids_only_when_it_shares_no_instant_with_another() -> None:
    spans = {
        "a": (0, 10),
        "b": (10, 20),
        "c": (21, 30),
        "d": (40, 50),
        "e": (35, 60),
        "f": (70, 70),
    }
    assert _alone(spans) == {"c", "f"}  # a, b meet at 10; e holds d


def test_a_zone_with_one_offset_over_the_range_counts_local_days(tmp_path: Path) -> None:
    """Kolkata has no DST: its offset (+5:30) is one number, which the statement leaves out of
    the sort and adds back; events still land on their local day and half-hour-shifted hour."""
    tz = "Asia/Kolkata"
    events = random_events(11, count=400, tz=tz)
    files = write_with_duplicates(events, tmp_path, seed=5)
    oracle = MultiOracle(events, tz)
    site = Site(SITE, tz=tz)
    filters, metrics = "visit:source!=Twitter", "visitors,pageviews,visits,bounce_rate"
    q = parse.Query(
        site, parse.DateRange(FIRST, LAST), parse.parse_filters(filters), tuple(metrics.split(","))
    )
    points = ArchiveEngine(site, files).timeseries(q, "day")
    for point in points:
        day = date.fromisoformat(str(point["date"]))
        cell = oracle.answer(day, day, conds(filters), units="day").get("", {})
        assert {m: point[m] for m in metrics.split(",")} == expect(cell, metrics), day
    assert sum(int(p["pageviews"]) for p in points) > 0
    day = date(2026, 10, 26)
    q = parse.Query(
        site, parse.DateRange(day, day), parse.parse_filters(filters), tuple(metrics.split(","))
    )
    hours = ArchiveEngine(site, files).timeseries(q, "hour")
    assert [p["date"] for p in hours] == [
        h.strftime("%Y-%m-%d %H:00:00") for h in local_hours(day, tz)
    ]
    for point, hour in zip(hours, local_hours(day, tz), strict=True):
        only = hour.astimezone(UTC).isoformat()
        cell = oracle.answer(day, day, conds(filters), units="hour", only=only).get("", {})
        assert {m: point[m] for m in metrics.split(",")} == expect(cell, metrics), only
    assert sum(int(p["pageviews"]) for p in hours) > 0
