"""The graph card's comparison: a second, dashed series for the previous period or the same dates
a year earlier (29 February taken as the 28th), equal to the timeseries API's answer for that
range, with each point's dates for the tooltip."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from query_api.cards import comparison_span
from query_api.errors import BadRequest
from query_api.parse import DateRange
from tests.integration.stats_world import NOW, SITE, World


def chart_of(world: World, **params: str) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in {"site_id": SITE, **params}.items())
    response = world.pipeline.get(f"/api/cards/graph?{query}", world.key)
    assert response.status == 200, response.body
    found = re.search(r"data-chart='([^']*)'", str(response.body))
    assert found, response.body
    return dict(json.loads(html.unescape(found.group(1))))


@pytest.fixture()
def clock_at(world: World) -> Iterator[Any]:
    """Move the query function's clock; back to the world's after the test."""
    import query_api.deps
    from query_api.app import app

    def move(at: datetime) -> None:
        app.dependency_overrides[query_api.deps.clock] = lambda: at

    yield move
    app.dependency_overrides[query_api.deps.clock] = lambda: NOW


@pytest.mark.parametrize(
    ("first", "last", "compare", "expected"),
    [
        ("2026-11-04", "2026-11-07", "previous_period", ("2026-10-31", "2026-11-03")),
        ("2026-03-01", "2026-03-31", "previous_period", ("2026-02-01", "2026-02-28")),
        ("2027-11-04", "2027-11-07", "year_over_year", ("2026-11-04", "2026-11-07")),
        ("2028-02-29", "2028-02-29", "year_over_year", ("2027-02-28", "2027-02-28")),
        ("2028-02-23", "2028-02-29", "year_over_year", ("2027-02-23", "2027-02-28")),
        ("2028-02-29", "2028-03-06", "year_over_year", ("2027-02-28", "2027-03-06")),
        ("2028-03-01", "2028-03-01", "previous_period", ("2028-02-29", "2028-02-29")),
    ],
)
def test_comparison_range_is_the_previous_period_or_the_same_dates_a_year_earlier(
    first: str, last: str, compare: str, expected: tuple[str, str]
) -> None:
    span = DateRange(date.fromisoformat(first), date.fromisoformat(last))
    before = comparison_span(span, compare)
    assert (before.first.isoformat(), before.last.isoformat()) == expected


def test_a_year_before_the_first_year_is_a_clear_error() -> None:
    with pytest.raises(BadRequest, match="no same period a year before"):
        comparison_span(DateRange(date(1, 1, 2), date(1, 1, 3)), "year_over_year")


def test_graph_compared_with_the_previous_period_draws_the_timeseries_of_that_range(
    world: World,
) -> None:
    # Given the graph of 4 days, compared with the 4 days before
    chart = chart_of(
        world, period="custom", date="2026-11-04,2026-11-07", compare="previous_period"
    )
    current, before = chart["data"]["datasets"]
    # Then its second, dashed series is the timeseries API's for 31 October to 3 November
    series = world.ok(
        "/api/stats/timeseries", period="custom", date="2026-10-31,2026-11-03", metrics="visitors"
    )["results"]
    assert any(p["visitors"] for p in series), "the world has traffic in the compared days"
    assert before["data"] == [p["visitors"] for p in series]
    assert before["dates"] == ["2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03"]
    assert before["borderDash"] and before["label"] == "Visitors, previous period"
    # And the current series and the axis are the current period's
    assert chart["data"]["labels"] == ["2026-11-04", "2026-11-05", "2026-11-06", "2026-11-07"]
    now = world.ok(
        "/api/stats/timeseries", period="custom", date="2026-11-04,2026-11-07", metrics="visitors"
    )["results"]
    assert current["data"] == [p["visitors"] for p in now]
    assert chart["options"]["plugins"]["legend"]["display"] is True


def test_graph_compared_under_a_filter_reads_the_comparison_from_the_archive(
    world: World,
) -> None:
    filters = "event:page==/blog"
    chart = chart_of(
        world,
        period="custom",
        date="2026-11-01,2026-11-07",
        filters="event:page%3D%3D/blog",
        compare="previous_period",
        metric="pageviews",
    )
    series = world.ok(
        "/api/stats/timeseries",
        period="custom",
        date="2026-10-25,2026-10-31",
        metrics="pageviews",
        filters=filters,
    )
    assert any(p["pageviews"] for p in series["results"])
    assert chart["data"]["datasets"][1]["data"] == [p["pageviews"] for p in series["results"]]


def test_graph_compared_with_last_year_draws_the_same_dates_a_year_earlier(world: World) -> None:
    # Given the graph of 28 October to 7 November 2027, compared with the year before
    chart = chart_of(world, period="custom", date="2027-10-28,2027-11-07", compare="year_over_year")
    before = chart["data"]["datasets"][1]
    # Then its second series is the timeseries of 28 October to 7 November 2026 (the world's)
    series = world.ok(
        "/api/stats/timeseries", period="custom", date="2026-10-28,2026-11-07", metrics="visitors"
    )["results"]
    assert sum(p["visitors"] for p in series) > 0
    assert before["data"] == [p["visitors"] for p in series]
    assert before["dates"][0] == "2026-10-28" and before["dates"][-1] == "2026-11-07"
    assert before["label"] == "Visitors, same period last year"


def test_today_on_29_february_compares_with_28_february_hour_by_hour(
    world: World, clock_at: Any
) -> None:
    # Given the clock at noon on 29 February 2028 (the site is in Berlin)
    clock_at(datetime(2028, 2, 29, 12, 0, tzinfo=UTC))
    # When today's graph is compared with last year
    chart = chart_of(world, period="day", compare="year_over_year")
    current, before = chart["data"]["datasets"]
    # Then the comparison is 28 February 2027, hour by hour
    assert len(before["dates"]) == len(current["data"]) == 24
    assert before["dates"][0] == "2027-02-28 00:00" and before["dates"][-1] == "2027-02-28 23:00"
    series = world.ok("/api/stats/timeseries", period="day", date="2027-02-28", metrics="visitors")[
        "results"
    ]
    assert before["data"] == [p["visitors"] for p in series]
    # And on 1 March, the previous period is 29 February
    clock_at(datetime(2028, 3, 1, 12, 0, tzinfo=UTC))
    chart = chart_of(world, period="day", compare="previous_period")
    assert {d[:10] for d in chart["data"]["datasets"][1]["dates"]} == {"2028-02-29"}


def test_february_of_a_leap_year_against_last_years_february_leaves_its_29th_uncompared(
    world: World, clock_at: Any
) -> None:
    clock_at(datetime(2028, 2, 10, 12, 0, tzinfo=UTC))
    chart = chart_of(world, period="month", compare="year_over_year")
    current, before = chart["data"]["datasets"]
    assert chart["data"]["labels"][-1] == "2028-02-29" and len(current["data"]) == 29
    assert before["dates"][0] == "2027-02-01" and before["dates"][-1] == "2027-02-28"
    assert len(before["data"]) == 28


def test_graph_without_a_comparison_has_one_series_and_an_unknown_one_is_a_400(
    world: World,
) -> None:
    chart = chart_of(world, period="custom", date="2026-11-04,2026-11-07")
    assert len(chart["data"]["datasets"]) == 1
    status, body = world.get(
        "/api/cards/graph", period="custom", date="2026-11-04,2026-11-07", compare="lastweek"
    )
    assert status == 400 and "previous_period" in body["error"]
