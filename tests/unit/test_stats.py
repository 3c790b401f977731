"""Periods, bucket plans, filters and metric arithmetic of the stats engine."""

from __future__ import annotations

from datetime import date

import pytest

from core.keys import Granularity
from query_api import counters, parse
from query_api.counters import Segment
from query_api.errors import BadRequest
from query_api.metrics import change, compute
from query_api.parse import DateRange

TODAY = date(2026, 11, 26)


@pytest.mark.parametrize(
    ("period", "date_param", "first", "last"),
    [
        ("day", None, TODAY, TODAY),
        ("day", "2026-02-03", date(2026, 2, 3), date(2026, 2, 3)),
        ("7d", None, date(2026, 11, 20), TODAY),
        ("30d", None, date(2026, 10, 27), TODAY),  # Plausible's 30d spans 31 days
        (None, None, date(2026, 10, 27), TODAY),
        ("month", None, date(2026, 11, 1), date(2026, 11, 30)),
        ("month", "2024-02-10", date(2024, 2, 1), date(2024, 2, 29)),
        ("6mo", None, date(2026, 6, 1), date(2026, 11, 30)),
        ("12mo", "2026-01-15", date(2025, 2, 1), date(2026, 1, 31)),
        ("year", None, date(2026, 1, 1), date(2026, 12, 31)),
        ("custom", "2026-01-01,2026-01-31", date(2026, 1, 1), date(2026, 1, 31)),
    ],
)
def test_periods(period: str | None, date_param: str | None, first: date, last: date) -> None:
    assert parse.parse_period(period, date_param, TODAY) == DateRange(first, last)


def test_a_custom_period_must_not_end_before_it_starts() -> None:
    with pytest.raises(BadRequest, match="ends before it starts"):
        parse.parse_period("custom", "2026-02-01,2026-01-01", TODAY)


@pytest.mark.parametrize(
    ("period", "date_param"),
    [
        ("7d", "0001-01-03"),
        ("day", "9999-12-31"),
        ("day", "0001-01-02"),  # the day before, a comparison's period, is the calendar's first
        ("12mo", "0001-03-01"),
        ("month", "9999-12-01"),
        ("custom", "0001-01-01,0001-01-05"),
    ],
)
def test_a_period_past_the_calendars_ends_is_a_bad_request(period: str, date_param: str) -> None:
    with pytest.raises(BadRequest, match="must lie between 0001-01-02 and 9999-12-30"):
        parse.parse_period(period, date_param, TODAY)


def test_the_calendars_last_answerable_days_are_periods() -> None:
    assert parse.parse_period("day", "0001-01-03", TODAY) == DateRange(date(1, 1, 3), date(1, 1, 3))
    last = parse.parse_period("custom", "9999-12-01,9999-12-30", TODAY)
    assert counters.segments_of(last) == [Segment(Granularity.DAY, "9999-12-01", "9999-12-30")]
    assert list(last.each_day())[-1] == date(9999, 12, 30)


def test_whole_months_are_read_from_month_items_and_the_rest_from_day_items() -> None:
    span = DateRange(date(2026, 1, 20), date(2026, 5, 3))
    assert counters.segments_of(span) == [
        Segment(Granularity.DAY, "2026-01-20", "2026-01-31"),
        Segment(Granularity.MONTH, "2026-02", "2026-04"),
        Segment(Granularity.DAY, "2026-05-01", "2026-05-03"),
    ]
    # a year is twelve month buckets in one segment; a week inside a month is days
    assert counters.segments_of(DateRange(date(2026, 1, 1), date(2026, 12, 31))) == [
        Segment(Granularity.MONTH, "2026-01", "2026-12")
    ]
    assert counters.segments_of(DateRange(date(2026, 3, 2), date(2026, 3, 8))) == [
        Segment(Granularity.DAY, "2026-03-02", "2026-03-08")
    ]
    # days on both sides of a month end are one run of day buckets, read with one Query
    assert counters.segments_of(DateRange(date(2026, 10, 27), date(2026, 11, 26))) == [
        Segment(Granularity.DAY, "2026-10-27", "2026-11-26")
    ]


def test_every_day_of_a_range_is_covered_once_by_its_segments() -> None:
    for first_day in (date(2025, 12, 31), date(2026, 2, 1), date(2026, 2, 15)):
        for length in (1, 27, 28, 29, 59, 400):
            span = DateRange(first_day, date.fromordinal(first_day.toordinal() + length - 1))
            covered = []
            for seg in counters.segments_of(span):
                if seg.granularity is Granularity.DAY:
                    first, last = date.fromisoformat(seg.first), date.fromisoformat(seg.last)
                    covered += list(DateRange(first, last).each_day())
                else:
                    month = date.fromisoformat(seg.first + "-01")
                    end = date.fromisoformat(seg.last + "-01")
                    while month <= end:
                        nxt = parse._shift_months(month, 1)
                        covered += list(
                            DateRange(month, date.fromordinal(nxt.toordinal() - 1)).each_day()
                        )
                        month = nxt
            assert covered == list(span.each_day())


def test_previous_period() -> None:
    assert parse.previous_period(DateRange(date(2026, 11, 20), TODAY)) == DateRange(
        date(2026, 11, 13), date(2026, 11, 19)
    )
    assert parse.previous_period(DateRange(date(2026, 3, 1), date(2026, 3, 31))) == DateRange(
        date(2026, 2, 1), date(2026, 2, 28)
    )
    assert parse.previous_period(DateRange(date(2026, 6, 1), date(2026, 11, 30))) == DateRange(
        date(2025, 12, 1), date(2026, 5, 31)
    )


def test_filters_parse_plausible_syntax() -> None:
    (page, country) = parse.parse_filters("event:page==/blog*;visit:country!=DE|FR")
    assert page.prop.kind == parse.PAGE and not page.negated and page.values == ("/blog*",)
    assert page.matches("/blog/post") and not page.matches("/about")
    assert country.negated and country.values == ("DE", "FR")
    assert country.matches("US") and not country.matches("FR")
    (escaped,) = parse.parse_filters(r"event:props:title==a\|b")
    assert escaped.values == ("a|b",) and escaped.single
    (semicolon,) = parse.parse_filters(r"event:props:title==a\;b")
    assert semicolon.values == ("a;b",)


@pytest.mark.parametrize("raw", ["event:page", "event:page=/x", "visit:planet==Mars", "==x"])
def test_bad_filters_are_400(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse.parse_filters(raw)


def test_metrics_from_counters() -> None:
    row = {"visits": 4, "bounces": 1, "duration_ms": 10_000, "pageviews": 9, "visitors": 3}
    assert compute(parse.BOUNCE_RATE, row) == 25
    assert compute(parse.VISIT_DURATION, row) == 2  # 2.5 s rounds to even
    assert compute(parse.VIEWS_PER_VISIT, row) == 2.25
    assert compute(parse.CONVERSION_RATE, row, site_visitors=8) == 37.5
    assert compute(parse.TIME_ON_PAGE, {"top_ms": 9000, "top_n": 2}) == 4
    assert compute(parse.BOUNCE_RATE, {}) == 0


def test_change_is_percent_or_points() -> None:
    assert change(parse.VISITORS, 150, 100) == 50
    assert change(parse.VISITORS, 5, 0) == 100
    assert change(parse.VISITORS, 0, 0) == 0
    assert change(parse.BOUNCE_RATE, 40, 55) == -15
