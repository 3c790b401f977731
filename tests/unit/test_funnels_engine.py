"""Funnels and journeys over archive files against a plain-Python recount from the raw events
(tests/funnel_oracle.py): visits that skip, repeat or cross midnight in a non-UTC zone, ties at
one instant, events stored under yesterday's visitor id, events in two files, filters, whole
months; and hand-made visits whose numbers are written out."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from archive.parquet import write_events
from core.events import RawEvent
from core.funnels import Funnel, validate_steps
from core.sites import Site
from query_api import parse
from query_api.errors import BadRequest
from query_api.funnels import PathEngine, funnel_result
from tests import funnel_oracle
from tests.unit.archive_traffic import random_events, write_with_duplicates

SITE = "funnels.example"
TZ = "Europe/Berlin"
PAGES = ("/", "/pricing", "/blog", "/blog/a", "/signup", "/docs", "/100%_x")
NAMES = ("Signup", "Download")
START = datetime(2026, 10, 24, 18, 0, tzinfo=UTC)  # Berlin's DST night, then a month end
FIRST, LAST = date(2026, 10, 25), date(2026, 11, 2)


def traffic(seed: int, visitors: int = 80) -> list[RawEvent]:
    """Visits of 1 to 9 events over a few pages: repeats, steps out of order, ties at one
    instant, gaps just under and over 30 minutes, visits over midnight, and after a UTC
    midnight some events stored under a new id naming yesterday's."""
    rnd = random.Random(seed)
    events: list[RawEvent] = []
    start = int(START.timestamp() * 1000)
    for v in range(visitors):
        at = start + rnd.randrange(0, 9 * 86_400_000)
        country = rnd.choice(("DE", "US", ""))
        for _ in range(rnd.randrange(1, 5)):
            page = rnd.randrange(len(PAGES))
            for _ in range(rnd.randrange(1, 12)):
                at += rnd.choice((0, 1000, 20_000, 300_000, 1_799_000, 1_801_000))
                kind = rnd.choices(("pageview", "custom", "engagement"), (6, 3, 1))[0]
                # mostly on along PAGES (the funnels' order), now and then anywhere
                page = (page + 1) % len(PAGES) if rnd.random() < 0.6 else rnd.randrange(7)
                name = {"pageview": "pageview", "engagement": "engagement"}.get(
                    kind, rnd.choice(NAMES)
                )
                day = datetime.fromtimestamp(at / 1000, UTC).strftime("%m%d")
                heir = day != "1024" and rnd.random() < 0.2
                events.append(
                    RawEvent(
                        event_id=f"e{seed}-{len(events):05d}",
                        site=SITE,
                        ts=at,
                        name=name,
                        visitor_id=f"v{v}-{day}" if heir else f"v{v}",
                        previous_visitor_id=f"v{v}" if heir else None,
                        tz=TZ,
                        hostname=rnd.choice((SITE, "shop." + SITE)),
                        page=PAGES[page],
                        source=rnd.choice(("Google", "Direct / None")),
                        country=country,
                        props={"plan": rnd.choice(("free", "pro"))} if kind == "custom" else {},
                    )
                )
            at += rnd.randrange(1_900_000, 40 * 3_600_000)
    return events


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[RawEvent], list[Path]]:
    events = traffic(3)
    files = write_with_duplicates(events, tmp_path_factory.mktemp("funnels"), seed=3)
    return events, files


def site() -> Site:
    return Site(SITE, tz=TZ)


def query(filters: str = "", first: date = FIRST, last: date = LAST) -> parse.Query:
    return parse.Query(site(), parse.DateRange(first, last), parse.parse_filters(filters))


def funnel(*steps: str) -> Funnel:
    return Funnel("0" * 12, SITE, "test", validate_steps(list(steps)))


FUNNELS = (
    ("Visit /", "Visit /pricing", "Signup"),
    ("Visit /pricing", "Visit /blog*", "Visit /*s*", "Signup"),
    ("Visit /", "Visit /*", "Visit /pricing"),
    ("Signup", "Visit /*", "Download", "Visit /"),
    ("Visit /100%_x", "Visit /*"),
)
FILTERS = (
    "",
    "visit:country==DE",
    "visit:country!=DE;visit:source==Google",
    "visit:entry_page==/blog*",
    "event:props:plan!=pro",
    "event:hostname==funnels.example;visit:exit_page!=/",
)
SPANS = ((FIRST, LAST), (date(2026, 10, 1), date(2026, 10, 31)), (LAST, LAST))


