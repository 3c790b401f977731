"""The v2 query body → V2Query (query_api/v2/parse.py) and the answer's JSON (answer.py): each
accepted form normalised, each invalid one refused in Plausible's words, at pinned clocks (month
ends, a leap day, both DST change days of a non-UTC site)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.sites import Site
from query_api.errors import BadRequest
from query_api.v2 import answer, parse
from query_api.v2.model import (
    Behaviour,
    Condition,
    FilterTree,
    Include,
    Junction,
    Negation,
    Result,
    Row,
    V2Query,
)

CREATED = int(datetime(2025, 6, 1, 9, 0, tzinfo=UTC).timestamp())
UTC_SITE = Site("example.com", tz="UTC", created_at=CREATED, goals=("Signup", "Visit /thanks"))
BERLIN = Site("example.com", tz="Europe/Berlin", created_at=CREATED, goals=("Signup",))
NO_GOALS = Site("example.com", tz="UTC", created_at=CREATED)
NOW = datetime(2026, 1, 31, 12, 30, tzinfo=UTC)

SEGMENTS: dict[str, tuple[FilterTree, ...]] = {
    "1": (Condition("is", "visit:country", ("DE", "FR")),),
    "2": (Condition("is", "visit:browser", ("Firefox",)), Condition("is", "visit:os", ("Mac",))),
}


def ask(body: dict[str, Any], site: Site = UTC_SITE, now: datetime = NOW) -> V2Query:
    full = {"site_id": site.domain, "metrics": ["visitors"], "date_range": "day", **body}
    return parse.parse_query(full, site, now, SEGMENTS.get)


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


# ---- date ranges ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "date_range", "first", "last"),
    [
        (NOW, "day", date(2026, 1, 31), date(2026, 1, 31)),
        (NOW, "7d", date(2026, 1, 24), date(2026, 1, 30)),  # the 7 days before today
        (NOW, "28d", date(2026, 1, 3), date(2026, 1, 30)),
        (NOW, "30d", date(2026, 1, 1), date(2026, 1, 30)),
        (NOW, "91d", date(2025, 11, 1), date(2026, 1, 30)),
        (NOW, "month", date(2026, 1, 1), date(2026, 1, 31)),
        (NOW, "6mo", date(2025, 7, 1), date(2025, 12, 31)),  # whole months before this one
        (NOW, "12mo", date(2025, 1, 1), date(2025, 12, 31)),
        (NOW, "3mo", date(2025, 10, 1), date(2025, 12, 31)),
        (NOW, "year", date(2026, 1, 1), date(2026, 12, 31)),
        (NOW, "all", date(2025, 6, 1), date(2026, 1, 31)),  # from the site's creation
        (NOW, ["2025-12-30", "2026-01-02"], date(2025, 12, 30), date(2026, 1, 2)),
        (datetime(2024, 2, 29, 8, tzinfo=UTC), "month", date(2024, 2, 1), date(2024, 2, 29)),
        (datetime(2024, 2, 29, 8, tzinfo=UTC), "7d", date(2024, 2, 22), date(2024, 2, 28)),
        (datetime(2024, 3, 1, 8, tzinfo=UTC), "1d", date(2024, 2, 29), date(2024, 2, 29)),
        (datetime(2024, 2, 29, 8, tzinfo=UTC), "12mo", date(2023, 2, 1), date(2024, 1, 31)),
        (datetime(2024, 2, 29, 8, tzinfo=UTC), "year", date(2024, 1, 1), date(2024, 12, 31)),
        (datetime(2026, 12, 31, 23, tzinfo=UTC), "month", date(2026, 12, 1), date(2026, 12, 31)),
        (datetime(2026, 3, 31, 8, tzinfo=UTC), "1mo", date(2026, 2, 1), date(2026, 2, 28)),
    ],
)
def test_relative_and_date_ranges_resolve_to_site_local_days(
    now: datetime, date_range: Any, first: date, last: date
) -> None:
    query = ask({"date_range": date_range}, now=now)
    assert (query.first, query.last) == (first, last)
    assert query.start_ms == ms(f"{first}T00:00:00+00:00")
    assert query.end_ms == ms(f"{last}T23:59:59+00:00") + 1000
    assert query.date_range_echo == (f"{first}T00:00:00+00:00", f"{last}T23:59:59+00:00")
    assert query.now == now


def test_today_is_the_sites_local_day_not_utcs() -> None:
    """23:30 UTC on the 31st is already February 1st in Tokyo."""
    tokyo = Site("example.com", tz="Asia/Tokyo", created_at=CREATED)
    query = ask({"date_range": "month"}, tokyo, datetime(2026, 1, 31, 23, 30, tzinfo=UTC))
    assert (query.first, query.last) == (date(2026, 2, 1), date(2026, 2, 28))
    assert query.start_ms == ms("2026-01-31T15:00:00+00:00")
    assert query.date_range_echo == ("2026-02-01T00:00:00+09:00", "2026-02-28T23:59:59+09:00")


@pytest.mark.parametrize(
    ("now", "start", "end", "echo", "hours"),
    [
        # clocks spring forward: a 23-hour day
        (
            datetime(2026, 3, 29, 12, tzinfo=UTC),
            "2026-03-28T23:00:00+00:00",
            "2026-03-29T22:00:00+00:00",
            ("2026-03-29T00:00:00+01:00", "2026-03-29T23:59:59+02:00"),
            23,
        ),
        # and back: 25 hours, 02:00 twice
        (
            datetime(2026, 10, 25, 12, tzinfo=UTC),
            "2026-10-24T22:00:00+00:00",
            "2026-10-25T23:00:00+00:00",
            ("2026-10-25T00:00:00+02:00", "2026-10-25T23:59:59+01:00"),
            25,
        ),
    ],
)
def test_a_dst_change_day_is_the_local_days_exact_instants(
    now: datetime, start: str, end: str, echo: tuple[str, str], hours: int
) -> None:
    query = ask({"date_range": "day", "dimensions": ["time"]}, BERLIN, now)
    assert (query.start_ms, query.end_ms) == (ms(start), ms(end))
    assert query.date_range_echo == echo
    assert query.time_dimension == "hour"
    labels = answer.time_labels(query)
    assert len(labels) == hours
    assert labels[:3] == (
        ["2026-03-29 00:00:00", "2026-03-29 01:00:00", "2026-03-29 03:00:00"]
        if hours == 23
        else ["2026-10-25 00:00:00", "2026-10-25 01:00:00", "2026-10-25 02:00:00"]
    )
    if hours == 25:
        assert labels[3] == "2026-10-25 02:00:00"


def test_24h_is_the_exact_day_before_now_to_the_second() -> None:
    now = datetime(2026, 3, 29, 12, 30, 15, 500_000, tzinfo=UTC)
    query = ask({"date_range": "24h"}, BERLIN, now)
    assert query.start_ms == ms("2026-03-28T12:30:15+00:00")
    assert query.end_ms == ms("2026-03-29T12:30:16+00:00")  # now's second included
    assert (query.first, query.last) == (date(2026, 3, 28), date(2026, 3, 29))
    assert query.date_range_echo == ("2026-03-28T13:30:15+01:00", "2026-03-29T14:30:15+02:00")


def test_a_datetime_pair_is_those_instants_whatever_their_offsets() -> None:
    query = ask({"date_range": ["2024-08-29T07:12:34-07:00", "2024-08-29T10:12:34-07:00"]}, BERLIN)
    assert query.start_ms == ms("2024-08-29T14:12:34+00:00")
    assert query.end_ms == ms("2024-08-29T17:12:35+00:00")
    assert query.date_range_echo == ("2024-08-29T16:12:34+02:00", "2024-08-29T19:12:34+02:00")


def test_etc_utc_sites_echo_z_as_elixir_prints_them() -> None:
    site = Site("example.com", tz="Etc/UTC", created_at=CREATED)
    assert ask({}, site).date_range_echo == ("2026-01-31T00:00:00Z", "2026-01-31T23:59:59Z")


def test_all_begins_where_retention_does_for_an_old_or_undated_site() -> None:
    old = Site("example.com", tz="UTC", created_at=0, retention_months=24)
    assert ask({"date_range": "all"}, old).first == date(2024, 1, 1)
    fresh = Site("example.com", tz="UTC", created_at=int(NOW.timestamp()))
    assert ask({"date_range": "all"}, fresh).first == date(2026, 1, 31)


@pytest.mark.parametrize(
    ("date_range", "granularity"),
    [
        ("day", "hour"),
        ("24h", "hour"),
        (["2026-01-01", "2026-01-02"], "hour"),  # 47:59:59 is within 48 hours
        (["2026-01-01", "2026-01-03"], "day"),
        (["2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z"], "hour"),  # 48 hours to the second
        (["2026-01-01T00:00:00Z", "2026-01-03T01:00:00Z"], "day"),
        ("7d", "day"),
        ("month", "day"),
        (["2026-01-01", "2026-02-10"], "day"),  # 41 days: 40 whole days apart
        (["2026-01-01", "2026-02-11"], "week"),
        ("91d", "week"),
        ("12mo", "week"),  # 365 days hold 52 whole weeks
        ("year", "week"),
        ("13mo", "month"),
    ],
)
def test_time_resolves_as_plausible_does(date_range: Any, granularity: str) -> None:
    query = ask({"date_range": date_range, "dimensions": ["time"]})
    assert query.time_dimension == granularity
    assert query.dimensions == (f"time:{granularity}",)
    assert query.order_by == ((f"time:{granularity}", "asc"), ("visitors", "desc"))


# ---- the rest of the question ------------------------------------------------------------------


def test_a_full_body_normalises() -> None:
    query = ask(
        {
            "metrics": ["visitors", "pageviews", "percentage"],
            "date_range": "7d",
            "dimensions": ["event:page", "visit:source", "time:day", "event:props:plan"],
            "filters": [
                ["is", "visit:country", ["DE", "FR"]],
                ["contains", "event:page", ["/Blog"], {"case_sensitive": False}],
                [
                    "or",
                    [
                        ["matches", "event:props:plan", ["^pro"]],
                        ["not", ["is_not", "visit:browser", ["Chrome"]]],
                    ],
                ],
                ["has_not_done", ["is", "event:goal", ["Signup"]]],
            ],
            "order_by": [["pageviews", "asc"], ["event:page", "desc"]],
            "include": {"total_rows": True, "imports": True},
            "pagination": {"limit": 50, "offset": 100},
        }
    )
    assert query.metrics == ("visitors", "pageviews", "percentage")
    assert query.dimensions == ("event:page", "visit:source", "time:day", "event:props:plan")
    assert query.filters == (
        Condition("is", "visit:country", ("DE", "FR")),
        Condition("contains", "event:page", ("/Blog",), case_sensitive=False),
        Junction(
            "or",
            (
                Condition("matches", "event:props:plan", ("^pro",)),
                Negation(Condition("is_not", "visit:browser", ("Chrome",))),
            ),
        ),
        Behaviour(False, Condition("is", "event:goal", ("Signup",))),
    )
    assert query.order_by == (("pageviews", "asc"), ("event:page", "desc"))
    assert (query.limit, query.offset) == (50, 100)
    assert query.include == Include(total_rows=True, imports=True)
    assert query.time_dimension == "day"


def test_defaults_order_by_the_first_metric_and_page_everything() -> None:
    query = ask({"metrics": ["pageviews", "visitors"], "dimensions": ["event:page"]})
    assert query.order_by == (("pageviews", "desc"),)
    assert (query.limit, query.offset) == (10_000, 0)
    assert query.include == Include()
    assert query.time_dimension == ""


def test_order_by_time_follows_its_resolution() -> None:
    query = ask({"dimensions": ["time"], "order_by": [["time", "desc"]]})
    assert query.order_by == (("time:hour", "desc"),)


def test_a_top_level_segment_joins_the_top_level_filters() -> None:
    query = ask({"filters": [["is", "segment", [2]], ["is", "event:page", ["/"]]]})
    assert query.filters == (*SEGMENTS["2"], Condition("is", "event:page", ("/",)))


def test_segments_elsewhere_are_the_and_of_their_filters_and_several_their_or() -> None:
    query = ask({"filters": [["not", ["is", "segment", [2]]], ["is", "segment", [1, 2]]]})
    assert query.filters == (
        Negation(Junction("and", SEGMENTS["2"])),
        Junction("or", (SEGMENTS["1"][0], Junction("and", SEGMENTS["2"]))),
    )


def test_without_configured_goals_any_event_name_is_a_goal_but_no_pageview_goal() -> None:
    assert ask({"filters": [["is", "event:goal", ["Anything"]]]}, NO_GOALS).filters
    with pytest.raises(BadRequest, match="The goal `Visit /x` is not configured"):
        ask({"filters": [["is", "event:goal", ["Visit /x"]]]}, NO_GOALS)


@pytest.mark.parametrize(
    "filters",
    [
        [["is", "event:goal", ["Visit /thanks", "Signup"]]],
        [["contains", "event:goal", ["Nope"]]],  # a contains may match nothing
        [["is", "event:goal", ["signup"], {"case_sensitive": False}]],
        [["has_done", ["or", [["is", "event:goal", ["Signup"]], ["is", "event:page", ["/"]]]]]],
    ],
)
def test_goal_filters_plausible_accepts(filters: list[Any]) -> None:
    assert ask({"filters": filters}).filters


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"metrics": ["bounce_rate", "visits"], "dimensions": ["event:page"]}, True),
        ({"metrics": ["visits"], "dimensions": ["event:name"]}, True),  # visits fit either table
        ({"metrics": ["scroll_depth"], "dimensions": ["visit:device", "event:page"]}, True),
        ({"metrics": ["scroll_depth"], "filters": [["is", "event:page", ["/"]]]}, True),
        ({"metrics": ["time_on_page"], "filters": [["not", ["is", "event:page", ["/"]]]]}, True),
        ({"metrics": ["bounce_rate"], "filters": [["is", "event:props:a", ["b"]]]}, True),
        ({"metrics": ["conversion_rate"], "dimensions": ["event:goal"]}, True),
        ({"metrics": ["views_per_visit"], "filters": [["is", "event:goal", ["Signup"]]]}, True),
    ],
)
def test_metric_combinations_plausible_accepts(body: dict[str, Any], ok: bool) -> None:
    assert ask(body).metrics == tuple(body["metrics"])


# ---- refusals, in Plausible's words -------------------------------------------------------------

TOO_DEEP: list[Any] = ["is", "event:page", ["/"]]
for _ in range(12):
    TOO_DEEP = ["not", TOO_DEEP]

REFUSALS: list[tuple[Any, str]] = [
    (["not", "an object"], "#: Type mismatch. Expected Object but got Array."),
    ({"date": "2026-01-01"}, "#/date: Schema does not allow additional properties."),
    ({"site_id": 7}, "#/site_id: Type mismatch. Expected String but got Integer."),
    ({"metrics": []}, "#/metrics: Expected a minimum of 1 items but got 0."),
    ({"metrics": "visitors"}, "#/metrics: Type mismatch. Expected Array but got String."),
    (
        {"metrics": ["visitors", "visitors"]},
        "#/metrics: Expected items to be unique but they were not.",
    ),
    (
        {"metrics": ["total_revenue", 3]},
        '#/metrics/0: Invalid metric "total_revenue"\n#/metrics/1: Invalid metric 3',
    ),
    ({"date_range": "foo"}, '#/date_range: Invalid date range "foo"'),
    ({"date_range": "-1d"}, '#/date_range: Invalid date range "-1d"'),
    ({"date_range": "realtime"}, '#/date_range: Invalid date range "realtime"'),
    ({"date_range": 7}, "#/date_range: Invalid date range 7"),
    (
        {"date_range": ["2021-02-03T00:00:00Z", "2021-02-04"]},
        '#/date_range: Invalid date range ["2021-02-03T00:00:00Z", "2021-02-04"]',
    ),
    (
        {"date_range": ["2021-02-03T00:00:00-25:00", "2021-02-03T23:59:59-25:00"]},
        '#/date_range: Invalid date range ["2021-02-03T00:00:00-25:00", "2021-02-03T23:59:59-25:00"]',
    ),
    ({"date_range": "999999999mo"}, 'Invalid date_range "999999999mo"'),
    ({"date_range": "0d"}, 'Invalid date_range "0d"'),
    (
        {"date_range": ["2021-02-03T00:00:00", "2021-02-03T23:59:59"]},
        'Invalid date_range \'["2021-02-03T00:00:00", "2021-02-03T23:59:59"]\'.',
    ),
    (
        {"date_range": ["2021-02-30", "2021-03-01"]},
        'Invalid date_range \'["2021-02-30", "2021-03-01"]\'.',
    ),
    (
        {"date_range": ["2021-03-02", "2021-03-01"]},
        'Invalid date_range \'["2021-03-02", "2021-03-01"]\': it ends before it starts.',
    ),
    (
        {"date_range": ["2000-01-01", "2021-03-01"]},
        'Invalid date_range \'["2000-01-01", "2021-03-01"]\': a range may span at most 5,000 days.',
    ),
    (
        {"date_range": ["0001-01-01", "0001-01-05"]},
        'Invalid date_range \'["0001-01-01", "0001-01-05"]\': days must lie between 0001-01-02 '
        "and 9999-12-30.",
    ),
    ({"dimensions": "foobar"}, "#/dimensions: Type mismatch. Expected Array but got String."),
    ({"dimensions": ["visitors"]}, '#/dimensions/0: Invalid dimension "visitors"'),
    ({"dimensions": ["event:props:"]}, '#/dimensions/0: Invalid dimension "event:props:"'),
    ({"dimensions": ["time:minute"]}, '#/dimensions/0: Invalid dimension "time:minute"'),
    (
        {"dimensions": ["event:name", "event:name"]},
        "#/dimensions: Expected items to be unique but they were not.",
    ),
    (
        {"dimensions": ["visit:entry_page_hostname"]},
        "Invalid dimensions. The dimension `visit:entry_page_hostname` is not supported yet: "
        "this server does not store it.",
    ),
    (
        {"dimensions": ["time:day", "time:hour"]},
        "Invalid dimensions. A query may have one time dimension at most (`time`, `time:hour`, "
        "`time:day`, `time:week` or `time:month`).",
    ),
    ({"filters": "foobar"}, "#/filters: Type mismatch. Expected Array but got String."),
    ({"filters": [[]]}, "#/filters/0: Invalid filter []"),
    ({"filters": [["and", []]]}, '#/filters/0: Invalid filter ["and", []]'),
    ({"filters": [["has_done"]]}, '#/filters/0: Invalid filter ["has_done"]'),
    (
        {"filters": [["is_not", "event:name"]]},
        '#/filters/0: Invalid filter ["is_not", "event:name"]',
    ),
    (
        {"filters": [["is", "event:name", "foo"]]},
        '#/filters/0: Invalid filter ["is", "event:name", "foo"]',
    ),
    (
        {"filters": [["exists?", "event:name", ["foo"]]]},
        '#/filters/0: Invalid filter ["exists?", "event:name", ["foo"]]',
    ),
    (
        {"filters": [["is", "event:device", ["foo"]]]},
        '#/filters/0: Invalid filter ["is", "event:device", ["foo"]]',
    ),
    (
        {"filters": [["is_not", "event:goal", ["Signup"]]]},
        '#/filters/0: Invalid filter ["is_not", "event:goal", ["Signup"]]',
    ),
    (
        {"filters": [["not", ["is", "event:props:a", ["b"]], 1]]},
        '#/filters/0: Invalid filter ["not", ["is", "event:props:a", ["b"]], 1]',
    ),
    (
        {"filters": [["matches", "event:page", ["/a"], {"case_sensitive": False}]]},
        '#/filters/0: Invalid filter ["matches", "event:page", ["/a"], %{"case_sensitive" => false}]',
    ),
    (
        {"filters": [["is", "event:page", ["/a"], {"case_sensitive": "no"}]]},
        '#/filters/0: Invalid filter ["is", "event:page", ["/a"], %{"case_sensitive" => "no"}]',
    ),
    (
        {"filters": [["is", "event:time", ["x"]]]},
        '#/filters/0: Invalid filter ["is", "event:time", ["x"]]',
    ),
    (
        {"filters": [["is", "visit:os_version", [123]]]},
        'Invalid filter \'["is", "visit:os_version", [123]]\'.',
    ),
    (
        {"filters": [["is", "visit:country", ["USA"]]]},
        "Invalid visit:country filter, visit:country needs to be a valid 2-letter country code.",
    ),
    (
        {"filters": [["is", "segment", ["123"]]]},
        'Invalid filter \'["is", "segment", ["123"]]\'.',
    ),
    (
        {"filters": [["is", "segment", [9]]]},
        "Invalid filters. Some segments don't exist or aren't accessible.",
    ),
    (
        {"filters": [["is", "segment", list(range(11))]]},
        "Invalid filters. You can only use up to 10 segment filters in a query.",
    ),
    (
        {"filters": [["is", "visit:screen", ["Desktop"]]]},
        "Invalid filters. Filtering by `visit:screen` is not supported yet: this server does "
        "not store it.",
    ),
    (
        {"filters": [["matches", "event:page", ["a" * 1001]]]},
        "Invalid filters. A `matches` pattern may be at most 1,000 characters long.",
    ),
    (
        {"filters": [["is", "event:page", ["/"] * 1001]]},
        "Invalid filters. A filter may list at most 1,000 values.",
    ),
    ({"filters": [TOO_DEEP]}, "Invalid filters. Filters may be nested at most 10 deep."),
    (
        {"filters": [["is", "event:page", ["/"]]] * 501},
        "Invalid filters. A query may hold at most 500 filters and operators in all.",
    ),
    (
        {"filters": [["not", ["is", "event:hostname", ["a.example.com"]]]]},
        "Invalid filters. Dimension `event:hostname` can only be filtered at the top level.",
    ),
    (
        {"filters": [["or", [["is", "event:goal", ["Signup"]], ["is", "event:name", ["x"]]]]]},
        "Invalid filters. Dimension `event:goal` can only be filtered at the top level.",
    ),
    (
        {
            "metrics": ["conversion_rate"],
            "dimensions": ["event:goal"],
            "filters": [["not", ["is", "event:props:foo", ["bar"]]]],
        },
        "Invalid filters. When `conversion_rate` or `group_conversion_rate` metrics are used, "
        "custom property filters can only be used on top level.",
    ),
    (
        {"filters": [["has_done", ["has_not_done", ["is", "event:page", ["/"]]]]]},
        "Invalid filters. Behavioral filters (has_done, has_not_done) cannot be nested.",
    ),
    (
        {"filters": [["has_done", ["is", "visit:browser", ["Chrome"]]]]},
        "Invalid filters. Behavioral filters (has_done, has_not_done) can only be used with "
        "event dimension filters.",
    ),
    (
        {"filters": [["is", "event:goal", ["Purchase"]]]},
        "Invalid filters. The goal `Purchase` is not configured for this site. Find out how to "
        "configure goals here: https://plausible.io/docs/stats-api#filtering-by-goals",
    ),
    (
        {"filters": [["has_done", ["is", "event:goal", ["Unknown"]]]]},
        "Invalid filters. The goal `Unknown` is not configured for this site. Find out how to "
        "configure goals here: https://plausible.io/docs/stats-api#filtering-by-goals",
    ),
    ({"order_by": "x"}, "#/order_by: Type mismatch. Expected Array but got String."),
    ({"order_by": [["visssss", "desc"]]}, '#/order_by/0/0: Invalid value in order_by "visssss"'),
    ({"order_by": [["visitors", "up"]]}, "#/order_by/0/1: Value is not allowed in enum."),
    ({"order_by": [["visitors"]]}, "#/order_by/0: Expected a minimum of 2 items but got 1."),
    (
        {"order_by": [["events", "desc"]]},
        "Invalid order_by entry '{:events, :desc}'. Entry is not a queried metric or dimension.",
    ),
    (
        {"order_by": [["event:name", "desc"]]},
        "Invalid order_by entry '{\"event:name\", :desc}'. Entry is not a queried metric or "
        "dimension.",
    ),
    (
        {"dimensions": ["time"], "order_by": [["time:day", "asc"]]},
        "Invalid order_by entry '{\"time:day\", :asc}'. Entry is not a queried metric or "
        "dimension.",
    ),
    ({"include": "foobar"}, "#/include: Type mismatch. Expected Object but got String."),
    (
        {"include": {"comparisons": {"mode": "previous_period"}}},
        "#/include/comparisons: Schema does not allow additional properties.",
    ),
    (
        {"include": {"imports": 1}},
        "#/include/imports: Type mismatch. Expected Boolean but got Integer.",
    ),
    (
        {"include": {"time_labels": True}},
        "Invalid include.time_labels: requires a time dimension.",
    ),
    ({"pagination": {"limit": 100_000}}, "#/pagination/limit: Expected the value to be <= 10000"),
    ({"pagination": {"limit": 0}}, "#/pagination/limit: Expected the value to be >= 1"),
    ({"pagination": {"offset": -5}}, "#/pagination/offset: Expected the value to be >= 0"),
    (
        {"pagination": {"limit": 1.5}},
        "#/pagination/limit: Type mismatch. Expected Integer but got Number.",
    ),
    (
        {"pagination": {"page": 2}},
        "#/pagination/page: Schema does not allow additional properties.",
    ),
    (
        {"metrics": ["conversion_rate"]},
        "Metric `conversion_rate` can only be queried with event:goal filters or dimensions.",
    ),
    (
        {
            "metrics": ["group_conversion_rate"],
            "filters": [["has_done", ["is", "event:goal", ["Signup"]]]],
        },
        "Metric `group_conversion_rate` can only be queried with event:goal filters or dimensions.",
    ),
    (
        {"metrics": ["scroll_depth"], "filters": [["not", ["is", "event:page", ["/"]]]]},
        "Metric `scroll_depth` can only be queried with event:page filters or dimensions.",
    ),
    (
        {"metrics": ["time_on_page"], "filters": [["has_done", ["is", "event:page", ["/"]]]]},
        "Metric `time_on_page` can only be queried with event:page filters or dimensions.",
    ),
    (
        {"metrics": ["views_per_visit"], "filters": [["is", "event:page", ["/"]]]},
        "Metric `views_per_visit` cannot be queried with a filter on `event:page`.",
    ),
    (
        {"metrics": ["views_per_visit"], "dimensions": ["time"]},
        "Metric `views_per_visit` cannot be queried with `dimensions`.",
    ),
    (
        {"metrics": ["bounce_rate"], "dimensions": ["event:props:foo"]},
        "Session metric(s) `bounce_rate` cannot be queried along with event dimension(s) "
        "`event:props:foo`",
    ),
    (
        {"metrics": ["visit_duration"], "dimensions": ["event:page", "event:hostname"]},
        "Session metric(s) `visit_duration` cannot be queried along with event dimension(s) "
        "`event:page`, `event:hostname`",
    ),
    (
        {"metrics": ["events", "pageviews"], "dimensions": ["visit:exit_page"]},
        "Event metric(s) `events`, `pageviews` cannot be queried along with session dimension(s) "
        "`visit:exit_page`",
    ),
]


@pytest.mark.parametrize(("body", "message"), REFUSALS)
def test_an_invalid_query_is_refused_in_plausibles_words(body: Any, message: str) -> None:
    if isinstance(body, dict):
        body = {"site_id": "example.com", "metrics": ["visitors"], "date_range": "day", **body}
    with pytest.raises(BadRequest) as refused:
        parse.parse_query(body, UTC_SITE, NOW, SEGMENTS.get)
    assert refused.value.message == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"site_id": "a", "metrics": ["visits"]},
            "#: Required property date_range was not present.",
        ),
        ({"site_id": "a"}, "#: Required properties metrics, date_range were not present."),
    ],
)
def test_missing_fields_are_named(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse.parse_query(body, UTC_SITE, NOW, SEGMENTS.get)
    assert refused.value.message == message


def test_every_schema_problem_is_reported_one_a_line() -> None:
    body = {"site_id": "example.com", "metrics": ["visits", "x"], "date_range": "x", "foo": 1}
    with pytest.raises(BadRequest) as refused:
        parse.parse_query(body, UTC_SITE, NOW, SEGMENTS.get)
    assert refused.value.message.splitlines() == [
        "#/foo: Schema does not allow additional properties.",
        '#/metrics/1: Invalid metric "x"',
        '#/date_range: Invalid date range "x"',
    ]


GARBAGE: list[Any] = [
    None,
    0,
    "x",
    [],
    {},
    {"site_id": None, "metrics": None, "date_range": None},
    {"site_id": "a", "metrics": [[["deep"]]], "date_range": [[], {}]},
    {"site_id": "a", "metrics": ["visitors"], "date_range": "day", "filters": [[None, None, None]]},
    {"site_id": "a", "metrics": ["visitors"], "date_range": "day", "filters": [[{}, "x"]]},
    {"site_id": "a", "metrics": ["visitors"], "date_range": "day", "filters": [["and", [[]]]]},
    {"site_id": "a", "metrics": ["visitors"], "date_range": "day", "filters": [["not", None]]},
    {"site_id": "a", "metrics": ["visitors"], "date_range": "day", "order_by": [[{}, []]]},
    {"site_id": "a", "metrics": ["visitors"], "date_range": "day", "pagination": {"limit": True}},
    {"site_id": "a", "metrics": ["visitors"], "date_range": "day", "include": {"x": {"y": []}}},
    {"site_id": "a", "metrics": ["visitors"], "date_range": ["99999-01-01", "x"]},
    {"site_id": "a", "metrics": ["visitors"], "date_range": ["9999-12-31", "9999-12-31"]},
    {"site_id": "a", "metrics": ["visitors"], "date_range": "5000d"},
    {"site_id": "a", "metrics": ["visitors"], "date_range": "all", "dimensions": [{}, {}]},
]


@pytest.mark.parametrize("body", GARBAGE)
def test_malformed_bodies_are_bad_requests_not_crashes(body: Any) -> None:
    try:
        parse.parse_query(body, UTC_SITE, NOW, SEGMENTS.get)
    except BadRequest as refused:
        assert 0 < len(refused.message) < 5_000
    else:
        assert isinstance(body, dict) and body["date_range"] == "5000d"  # the one valid body


def test_a_huge_nested_value_is_quoted_briefly() -> None:
    deep: Any = "x"
    for _ in range(5_000):
        deep = [deep]
    with pytest.raises(BadRequest) as refused:
        ask({"metrics": [deep]})
    assert len(refused.value.message) < 600


def test_site_id_of_names_the_site_or_refuses() -> None:
    assert parse.site_id_of({"site_id": "example.com"}) == "example.com"
    for body, message in [
        ({}, "#: Required property site_id was not present."),
        ({"site_id": 3}, "#/site_id: Type mismatch. Expected String but got Integer."),
        ([], "#: Type mismatch. Expected Object but got Array."),
    ]:
        with pytest.raises(BadRequest) as refused:
            parse.site_id_of(body)
        assert refused.value.message == message


def test_a_segments_filters_are_checked_as_a_querys() -> None:
    assert parse.parse_filters([["is", "visit:country", ["DE"]]], UTC_SITE) == (
        Condition("is", "visit:country", ("DE",)),
    )
    for filters, message in [
        ([["is", "segment", [1]]], "A segment's filters cannot use another segment."),
        ("x", "#/filters: Type mismatch. Expected Array but got String."),
        ([["is", "event:goal", ["Nope"]]], "Invalid filters. The goal `Nope` is not configured"),
    ]:
        with pytest.raises(BadRequest) as refused:
            parse.parse_filters(filters, UTC_SITE)
        assert refused.value.message.startswith(message)


# ---- the answer -------------------------------------------------------------------------------


def test_the_answer_has_plausibles_shape() -> None:
    query = ask(
        {
            "metrics": ["visitors", "bounce_rate"],
            "date_range": ["2026-01-05", "2026-01-06"],
            "dimensions": ["visit:source", "time:day"],
            "filters": [
                ["is", "segment", [1]],
                ["contains", "event:page", ["/b"], {"case_sensitive": False}],
                ["has_done", ["not", ["is", "event:name", ["Signup"]]]],
            ],
            "include": {"total_rows": True, "time_labels": True, "imports": True},
            "pagination": {"limit": 2, "offset": 1},
        }
    )
    rows = (
        Row(("Google", "2026-01-05"), (3, 50.0)),
        Row(("Direct / None", "2026-01-06"), (1, None)),
    )
    body = answer.render(query, Result(rows, total_rows=7))
    assert body == {
        "results": [
            {"metrics": [3, 50.0], "dimensions": ["Google", "2026-01-05"]},
            {"metrics": [1, None], "dimensions": ["Direct / None", "2026-01-06"]},
        ],
        "meta": {
            "imports_included": False,
            "imports_skip_reason": "no_imported_data",
            "time_labels": ["2026-01-05", "2026-01-06"],
            "total_rows": 7,
        },
        "query": {
            "site_id": "example.com",
            "metrics": ["visitors", "bounce_rate"],
            "date_range": ["2026-01-05T00:00:00+00:00", "2026-01-06T23:59:59+00:00"],
            "filters": [
                ["is", "visit:country", ["DE", "FR"]],
                ["contains", "event:page", ["/b"], {"case_sensitive": False}],
                ["has_done", ["not", ["is", "event:name", ["Signup"]]]],
            ],
            "dimensions": ["visit:source", "time:day"],
            "order_by": [["time:day", "asc"], ["visitors", "desc"]],
            "include": {"imports": True, "time_labels": True, "total_rows": True},
            "pagination": {"limit": 2, "offset": 1},
        },
    }


def test_an_answer_without_includes_has_empty_meta() -> None:
    body = answer.render(
        ask({}),
        Result((Row((), (5,)),), 1),
        warnings={"visitors": {"code": "x", "warning": "y"}},
    )
    assert body["meta"] == {"metric_warnings": {"visitors": {"code": "x", "warning": "y"}}}
    assert body["query"]["include"] == {}
    assert body["results"] == [{"metrics": [5], "dimensions": []}]


def test_given_time_labels_are_used_as_given() -> None:
    query = ask({"dimensions": ["time"], "include": {"time_labels": True}})
    assert answer.render(query, Result((), 0), time_labels=["a"])["meta"] == {"time_labels": ["a"]}


@pytest.mark.parametrize(
    ("date_range", "dimension", "labels"),
    [
        (
            ["2024-01-03", "2024-01-29"],  # from a Wednesday
            "time:week",
            ["2024-01-03", "2024-01-08", "2024-01-15", "2024-01-22", "2024-01-29"],
        ),
        (["2024-01-01", "2024-01-14"], "time:week", ["2024-01-01", "2024-01-08"]),
        (
            ["2023-11-15", "2024-03-01"],
            "time:month",
            ["2023-11-01", "2023-12-01", "2024-01-01", "2024-02-01", "2024-03-01"],
        ),
        (["2024-02-28", "2024-03-01"], "time:day", ["2024-02-28", "2024-02-29", "2024-03-01"]),
        (
            ["2024-02-29T22:30:00+00:00", "2024-03-01T00:10:00+00:00"],
            "time:hour",
            ["2024-02-29 22:00:00", "2024-02-29 23:00:00", "2024-03-01 00:00:00"],
        ),
    ],
)
def test_time_labels_cover_the_range_as_plausible_labels_it(
    date_range: list[str], dimension: str, labels: list[str]
) -> None:
    query = ask({"date_range": date_range, "dimensions": [dimension]})
    assert answer.time_labels(query) == labels


def test_an_instants_label_is_its_bucket_among_the_time_labels() -> None:
    query = ask({"date_range": ["2024-01-03", "2024-01-29"], "dimensions": ["time:week"]})
    zone = ZoneInfo("UTC")
    for day, label in [(3, "2024-01-03"), (7, "2024-01-03"), (8, "2024-01-08"), (29, "2024-01-29")]:
        instant = datetime(2024, 1, day, 13, tzinfo=zone)
        assert answer.time_label_of(query, int(instant.timestamp() * 1000)) == label
    hourly = ask(
        {"date_range": "day", "dimensions": ["time"]}, BERLIN, datetime(2026, 10, 25, 9, tzinfo=UTC)
    )
    second_two = ms("2026-10-25T01:30:00+00:00")  # 02:30 CET, after the clocks went back
    assert answer.time_label_of(hourly, second_two) == "2026-10-25 02:00:00"
    assert "2026-10-25 02:00:00" in answer.time_labels(hourly)
