"""The v2 archive engine (query_api/v2/engine.py) against the v2 oracle (tests/v2_oracle.py) on
raw events made directly: crossed dimensions, filter trees with every operator both ways of
case, has_done/has_not_done, time dimensions over Berlin's DST night and a month end, visits
over midnight, previous visitor ids, copies across files, ordering, pagination, total_rows; a
pathological regex in bounded time, an invalid one a 400; and v1's answers on v1's questions."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest

from archive.parquet import write_events
from core.events import RawEvent
from core.sites import Site
from query_api import parse
from query_api.archive_engine import ArchiveEngine
from query_api.errors import BadRequest
from query_api.v2.engine import V2ArchiveEngine
from query_api.v2.model import (
    Behaviour,
    Condition,
    FilterTree,
    Junction,
    Negation,
    Result,
    V2Query,
)
from tests.unit.archive_traffic import SITE, random_events, write_with_duplicates
from tests.v2_oracle import V2Oracle, day_range

TZ = "Europe/Berlin"
FIRST, LAST = date(2026, 10, 25), date(2026, 11, 2)  # the DST night, then a month end
ALL = (
    "visitors",
    "visits",
    "pageviews",
    "events",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "time_on_page",
    "scroll_depth",
    "percentage",
)
GOALS = ("Signup", "Visit /pricing")
World = tuple[list[Path], list[RawEvent]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    events = random_events(3, count=900, visitors=20)
    files = write_with_duplicates(events, tmp_path_factory.mktemp("v2"), seed=3)
    yield files, events


def site(goals: tuple[str, ...] = ()) -> Site:
    return Site(SITE, tz=TZ, goals=goals)


def v2(
    metrics: tuple[str, ...] = ALL,
    dimensions: tuple[str, ...] = (),
    filters: tuple[FilterTree, ...] = (),
    first: date = FIRST,
    last: date = LAST,
    goals: tuple[str, ...] = (),
    **more: object,
) -> V2Query:
    start, end = day_range(site(goals), first, last)
    grain = next((d.split(":")[1] for d in dimensions if d.startswith("time:")), "")
    return V2Query(
        site(goals),
        metrics,
        first,
        last,
        start,
        end,
        dimensions=dimensions,
        filters=filters,
        time_dimension=grain,
        **more,  # type: ignore[arg-type]
    )


def both(files: list[Path], events: list[RawEvent], q: V2Query) -> tuple[Result, Result]:
    got = V2ArchiveEngine(q.site, files).run(q)
    want = V2Oracle(events, q.site).answer(q)
    return got, want


def c(op: str, dim: str, *values: str, cs: bool = True) -> Condition:
    return Condition(op, dim, values, cs)


CASES: list[tuple[str, tuple[str, ...], tuple[FilterTree, ...]]] = [
    ("nothing", (), ()),
    ("source by page", ("visit:source", "event:page"), ()),
    (
        "country x browser",
        ("visit:country", "visit:browser"),
        (c("is_not", "visit:device", "Mobile"),),
    ),
    (
        "page x hostname, or",
        ("event:page", "event:hostname"),
        (Junction("or", (c("is", "visit:source", "Google"), c("contains", "event:page", "blog"))),),
    ),
    (
        "nested not",
        ("visit:source",),
        (
            Negation(
                Junction("and", (c("is", "visit:country", "DE"), c("matches", "event:page", "^/b")))
            ),
        ),
    ),
    ("case-insensitive", ("event:page",), (c("contains", "visit:source", "GOO", cs=False),)),
    ("matches i", ("visit:entry_page",), (c("matches", "event:page", "^/BLOG", cs=False),)),
    ("matches_not", ("visit:exit_page",), (c("matches_not", "event:page", "log"),)),
    ("contains_not", ("visit:country",), (c("contains_not", "visit:source", "oo", "tw"),)),
    ("is_not prop", ("event:props:plan",), (c("is_not", "event:props:plan", "pro"),)),
    ("prop none", ("visit:browser",), (c("is", "event:props:plan", "(none)", "free"),)),
    ("has_done", ("visit:source",), (Behaviour(True, c("is", "event:name", "Signup")),)),
    ("has_not_done", ("event:page",), (Behaviour(False, c("contains", "event:page", "pricing")),)),
    ("name", ("event:name", "visit:country"), (c("is_not", "event:name", "Download", cs=False),)),
    ("hostname is_not", ("event:hostname",), (c("is_not", "event:hostname", "archive.example"),)),
]


@pytest.mark.parametrize(("name", "dims", "filters"), CASES, ids=[c[0] for c in CASES])
def test_v2_answers_equal_the_oracle(
    world: World,
    name: str,
    dims: tuple[str, ...],
    filters: tuple[FilterTree, ...],
) -> None:
    files, events = world
    got, want = both(files, events, v2(dimensions=dims, filters=filters))
    assert got == want
    assert want.rows, "the question should have rows"


@pytest.mark.parametrize(
    ("grain", "dims", "first", "last"),
    [
        ("hour", ("visit:source",), FIRST, FIRST),  # Berlin's 25-hour night
        ("day", ("event:page",), FIRST, LAST),
        ("week", (), date(2026, 10, 28), LAST),  # the first week starts on the range's Wednesday
        ("month", ("visit:country",), date(2026, 10, 1), date(2026, 11, 30)),  # whole months
        ("month", (), date(2026, 10, 20), date(2026, 11, 3)),  # parts of two months: days
    ],
)
def test_time_dimensions_equal_the_oracle(
    world: World, grain: str, dims: tuple[str, ...], first: date, last: date
) -> None:
    files, events = world
    filters = (c("is_not", "visit:country", "FR"),)
    q = v2(dimensions=(f"time:{grain}", *dims), filters=filters, first=first, last=last)
    got, want = both(files, events, q)
    assert got == want
    labels = {r.dimensions[0] for r in want.rows}
    if grain == "hour":
        assert len(labels) >= 8
    if grain == "week":
        assert min(labels) == "2026-10-28" and "2026-11-02" in labels
    if grain == "month":
        assert labels <= {"2026-10-01", "2026-11-01"} and len(labels) == 2


def test_a_24_hour_range_counts_the_instants_across_two_local_days(
    world: World,
) -> None:
    files, events = world
    start = day_range(site(), date(2026, 10, 27), date(2026, 10, 27))[0] + 13 * 3_600_000
    q = V2Query(
        site(), ALL, date(2026, 10, 27), date(2026, 10, 28), start, start + 86_400_000,
        dimensions=("time:hour",), time_dimension="hour",
    )  # fmt: skip
    got, want = both(files, events, q)
    assert got == want and len(want.rows) > 5


def test_order_by_and_pages_are_the_oracle_s_and_stable(world: World) -> None:
    files, events = world
    order = (("visits", "asc"), ("visit:source", "desc"))
    whole = v2(("visitors", "visits"), ("visit:source", "event:page"), order_by=order)
    every = V2ArchiveEngine(whole.site, files).run(whole)
    assert every == V2Oracle(events, whole.site).answer(whole)
    assert every.total_rows == len(every.rows) > 12
    pages: list[object] = []
    for offset in range(0, every.total_rows, 5):
        q = v2(("visitors", "visits"), ("visit:source", "event:page"), order_by=order,
               limit=5, offset=offset)  # fmt: skip
        page = V2ArchiveEngine(q.site, files).run(q)
        assert page.total_rows == every.total_rows
        pages += page.rows
    assert tuple(pages) == every.rows
    visits = [r.metrics[1] for r in every.rows]
    assert visits == sorted(visits)  # type: ignore[type-var]


def test_goals_and_conversion_rates_equal_the_oracle(world: World) -> None:
    files, events = world
    metrics = ("visitors", "events", "conversion_rate", "group_conversion_rate")
    for dims, filters in (
        (("event:goal",), ()),
        (("event:goal", "visit:country"), (c("is", "visit:browser", "Chrome", "Firefox"),)),
        (("visit:source",), (c("is", "event:goal", "Signup"),)),
        (("time:day",), (c("is", "event:goal", "Visit /pricing"), c("is", "event:props:plan", "pro", "free"))),
    ):  # fmt: skip
        q = v2(metrics, dims, filters, goals=GOALS)
        got, want = both(files, events, q)
        assert got == want, (dims, filters)
        rates = [r.metrics[2] for r in want.rows]
        assert any(0 < float(x or 0) < 100 for x in rates), (dims, rates)


def test_a_pathological_pattern_returns_within_seconds(tmp_path: Path) -> None:
    """RE2 semantics: `(a*)*b` and `(x+x+)+y` over long runs of a's and x's, which a
    backtracking engine takes minutes (or forever) over, are linear here."""
    from dataclasses import replace as copy

    base = random_events(5, count=300)
    events = [
        copy(e, page="/" + "a" * 5000 if i % 2 else "/" + "x" * 5000) for i, e in enumerate(base)
    ]
    files = write_with_duplicates(events, tmp_path, seed=1)
    q = v2(("visitors", "pageviews"), ("event:page",),
           (Junction("or", (c("matches", "event:page", "(a*)*b"), c("matches", "event:page", "(x+x+)+y"))),))  # fmt: skip
    started = time.monotonic()
    result = V2ArchiveEngine(q.site, files).run(q)
    assert time.monotonic() - started < 5
    assert result.rows == ()
    negated = v2(("pageviews",), (), (c("matches_not", "event:page", "(a*)*b"),))
    assert V2ArchiveEngine(q.site, files).run(negated).rows[0].metrics[0] > 0  # type: ignore[operator]


@pytest.mark.parametrize("pattern", ["(unclosed", "a{2,1}", "*x", "(?<name"])
def test_an_invalid_pattern_is_a_bad_request(world: World, pattern: str) -> None:
    files, _ = world
    q = v2(("visitors",), (), (Negation(c("matches", "event:page", "^/", pattern)),))
    with pytest.raises(BadRequest, match="Invalid regular expression"):
        V2ArchiveEngine(q.site, files).run(q)


def test_nested_behaviours_and_visit_conditions_inside_them_are_bad_requests(
    world: World,
) -> None:
    files, _ = world
    for tree in (
        Behaviour(True, Behaviour(True, c("is", "event:page", "/"))),
        Behaviour(False, c("is", "visit:source", "Google")),
    ):
        with pytest.raises(BadRequest, match="Behavioral filters"):
            V2ArchiveEngine(site(), files).run(v2(("visitors",), (), (tree,)))


V1_SHAPED = [
    ("visit:source==Google;visit:country==DE", "event:page"),
    ("visit:country!=FR;event:page==/blog", "visit:source"),
    ("event:hostname==archive.example;visit:browser!=Safari", "visit:entry_page"),
    ("visit:source==Google|Twitter", "event:hostname"),
    ("event:page!=/", "visit:exit_page"),
]


@pytest.mark.parametrize(("filters", "prop"), V1_SHAPED)
def test_v2_equals_the_v1_archive_engine_on_v1_questions(
    world: World, filters: str, prop: str
) -> None:
    """One dimension, an AND of is/is_not: both engines give the same rows."""
    files, _ = world
    metrics = "visitors,visits,pageviews,bounce_rate,visit_duration,views_per_visit"
    parsed_filters = parse.parse_filters(filters)
    v1_query = parse.Query(site(), parse.DateRange(FIRST, LAST), parsed_filters,
                           tuple(metrics.split(",")))  # fmt: skip
    prop_ = parse.parse_property(prop)
    rows, _ = ArchiveEngine(site(), files).breakdown(v1_query, prop_, limit=1000)
    tree = tuple(
        Condition("is_not" if f.negated else "is", f.prop.name, f.values) for f in parsed_filters
    )
    got = V2ArchiveEngine(site(), files).run(v2(tuple(metrics.split(",")), (prop,), tree))
    want = {str(r[prop_.key]): tuple(r[m] for m in metrics.split(",")) for r in rows}
    assert {r.dimensions[0]: r.metrics for r in got.rows} == want and want
    aggregate = ArchiveEngine(site(), files).aggregate(v1_query)
    total = V2ArchiveEngine(site(), files).run(v2(tuple(metrics.split(",")), (), tree))
    assert total.rows[0].metrics == tuple(aggregate[m]["value"] for m in metrics.split(","))


def random_tree(rnd: random.Random, depth: int = 0) -> FilterTree:
    dims = {
        "visit:source": ["Google", "goo", "news 'daily'", "50%_off", "Twitter"],
        "visit:country": ["DE", "us", "FR"],
        "visit:entry_page": ["/", "/blog", "/it's"],
        "event:page": ["/blog", "/BLOG", "/", "%", "/ü/ñ", "a\\b"],
        "event:hostname": ["archive.example", "www2"],
        "event:name": ["Signup", "download"],
        "event:props:plan": ["pro", "(none)", "it's", ""],
    }
    kind = rnd.random()
    if depth < 2 and kind < 0.25:
        return Junction(
            rnd.choice(("and", "or")),
            tuple(random_tree(rnd, depth + 1) for _ in range(rnd.randint(1, 3))),
        )
    if depth < 2 and kind < 0.32:
        return Negation(random_tree(rnd, depth + 1))
    if depth == 0 and kind < 0.4:
        event = rnd.choice([d for d in dims if d.startswith("event:")])
        return Behaviour(
            rnd.random() < 0.6, c(rnd.choice(("is", "contains")), event, rnd.choice(dims[event]))
        )
    dim = rnd.choice(sorted(dims))
    op = rnd.choice(("is", "is_not", "contains", "contains_not", "matches", "matches_not"))
    values = rnd.sample(dims[dim], rnd.randint(1, 2))
    if op.startswith("matches"):
        values = [re_escape_some(rnd, v) for v in values]
    return c(op, dim, *values, cs=rnd.random() < 0.6)


def re_escape_some(rnd: random.Random, value: str) -> str:
    import re

    pattern = re.escape(value)
    return rnd.choice((pattern, "^" + pattern, pattern + "$", pattern[:2] + ".*"))


def test_random_questions_equal_the_oracle(world: World) -> None:
    """A seeded property test: random dimensions (crossed, with a time dimension now and
    then), random filter trees, random orders and pages."""
    files, events = world
    rnd = random.Random(19)
    oracle = V2Oracle(events, site(GOALS))
    engine = V2ArchiveEngine(site(GOALS), files)
    all_dims = ["visit:source", "visit:country", "visit:entry_page", "visit:exit_page",
                "event:page", "event:hostname", "event:name", "event:goal", "event:props:plan"]  # fmt: skip
    problems = []
    for _ in range(40):
        dims = tuple(rnd.sample(all_dims, rnd.randint(0, 2)))
        if rnd.random() < 0.3:
            dims = (f"time:{rnd.choice(('hour', 'day', 'week', 'month'))}", *dims)
        filters = tuple(random_tree(rnd) for _ in range(rnd.randint(0, 2)))
        metrics = tuple(rnd.sample(ALL, 4))
        order = ((rnd.choice(metrics), rnd.choice(("asc", "desc"))),)
        first = date(2026, 10, rnd.randint(24, 31))
        last = first if "time:hour" in dims else date(2026, 11, rnd.randint(1, 3))
        q = v2(metrics, dims, filters, first, last, goals=GOALS, order_by=order,
               limit=rnd.randint(1, 30), offset=rnd.choice((0, 0, 3)))  # fmt: skip
        got, want = engine.run(q), oracle.answer(q)
        if got != want:
            problems.append(f"{q.dimensions} {q.filters} {q.metrics}: {got} != {want}")
    assert problems == []


def test_the_two_0200_hours_of_a_dst_night_are_one_row(tmp_path: Path) -> None:
    """Berlin, 2026-10-25: 02:00-03:00 happens twice (CEST, then CET). One label, one row; its
    visitors the sum of the two hours' (each hour is a unit), as the oracle counts."""
    from dataclasses import replace as copy

    base = random_events(1, count=1)[0]
    first = 1_792_886_400_000  # 2026-10-25 00:00 UTC = 02:00 CEST
    events = [
        copy(
            base, event_id=f"d{i}", ts=ts, name="pageview", visitor_id="v", previous_visitor_id=None
        )
        for i, ts in enumerate((first + 60_000, first + 3_600_000 + 60_000, first + 7_200_000))
    ]
    files = write_with_duplicates(events, tmp_path, seed=2)
    q = v2(("visitors", "pageviews", "visits"), ("time:hour",), first=FIRST, last=FIRST)
    got, want = both(files, events, q)
    assert got == want
    assert [(r.dimensions, r.metrics) for r in got.rows] == [
        (("2026-10-25 02:00:00",), (2, 2, 2)),
        (("2026-10-25 03:00:00",), (1, 1, 1)),
    ]