@pytest.mark.parametrize("steps", FUNNELS)
@pytest.mark.parametrize("filters", FILTERS)
def test_funnel_visitors_equal_the_recount(
    world: tuple[list[RawEvent], list[Path]], steps: tuple[str, ...], filters: str
) -> None:
    events, files = world
    entered = []
    for first, last in SPANS:
        got = PathEngine(site(), files).funnel(funnel(*steps), query(filters, first, last))
        want = funnel_oracle.funnel_visitors(
            events, TZ, first, last, steps, parse.parse_filters(filters)
        )
        assert [s.visitors for s in got.steps] == want, (first, last)
        entered.append(want[0])
    assert entered[0], "the traffic should enter the funnel"


def test_the_traffic_reaches_the_last_step_of_every_funnel(
    world: tuple[list[RawEvent], list[Path]],
) -> None:
    events, _ = world
    assert all(funnel_oracle.funnel_visitors(events, TZ, FIRST, LAST, f)[-1] for f in FUNNELS)


@pytest.mark.parametrize("from_entry", [True, False])
@pytest.mark.parametrize("steps", [2, 3, 5])
@pytest.mark.parametrize("filters", ["", "visit:country==DE", "event:name==Signup"])
def test_journeys_equal_the_recount(
    world: tuple[list[RawEvent], list[Path]], from_entry: bool, steps: int, filters: str
) -> None:
    events, files = world
    for page in ("/", "/blog*", "/100%_x"):
        got = PathEngine(site(), files).journeys(
            query(filters), page, from_entry=from_entry, steps=steps, limit=1000
        )
        want = funnel_oracle.journeys(
            events, TZ, FIRST, LAST, page, from_entry, steps, parse.parse_filters(filters)
        )
        assert {j.path: (j.visitors, j.visits) for j in got} == want
        assert [j.path for j in got] == sorted(want, key=lambda p: (-want[p][0], p))
    assert want


def test_journeys_keep_the_most_visited_paths_up_to_the_limit(
    world: tuple[list[RawEvent], list[Path]],
) -> None:
    _, files = world
    engine = PathEngine(site(), files)
    every = engine.journeys(query(), "/", from_entry=True, steps=3, limit=1000)
    assert len(every) > 3
    assert engine.journeys(query(), "/", from_entry=True, steps=3, limit=3) == every[:3]


def test_odd_traffic_with_quoting_and_wildcard_characters_equals_the_recount(
    tmp_path: Path,
) -> None:
    events = random_events(7, count=900, visitors=6)
    files = write_with_duplicates(events, tmp_path, seed=7)
    steps = ("Visit /blog*", "Visit /100%", "Signup", "Visit /it's")
    got = PathEngine(site(), files).funnel(funnel(*steps), query())
    assert [s.visitors for s in got.steps] == funnel_oracle.funnel_visitors(
        events, TZ, FIRST, LAST, steps
    )
    journeys = PathEngine(site(), files).journeys(
        query(), "/a\\b", from_entry=False, steps=4, limit=1000
    )
    want = funnel_oracle.journeys(events, TZ, FIRST, LAST, "/a\\b", False, 4)
    assert {j.path: (j.visitors, j.visits) for j in journeys} == want and want


# ---- hand-made visits ------------------------------------------------------------------------

T0 = int(datetime(2026, 11, 10, 12, 0, tzinfo=UTC).timestamp() * 1000)
MIN = 60_000


def pv(n: int, visitor: str, minute: float, page: str) -> RawEvent:
    return RawEvent(
        f"h{n:03d}", SITE, T0 + int(minute * MIN), "pageview", visitor, tz=TZ, page=page
    )


def ev(n: int, visitor: str, minute: float, name: str) -> RawEvent:
    return RawEvent(f"h{n:03d}", SITE, T0 + int(minute * MIN), name, visitor, tz=TZ)


