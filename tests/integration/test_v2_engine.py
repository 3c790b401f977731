"""The v2 archive engine on the stats-world traffic (real ingest and aggregator), archived as
the rollup tier writes it under a bisecting delivery schedule (events in two objects): every v2
form against the v2 oracle's recount from the stored raw events, with crossed dimensions,
nested filters, has_done, ordering and pages."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from core.events import RawEvent
from core.sites import Site
from query_api.v2.engine import V2ArchiveEngine
from query_api.v2.model import Behaviour, Condition, FilterTree, Junction, Negation, V2Query
from tests.faults import Schedule, stored_events
from tests.integration.stats_world import FIRST, LAST, SITE, TZ, World
from tests.integration.test_archive_answers import archive_under
from tests.v2_oracle import V2Oracle, day_range

GOALS = ("Signup", "Visit /pricing")
RECORD = Site(SITE, tz=TZ, goals=GOALS)
METRICS = (
    "visitors", "visits", "pageviews", "events", "views_per_visit", "bounce_rate",
    "visit_duration", "time_on_page", "scroll_depth", "percentage",
)  # fmt: skip


@pytest.fixture(scope="module")
def events(world: World) -> list[RawEvent]:
    return stored_events(world.pipeline.ddb, world.pipeline.names)


@pytest.fixture(scope="module")
def files(events: list[RawEvent], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    schedule = Schedule([(size, "bisect") for size in (7, 13, 40)] * 20, seed=2)
    return archive_under(schedule, events, tmp_path_factory.mktemp("v2-archive"))


def q(
    dims: tuple[str, ...],
    filters: tuple[FilterTree, ...],
    metrics: tuple[str, ...] = METRICS,
    first: date = FIRST,
    last: date = LAST,
    **more: object,
) -> V2Query:
    start, end = day_range(RECORD, first, last)
    grain = next((d.split(":")[1] for d in dims if d.startswith("time:")), "")
    return V2Query(
        RECORD, metrics, first, last, start, end, dimensions=dims, filters=filters,
        time_dimension=grain, **more,  # type: ignore[arg-type]
    )  # fmt: skip


def c(op: str, dim: str, *values: str, cs: bool = True) -> Condition:
    return Condition(op, dim, values, cs)


QUESTIONS: list[tuple[tuple[str, ...], tuple[FilterTree, ...]]] = [
    ((), ()),
    (("visit:source", "event:page"), ()),
    (("visit:browser", "visit:device"), (c("is_not", "visit:source", "Google"),)),
    (("event:page", "time:day"), (Junction("or", (c("contains", "event:page", "BLOG", cs=False), c("is", "visit:utm_source", "news"))),)),
    (("visit:entry_page",), (Negation(Junction("and", (c("matches", "event:page", "^/b"), c("is", "visit:browser", "Chrome")))),)),
    (("event:goal", "visit:source"), (c("matches_not", "visit:source", "(?i)^t"),)),
    (("visit:source",), (Behaviour(True, c("is", "event:name", "Signup")),)),
    (("event:page",), (Behaviour(False, c("is", "event:goal", "Signup")), c("is_not", "event:props:plan", "pro"))),
    (("time:week", "event:hostname"), (c("contains_not", "visit:referrer", "google"),)),
    (("time:month",), ()),
    (("time:hour", "visit:device"), ()),
]  # fmt: skip


@pytest.mark.parametrize(("dims", "filters"), QUESTIONS)
def test_v2_answers_equal_the_oracle_on_the_stats_world(
    events: list[RawEvent],
    files: list[Path],
    dims: tuple[str, ...],
    filters: tuple[FilterTree, ...],
) -> None:
    first, last = (date(2026, 11, 1), date(2026, 11, 1)) if "time:hour" in dims else (FIRST, LAST)
    if "time:month" in dims:
        first, last = date(2026, 10, 1), date(2026, 11, 30)
    question = q(dims, filters, first=first, last=last)
    got = V2ArchiveEngine(RECORD, files).run(question)
    assert got == V2Oracle(events, RECORD).answer(question)
    assert got.rows


def test_conversion_rates_on_the_stats_world(events: list[RawEvent], files: list[Path]) -> None:
    metrics = ("visitors", "events", "conversion_rate", "group_conversion_rate")
    for dims, filters in (
        (("event:goal",), ()),
        (("visit:source",), (c("is", "event:goal", "Signup"),)),
    ):
        question = q(dims, filters, metrics)
        got = V2ArchiveEngine(RECORD, files).run(question)
        assert got == V2Oracle(events, RECORD).answer(question) and got.rows


def test_pages_of_an_ordered_answer_add_up_to_the_whole(
    events: list[RawEvent], files: list[Path]
) -> None:
    order = (("pageviews", "desc"), ("event:page", "asc"))
    whole = V2ArchiveEngine(RECORD, files).run(
        q(("event:page", "visit:source"), (), order_by=order)
    )
    assert whole == V2Oracle(events, RECORD).answer(
        q(("event:page", "visit:source"), (), order_by=order)
    )
    pages: list[object] = []
    for offset in range(0, whole.total_rows, 7):
        page = V2ArchiveEngine(RECORD, files).run(
            q(("event:page", "visit:source"), (), order_by=order, limit=7, offset=offset)
        )
        assert page.total_rows == whole.total_rows
        pages += page.rows
    assert tuple(pages) == whole.rows and len(pages) > 7


GATED: list[tuple[tuple[str, ...], tuple[FilterTree, ...]]] = [
    (("visit:device", "event:page"), (c("is", "visit:source", "Google"), c("is_not", "visit:country", "US"))),
    (("visit:source", "time:day"), (Junction("or", (c("is", "visit:browser", "Chrome"), c("is", "visit:country", "DE"))),)),
    (("event:page",), (Negation(c("contains", "visit:source", "oo")), Behaviour(True, c("is", "event:name", "Signup")))),
    (("visit:entry_page", "event:goal"), (c("is_not", "visit:device", "Mobile"), Junction("or", (c("contains", "event:page", "blog"), c("is", "visit:source", "Google"))))),
]  # fmt: skip


@pytest.mark.parametrize(("dims", "filters"), GATED)
def test_the_shortcuts_equal_the_general_path_on_the_stats_world(
    events: list[RawEvent],
    files: list[Path],
    dims: tuple[str, ...],
    filters: tuple[FilterTree, ...],
) -> None:
    """Visit-only trees and the visit gate on traffic from the real pipeline, archived with
    copies in two objects: the general path's rows and the oracle's."""
    question = q(dims, filters)
    got = V2ArchiveEngine(RECORD, files).run(question)
    assert got == V2ArchiveEngine(RECORD, files, shortcuts=False).run(question)
    assert got == V2Oracle(events, RECORD).answer(question)
    assert got.rows
