"""Names archived before Plausible's (decision 0034) read as Plausible's on every archive path:
the events path, visits files written at compaction, and the fragments computed for a day
without one; as the stats oracle counts them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from archive.parquet import write_events
from archive.visits import sidecar_path, write_visits
from core.events import RawEvent
from core.sites import Site
from query_api import parse
from query_api.archive_engine import ArchiveEngine, Ask, Source, sql_for, units_of
from query_api.metrics import compute
from tests.stats_oracle import Cond, MultiOracle

SITE = "names.example"
FIRST, LAST = date(2026, 3, 9), date(2026, 3, 11)
# (browser, os) stored before the renaming, and after it
PROFILES = (
    (("Chrome Mobile", "Android"), ("Chrome", "Android")),
    (("Chrome Mobile iOS", "iOS"), ("Chrome", "iOS")),
    (("Chrome", "Linux"), ("Chrome", "GNU/Linux")),
    (("Mobile Safari", "iOS"), ("Safari", "iOS")),
    (("Firefox", "Mac OS X"), ("Firefox", "Mac")),
    (("Edge", "Windows"), ("Microsoft Edge", "Windows")),
)
METRICS = "visitors,visits,pageviews,bounce_rate"


def day_events(day: date, renamed: bool) -> list[RawEvent]:
    start = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    events = []
    for v, (old, new) in enumerate(PROFILES):
        browser, os = new if renamed else old
        for n, page in enumerate(("/", "/pricing")[: 1 + v % 2]):
            at = start + timedelta(minutes=7 * v + n)
            events.append(
                RawEvent(
                    event_id=f"{day.isoformat()}-{v}-{n}",
                    site=SITE,
                    ts=int(at.timestamp() * 1000),
                    name="pageview",
                    visitor_id=f"{v:016x}",
                    page=page,
                    browser=browser,
                    os=os,
                    device="Mobile",
                )
            )
    return events


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Path], MultiOracle]]:
    """Two days archived under the old names with their visits files, one under the new
    names without (its fragments computed in the statement)."""
    directory = tmp_path_factory.mktemp("names")
    files, everything = [], []
    for n in range(3):
        day = FIRST + timedelta(days=n)
        events = day_events(day, renamed=n == 2)
        path = directory / f"{day.isoformat()}.parquet"
        write_events(events, path)
        if n < 2:
            write_visits([path], day.isoformat(), sidecar_path(path))
        files.append(path)
        everything += events
    yield files, MultiOracle(everything, "UTC")


def query(filters: str) -> parse.Query:
    site = Site(SITE, tz="UTC")
    return parse.Query(
        site, parse.DateRange(FIRST, LAST), parse.parse_filters(filters), tuple(METRICS.split(","))
    )


def want(oracle: MultiOracle, prop: str, conds: tuple[Cond, ...] = ()) -> dict[str, dict]:
    key = prop.split(":")[1]
    rows = oracle.answer(FIRST, LAST, conds, prop)
    return {v: {key: v, **{m: compute(m, c) for m in METRICS.split(",")}} for v, c in rows.items()}


@pytest.mark.parametrize("visits", [True, False], ids=["visits-files", "events"])
@pytest.mark.parametrize(("prop", "names"), [("visit:browser", 4), ("visit:os", 5)])
def test_a_breakdown_has_one_row_per_plausible_name_on_every_archive_path(
    archive: tuple[list[Path], MultiOracle], visits: bool, prop: str, names: int
) -> None:
    files, oracle = archive
    engine = ArchiveEngine(Site(SITE, tz="UTC"), files, visits=visits)

    rows, _ = engine.breakdown(query(""), parse.parse_property(prop))

    assert engine.answered_by_visits is visits
    key = prop.split(":")[1]
    assert {r[key]: r for r in rows} == want(oracle, prop)
    assert len(rows) == names and "Chrome Mobile" not in {r[key] for r in rows}


@pytest.mark.parametrize("visits", [True, False], ids=["visits-files", "events"])
@pytest.mark.parametrize(
    "filters",
    [
        "visit:browser==Chrome",
        "visit:os==Mac|GNU/Linux",
        "visit:browser!=Chrome",
        "visit:browser==Chr*",
    ],
)
def test_a_filter_by_a_plausible_name_keeps_the_rows_stored_under_its_old_names(
    archive: tuple[list[Path], MultiOracle], visits: bool, filters: str
) -> None:
    files, oracle = archive
    engine = ArchiveEngine(Site(SITE, tz="UTC"), files, visits=visits)
    conds = tuple(Cond(f.prop.name, f.values, f.negated) for f in parse.parse_filters(filters))

    got = engine.aggregate(query(filters))

    assert engine.answered_by_visits is visits
    cell = oracle.answer(FIRST, LAST, conds).get("", {})
    assert {m: v["value"] for m, v in got.items()} == {
        m: compute(m, cell) for m in METRICS.split(",")
    }
    if filters == "visit:browser==Chrome":
        assert got["visitors"]["value"] == 9  # three Chrome visitors on each of three days


def test_athenas_statement_renames_too() -> None:
    site = Site(SITE, tz="UTC")
    span = parse.DateRange(FIRST, LAST)
    filters = tuple(parse.parse_filters("visit:browser==Chrome"))
    ask = Ask(filters, parse.parse_property("visit:os"), frozenset({"visitors"}), units_of(span))
    source = Source("trino", site=SITE, first_day=FIRST.isoformat(), last_day=LAST.isoformat())

    text, params = sql_for(site, ask, source, span=span)

    assert "WHEN 'Chrome Mobile' THEN 'Chrome'" in text and "WHEN 'Linux' THEN 'GNU/Linux'" in text
    assert "Chrome" in params and "$" not in text
