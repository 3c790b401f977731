"""The planner (query_api/plan.py): the counters answer what they can; what they refuse as not
exact goes to the archive engine, with the archived files of the question's days and a day on
each side; without an archive the refusal stands."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from core.sites import Site
from query_api import counters, parse
from query_api.errors import BadRequest
from query_api.plan import ARCHIVE, COUNTERS, Planner

SITE = Site("example.com", tz="Europe/Berlin")
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
ARCHIVED = datetime(2026, 3, 10, 11, 57, tzinfo=UTC)
SPAN = parse.DateRange(date(2026, 3, 1), date(2026, 3, 7))
QUERY = parse.Query(SITE, SPAN)
PAGE = parse.parse_property("event:page")


class FakeArchive:
    def __init__(self) -> None:
        self.asked: list[tuple[str, date, date]] = []

    def local_files(self, site: str, first_day: str, last_day: str) -> list[Path]:
        first, last = date.fromisoformat(first_day), date.fromisoformat(last_day)
        self.asked.append((site, first, last))
        return [Path(f"/cache/{first}"), Path(f"/cache/{last}")]

    def newest(self, site: str) -> datetime | None:
        return ARCHIVED


class Engine:
    """Answers with its own name, or refuses as the counters do."""

    def __init__(self, name: str, refuses: bool = False) -> None:
        self.name, self.refuses = name, refuses
        self.files: list[Path] = []

    def _answer(self) -> Any:
        if self.refuses:
            raise counters.not_exact("Two properties at once.")
        return self.name

    def aggregate(self, query: parse.Query, compare: bool = False) -> Any:
        return {"visitors": {"value": self._answer()}}

    def timeseries(self, query: parse.Query, interval: str) -> Any:
        return [{"date": "2026-03-01", "visitors": self._answer()}]

    def breakdown(
        self, query: parse.Query, prop: parse.Property, limit: int = 100, page: int = 1
    ) -> Any:
        return [{"page": self._answer()}], False


def planner(counters_refuse: bool, archive: FakeArchive | None) -> tuple[Planner, list[Engine]]:
    made: list[Engine] = []

    def engine(site: Site, files: Any) -> Engine:
        archived = Engine("archive")
        archived.files = list(files)
        made.append(archived)
        return archived

    p = Planner(reader=None, site=SITE, archive=archive, now=NOW, engine=engine)  # type: ignore[arg-type]
    p.counters = Engine("counters", refuses=counters_refuse)  # type: ignore[assignment]
    return p, made


def test_the_counters_answer_what_they_can_and_the_archive_is_not_read() -> None:
    archive = FakeArchive()
    p, made = planner(counters_refuse=False, archive=archive)
    assert p.breakdown(QUERY, PAGE) == ([{"page": "counters"}], False)
    assert (p.answered_from, p.fresh_to) == (COUNTERS, NOW)
    assert archive.asked == [] and made == []


def test_a_refused_question_is_answered_by_the_archive_from_its_days_and_one_each_side() -> None:
    archive = FakeArchive()
    p, made = planner(counters_refuse=True, archive=archive)
    assert p.breakdown(QUERY, PAGE) == ([{"page": "archive"}], False)
    assert (p.answered_from, p.fresh_to) == (ARCHIVE, ARCHIVED)
    assert archive.asked == [("example.com", date(2026, 2, 28), date(2026, 3, 8))]
    assert made[0].files == [Path("/cache/2026-02-28"), Path("/cache/2026-03-08")]


def test_a_comparison_reads_the_previous_period_too() -> None:
    archive = FakeArchive()
    p, _ = planner(counters_refuse=True, archive=archive)
    assert p.aggregate(QUERY, compare=True) == {"visitors": {"value": "archive"}}
    # the previous 7 days are 2026-02-22..28
    assert archive.asked == [("example.com", date(2026, 2, 21), date(2026, 3, 8))]


def test_without_an_archive_the_refusal_is_the_callers_400() -> None:
    p, _ = planner(counters_refuse=True, archive=None)
    with pytest.raises(counters.NotExact):
        p.timeseries(QUERY, "day")


def test_other_bad_requests_are_never_sent_to_the_archive() -> None:
    """Plausible's own 400s (a bad metric, a bad period) stay 400s: only NotExact is planned."""
    archive = FakeArchive()
    p, made = planner(counters_refuse=False, archive=archive)

    def bad(*_: Any, **__: Any) -> Any:
        raise BadRequest("Metrics cannot be queried multiple times.")

    p.counters.breakdown = bad  # type: ignore[method-assign]
    with pytest.raises(BadRequest, match="multiple times"):
        p.breakdown(QUERY, PAGE)
    assert archive.asked == [] and made == []