# ---- the shortcuts: a visit gate and visit-only trees, against the general path ----------------


@pytest.fixture(scope="module")
def layouts(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, World]:
    """The same kind of traffic stored three ways: copies in two files with previous visitor
    ids (ids numbered, attribution), copies in two files without them (stored visitor keys),
    and one file a local day without copies (files alone in time: row order, no event ids;
    visits over midnight span two files)."""
    from dataclasses import replace as copy
    from zoneinfo import ZoneInfo

    plain = [copy(e, previous_visitor_id=None) for e in random_events(7, count=900, visitors=20)]
    keyed = write_with_duplicates(plain, tmp_path_factory.mktemp("keyed"), seed=7)
    by_day: dict[str, list[RawEvent]] = {}
    zone = ZoneInfo(TZ)
    for e in plain:
        day = datetime.fromtimestamp(e.ts / 1000, zone).date().isoformat()
        by_day.setdefault(day, []).append(e)
    directory = tmp_path_factory.mktemp("days")
    days = []
    for day, part in sorted(by_day.items()):
        path = directory / f"{day}.parquet"
        write_events(part, path)
        days.append(path)
    return {"heirs": world, "keyed copies": (keyed, plain), "a file a day": (days, plain)}


GATED: list[tuple[str, tuple[str, ...], tuple[FilterTree, ...]]] = [
    ("two first-event filters", ("visit:device", "event:page"),
     (c("is", "visit:source", "Google"), c("is_not", "visit:country", "US"))),
    ("an or of visit values", ("visit:source",),
     (Junction("or", (c("is", "visit:source", "Twitter"), c("is", "visit:country", "DE"))),)),
    ("a not of visit values", ("event:name", "visit:browser"),
     (Negation(Junction("and", (c("is", "visit:browser", "Chrome"), c("is", "visit:device", "Mobile")))),)),
    ("case-insensitive pattern", ("visit:entry_page",),
     (c("matches", "visit:source", "^goo", cs=False),)),
    ("a gate and an or with an event value", ("visit:country", "event:page"),
     (c("contains", "visit:source", "oo"),
      Junction("or", (c("contains", "event:page", "blog"), c("is", "visit:country", "DE"))))),
    ("a gate and has_done", ("visit:source", "event:goal"),
     (Negation(c("is", "visit:country", "FR")), Behaviour(True, c("is", "event:name", "Signup")))),
    ("a gate and has_not_done", ("event:page",),
     (Behaviour(False, c("contains", "event:page", "pricing")), c("is", "visit:device", "Desktop"))),
    ("a gate and the entry page", ("visit:exit_page",),
     (c("is", "visit:entry_page", "/blog", "/"), c("is_not", "visit:source", "Google"))),
    ("an or of visit and event values: no gate", ("visit:source", "event:hostname"),
     (Junction("or", (c("is", "visit:source", "Google"), c("is", "event:page", "/pricing"))),)),
    ("a gate and a prop", ("event:props:plan",),
     (c("is", "visit:country", "DE", "US"), c("is", "event:props:plan", "(none)", "pro"))),
    ("the DST night by hour", ("time:hour", "visit:source"), (c("is_not", "visit:country", "FR"),)),
    ("days over the month end", ("time:day", "visit:device"),
     (Junction("or", (c("is", "visit:source", "Google"), c("is", "visit:browser", "Safari"))),)),
]  # fmt: skip


