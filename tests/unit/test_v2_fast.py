"""The v2 fast path's gate: which questions the v1 counters may answer, said as v1 says them;
and the order and page of rows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from core.sites import Site
from query_api.v2 import fast
from query_api.v2 import parse as v2parse
from query_api.v2.model import Row, V2Query

SITE = Site("fast.example", tz="Europe/Berlin", goals=("Signup",))
NOW = datetime(2026, 10, 30, 12, tzinfo=UTC)


def question(**body: Any) -> V2Query:
    body = {"site_id": SITE.domain, "metrics": ["visitors"], "date_range": "7d", **body}
    return v2parse.parse_query(body, SITE, NOW, lambda _: None)


def test_contains_is_said_as_a_v1_wildcard_and_is_not_as_a_negation() -> None:
    filters = fast.v1_filters(
        question(
            filters=[["contains", "event:page", ["blog"]], ["is_not", "visit:source", ["A", "B"]]]
        )
    )
    assert filters is not None
    page, source = filters
    assert (page.prop.name, page.negated, page.values) == ("event:page", False, ("*blog*",))
    assert (source.prop.name, source.negated, source.values) == ("visit:source", True, ("A", "B"))


@pytest.mark.parametrize(
    "filters",
    [
        [["matches", "event:page", ["^/b"]]],
        [["is", "event:page", ["/a*"]]],  # a literal star: v1 would read a wildcard
        [["is", "event:page", ["/a"], {"case_sensitive": False}]],
        [["or", [["is", "event:page", ["/a"]], ["is", "visit:source", ["B"]]]]],
        [["not", ["is", "event:page", ["/a"]]]],
        [["has_done", ["is", "event:name", ["Signup"]]]],
    ],
)
def test_what_v1_cannot_say_goes_to_the_archive(filters: list[Any]) -> None:
    assert fast.v1_filters(question(filters=filters)) is None


def test_ranges_of_instants_are_not_whole_days() -> None:
    assert fast.whole_days(question(date_range="7d"))
    assert not fast.whole_days(question(date_range="24h"))
    assert not fast.whole_days(
        question(date_range=["2026-10-01T10:00:00+02:00", "2026-10-02T10:00:00+02:00"])
    )


def test_a_day_the_clocks_change_on_is_noticed() -> None:
    # Berlin leaves summer time on 2026-10-25
    assert fast._clocks_change(question(date_range=["2026-10-25", "2026-10-25"]))
    assert fast._clocks_change(question(date_range=["2026-10-20", "2026-10-28"]))
    assert not fast._clocks_change(question(date_range=["2026-10-26", "2026-10-28"]))


def test_rows_are_ordered_with_ties_by_dimension_and_paged() -> None:
    query = question(
        dimensions=["event:page"],
        order_by=[["visitors", "desc"]],
        pagination={"limit": 2, "offset": 1},
    )
    rows = [Row(("/b",), (3,)), Row(("/a",), (3,)), Row(("/c",), (5,)), Row(("/d",), (1,))]
    result = fast.page_of(query, rows)
    assert result.total_rows == 4
    assert [r.dimensions[0] for r in result.rows] == ["/a", "/b"]  # after /c; ties ascending
    ascending = question(dimensions=["event:page"], order_by=[["event:page", "desc"]])
    assert [r.dimensions[0] for r in fast.page_of(ascending, rows).rows] == ["/d", "/c", "/b", "/a"]


def test_a_date_is_a_site_local_day() -> None:
    query = question(date_range=["2026-10-20", "2026-10-21"])
    assert (query.first, query.last) == (date(2026, 10, 20), date(2026, 10, 21))