HAND_MADE = [
    # a: all three steps, the first one twice
    pv(1, "a", 0, "/"), pv(2, "a", 1, "/"), pv(3, "a", 2, "/pricing"), ev(4, "a", 3, "Signup"),
    # b: skips /pricing: stops at step 1, though it signs up
    pv(5, "b", 0, "/"), ev(6, "b", 1, "Signup"), pv(7, "b", 2, "/docs"),
    # c: steps 2 and 3 before step 1: only step 1
    pv(8, "c", 0, "/pricing"), ev(9, "c", 1, "Signup"), pv(10, "c", 2, "/"),
    # d: step 2 in a later visit (31 minutes on): step 1 only
    pv(11, "d", 0, "/"), pv(12, "d", 31, "/pricing"), ev(13, "d", 32, "Signup"),
    # e: 29 minutes apart is one visit: all three
    pv(14, "e", 0, "/"), pv(15, "e", 29, "/pricing"), ev(16, "e", 58, "Signup"),
]  # fmt: skip


def test_hand_made_visits_skip_repeat_and_split_as_written(tmp_path: Path) -> None:
    path = tmp_path / "part.parquet"
    write_events(HAND_MADE, path)
    day = date(2026, 11, 10)
    got = PathEngine(site(), [path]).funnel(
        funnel("Visit /", "Visit /pricing", "Signup"), query("", day, day)
    )
    assert [
        (s.visitors, s.conversion_rate, s.conversion_rate_step, s.dropoff, s.dropoff_percentage)
        for s in got.steps
    ] == [(5, 100.0, 100.0, 0, 0.0), (2, 40.0, 40.0, 3, 60.0), (2, 40.0, 100.0, 0, 0.0)]
    assert (got.entering_visitors, got.converted_visitors, got.conversion_rate) == (5, 2, 40.0)
    entries = PathEngine(site(), [path]).journeys(
        query("", day, day), "/", from_entry=True, steps=3, limit=10
    )
    # a ("/" twice in a row is one page) and e; b (its custom event is no page); c enters
    # elsewhere, and d's first visit is one page
    assert [(j.path, j.visitors) for j in entries] == [(("/", "/pricing"), 2), (("/", "/docs"), 1)]


def test_a_visit_over_local_midnight_counts_on_the_day_it_starts(tmp_path: Path) -> None:
    # 23:50 and 00:10 Berlin time (UTC+1 in November): one visit, started on the 10th
    late = int(datetime(2026, 11, 10, 22, 50, tzinfo=UTC).timestamp() * 1000)
    events = [
        RawEvent("m1", SITE, late, "pageview", "x", tz=TZ, page="/"),
        RawEvent("m2", SITE, late + 20 * MIN, "pageview", "x", tz=TZ, page="/pricing"),
    ]
    path = tmp_path / "part.parquet"
    write_events(events, path)
    engine = PathEngine(site(), [path])
    steps = funnel("Visit /", "Visit /pricing")
    tenth, eleventh = date(2026, 11, 10), date(2026, 11, 11)
    assert [s.visitors for s in engine.funnel(steps, query("", tenth, tenth)).steps] == [1, 1]
    assert [s.visitors for s in engine.funnel(steps, query("", eleventh, eleventh)).steps] == [
        0,
        0,
    ]


def test_no_files_is_an_empty_funnel() -> None:
    got = PathEngine(site(), []).funnel(funnel("Visit /", "Signup"), query())
    assert [(s.visitors, s.conversion_rate, s.dropoff) for s in got.steps] == [(0, 0.0, 0)] * 2


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ("event:page==/blog", "filtered by pages"),
        ("visit:country==DE;event:goal==Signup", "filtered by goals"),
    ],
)
def test_page_and_goal_filters_are_refused_as_plausible_refuses_them(
    filters: str, message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        PathEngine(site(), []).funnel(funnel("Visit /", "Signup"), query(filters))


def test_step_figures_follow_from_the_best_step_of_each_visitor() -> None:
    steps = validate_steps(["Visit /", "Visit /a", "Signup"])
    result = funnel_result(steps, {1: 3, 2: 1, 3: 1})
    assert [(s.visitors, s.dropoff, s.conversion_rate_step) for s in result.steps] == [
        (5, 0, 100.0),
        (2, 3, 40.0),
        (1, 1, 50.0),
    ]