@pytest.mark.parametrize("layout", ["heirs", "keyed copies", "a file a day"])
@pytest.mark.parametrize(("name", "dims", "filters"), GATED, ids=[g[0] for g in GATED])
def test_the_shortcuts_equal_the_general_path_and_the_oracle(
    layouts: dict[str, World],
    layout: str,
    name: str,
    dims: tuple[str, ...],
    filters: tuple[FilterTree, ...],
) -> None:
    """Visit-only trees and the visit gate (the top-level filters a visit's first event
    decides, tested in the pass that numbers visits) give the general path's rows, which are
    the oracle's: with and without engagement events read (time on page, scroll depth)."""
    files, events = layouts[layout]
    first, last = (FIRST, FIRST) if "time:hour" in dims else (FIRST, LAST)
    for metrics in (ALL, ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration")):
        q = v2(metrics, dims, filters, first, last, goals=GOALS)
        fast = V2ArchiveEngine(q.site, files).run(q)
        general = V2ArchiveEngine(q.site, files, shortcuts=False).run(q)
        assert fast == general, (name, metrics)
        assert fast == V2Oracle(events, q.site).answer(q), (name, metrics)
        assert fast.rows, "the question should have rows"


UNNARROWED: list[tuple[tuple[str, ...], tuple[FilterTree, ...]]] = [
    (("visit:device", "event:page"), (c("is_not", "visit:source", "Google"),)),
    (("visit:source", "time:day"), (Junction("or", (c("is", "visit:country", "DE"), c("contains", "event:page", "blog"))),)),
    (("event:name", "visit:entry_page"), ()),
    (("time:hour",), (Negation(c("is", "event:hostname", "www2.archive.example")),)),
]  # fmt: skip


@pytest.mark.parametrize("layout", ["keyed copies", "a file a day"])
@pytest.mark.parametrize(("dims", "filters"), UNNARROWED)
def test_a_big_question_answered_in_parts_by_visitor_is_the_whole(
    layouts: dict[str, World],
    layout: str,
    dims: tuple[str, ...],
    filters: tuple[FilterTree, ...],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With nothing to narrow the visitors before the sort and more rows than DuckDB sorts in
    its memory, the question is answered in parts by visitor key; the parts add up to the
    oracle's rows (distinct visitors, visits over midnight, copies and rates included)."""
    from archive.parquet import memory_limit_mb
    from query_api.v2 import engine as v2_engine

    files, events = layouts[layout]
    first, last = (FIRST, FIRST) if "time:hour" in dims else (FIRST, LAST)
    rows = sum(1 for _ in events) * 2  # more than the files hold: about three parts
    monkeypatch.setattr(v2_engine, "ROWS_PER_SORT_MB", rows / 3 / memory_limit_mb())
    parts: list[int] = []
    counted = V2ArchiveEngine._buckets

    def spy(self: V2ArchiveEngine, statement: object) -> int:
        parts.append(counted(self, statement))  # type: ignore[arg-type]
        return parts[-1]

    monkeypatch.setattr(V2ArchiveEngine, "_buckets", spy)
    for metrics in (ALL, ("visitors", "visits", "pageviews", "bounce_rate")):
        q = v2(metrics, dims, filters, first, last, goals=GOALS)
        got = V2ArchiveEngine(q.site, files).run(q)
        assert got == V2Oracle(events, q.site).answer(q) and got.rows
    assert parts and min(parts) >= 2
