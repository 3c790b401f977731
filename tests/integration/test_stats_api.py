"""The Plausible Stats API v1 and our stats API, checked against the stats oracle on generated
multi-day traffic (through the real ingest, aggregator and query handlers)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.faults import stored_events
from tests.integration.stats_world import FIRST, LAST, SITE, TZ, World
from tests.stats_oracle import StatsOracle, matcher, metric

ALL = "visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration,events"
CUSTOM = f"{FIRST},{LAST}"


def expected(world: World, metrics: str, first: date, last: date, **filt: Any) -> dict[str, Any]:
    counts = world.oracle.counts(first, last, **filt)
    site_visitors = world.oracle.counts(first, last)["visitors"]
    return {m: metric(m, counts, site_visitors) for m in metrics.split(",")}


def values(body: dict[str, Any]) -> dict[str, Any]:
    return {m: v["value"] for m, v in body["results"].items()}


# ---- aggregate ---------------------------------------------------------------------------------


def test_the_traffic_spans_the_range_and_every_dimension(world: World) -> None:
    days = {world.oracle._day(v.first) for v in world.oracle.visits}
    assert min(days) == FIRST and max(days) >= LAST - timedelta(days=1)
    assert world.oracle.values("event:props:plan", FIRST, LAST) == {"free", "pro"}


def test_aggregate_of_a_custom_range_equals_the_oracle(world: World) -> None:
    body = world.ok("/api/v1/stats/aggregate", period="custom", date=CUSTOM, metrics=ALL)
    assert values(body) == expected(world, ALL, FIRST, LAST)
    assert values(body)["pageviews"] > 50


def test_aggregate_of_each_day_equals_the_oracle(world: World) -> None:
    day = FIRST
    while day <= LAST:
        body = world.ok("/api/v1/stats/aggregate", period="day", date=str(day), metrics=ALL)
        assert values(body) == expected(world, ALL, day, day), day
        day += timedelta(days=1)


def test_default_period_is_30d_ending_today_in_the_site_time_zone(world: World) -> None:
    body = world.ok("/api/v1/stats/aggregate")
    assert values(body) == expected(world, "visitors", LAST - timedelta(days=30), LAST)


def test_compare_previous_period(world: World) -> None:
    body = world.ok(
        "/api/v1/stats/aggregate",
        period="7d",
        date=str(LAST),
        metrics="pageviews,bounce_rate",
        compare="previous_period",
    )
    now = expected(world, "pageviews,bounce_rate", LAST - timedelta(days=6), LAST)
    before = expected(
        world, "pageviews,bounce_rate", LAST - timedelta(days=13), LAST - timedelta(days=7)
    )
    pv = body["results"]["pageviews"]
    assert pv["value"] == now["pageviews"] and pv["comparison_value"] == before["pageviews"]
    if before["pageviews"]:
        assert pv["change"] == round(
            100 * (now["pageviews"] - before["pageviews"]) / before["pageviews"]
        )
    br = body["results"]["bounce_rate"]
    assert br["change"] == now["bounce_rate"] - before["bounce_rate"]


@pytest.mark.parametrize(
    ("filters", "prop", "values_", "negated", "metrics"),
    [
        (
            "visit:source==Google",
            "visit:source",
            ["Google"],
            False,
            "visitors,visits,pageviews,bounce_rate,visit_duration",
        ),
        (
            "visit:browser==Chrome|Firefox",
            "visit:browser",
            ["Chrome", "Firefox"],
            False,
            "visitors,visits,pageviews",
        ),
        (
            "visit:entry_page==/blog",
            "visit:entry_page",
            ["/blog"],
            False,
            "visitors,visits,bounce_rate",
        ),
        ("visit:utm_source!=news", "visit:utm_source", ["news"], True, "visits,pageviews"),
        (
            "event:page==/blog",
            "event:page",
            ["/blog"],
            False,
            "visitors,pageviews,time_on_page,scroll_depth",
        ),
        (
            "event:page==/blog*",
            "event:page",
            ["/blog*"],
            False,
            "pageviews,time_on_page,scroll_depth",
        ),
        ("event:page!=/blog", "event:page", ["/blog"], True, "pageviews"),
        ("event:goal==Signup", "event:goal", ["Signup"], False, "visitors,events,conversion_rate"),
        # (a pageview goal counts once configured: test_query_hardening.py)
        ("event:name==Signup", "event:name", ["Signup"], False, "visitors,events"),
        ("event:props:plan==pro", "event:props:plan", ["pro"], False, "visitors,events"),
        (
            "event:hostname==stats.example",
            "event:hostname",
            ["stats.example"],
            False,
            "visitors,pageviews,events",
        ),
    ],
)
def test_filtered_aggregate_equals_the_oracle(
    world: World, filters: str, prop: str, values_: list[str], negated: bool, metrics: str
) -> None:
    body = world.ok(
        "/api/v1/stats/aggregate", period="custom", date=CUSTOM, metrics=metrics, filters=filters
    )
    want = expected(world, metrics, FIRST, LAST, prop=prop, match=matcher(values_, negated))
    assert values(body) == want
    assert any(want.values()), "the filter should select some traffic"


# ---- timeseries --------------------------------------------------------------------------------


def test_daily_timeseries_is_zero_filled_and_equals_the_oracle(world: World) -> None:
    body = world.ok(
        "/api/v1/stats/timeseries",
        period="custom",
        date="2026-10-20,2026-11-06",
        metrics="visitors,pageviews,visits",
    )
    rows = body["results"]
    assert [r["date"] for r in rows] == [
        str(date(2026, 10, 20) + timedelta(days=n)) for n in range(18)
    ]
    for row in rows:
        day = date.fromisoformat(row["date"])
        assert {k: v for k, v in row.items() if k != "date"} == expected(
            world, "visitors,pageviews,visits", day, day
        )


def test_filtered_timeseries_equals_the_oracle(world: World) -> None:
    body = world.ok(
        "/api/v1/stats/timeseries",
        period="7d",
        date=str(LAST),
        interval="date",
        metrics="visitors,pageviews",
        filters="event:page==/pricing",
    )
    for row in body["results"]:
        day = date.fromisoformat(row["date"])
        want = expected(
            world, "visitors,pageviews", day, day, prop="event:page", match=matcher(["/pricing"])
        )
        assert {"visitors": row["visitors"], "pageviews": row["pageviews"]} == want


def test_monthly_timeseries_reads_month_items(world: World) -> None:
    body = world.ok(
        "/api/v1/stats/timeseries", period="6mo", date=str(LAST), metrics="visitors,pageviews"
    )
    rows = body["results"]
    assert [r["date"] for r in rows] == [
        "2026-06-01",
        "2026-07-01",
        "2026-08-01",
        "2026-09-01",
        "2026-10-01",
        "2026-11-01",
    ]
    monthly = monthly_oracle(world)
    assert (
        rows[4]["pageviews"] == monthly.counts(date(2026, 10, 1), date(2026, 10, 31))["pageviews"]
    )
    assert rows[4]["visitors"] == monthly.counts(date(2026, 10, 1), date(2026, 10, 31))["visitors"]
    assert rows[5]["visitors"] == monthly.counts(date(2026, 11, 1), date(2026, 11, 30))["visitors"]
    assert rows[0]["visitors"] == 0


def monthly_oracle(world: World) -> StatsOracle:
    events = stored_events(world.pipeline.ddb, world.pipeline.names)
    return StatsOracle(events, TZ, unit="month")


def test_hourly_timeseries_for_one_day(world: World) -> None:
    body = world.ok(
        "/api/v1/stats/timeseries", period="day", date="2026-10-29", metrics="pageviews"
    )
    rows = body["results"]
    assert len(rows) == 24 and rows[0]["date"] == "2026-10-29 00:00:00"
    assert (
        sum(r["pageviews"] for r in rows)
        == expected(world, "pageviews", date(2026, 10, 29), date(2026, 10, 29))["pageviews"]
    )


# ---- breakdown ---------------------------------------------------------------------------------

BREAKDOWNS = [
    ("visit:source", "visitors,visits,pageviews,bounce_rate,visit_duration"),
    ("visit:referrer", "visitors,visits"),
    ("visit:utm_campaign", "visitors,pageviews"),
    ("visit:browser", "visitors,visits"),
    ("visit:os", "visitors"),
    ("visit:device", "visitors,pageviews"),
    ("visit:entry_page", "visitors,visits,bounce_rate"),
    ("visit:exit_page", "visits,visitors"),
    ("event:page", "visitors,pageviews,time_on_page,scroll_depth"),
    ("event:name", "visitors,events"),
    ("event:props:plan", "visitors,events"),
    ("event:hostname", "visitors,events"),
]


@pytest.mark.parametrize(("prop", "metrics"), BREAKDOWNS)
def test_breakdown_equals_the_oracle(world: World, prop: str, metrics: str) -> None:
    body = world.ok(
        "/api/v1/stats/breakdown", period="custom", date=CUSTOM, property=prop, metrics=metrics
    )
    key = prop.split(":")[-1]
    want = []
    for value in world.oracle.values(prop, FIRST, LAST):
        row = expected(
            world, metrics, FIRST, LAST, prop=prop, match=lambda v, value=value: v == value
        )
        want.append({key: value, **row})
    first = metrics.split(",")[0]
    want = [w for w in want if any(w[m] for m in metrics.split(","))]
    want.sort(key=lambda r: (-r[first], r[key]))
    assert body["results"] == want
    assert want, "the breakdown should have rows"


def test_goal_breakdown_with_conversion_rate(world: World) -> None:
    body = world.ok(
        "/api/v1/stats/breakdown",
        period="custom",
        date=CUSTOM,
        property="event:goal",
        metrics="visitors,events,conversion_rate",
    )
    (row,) = body["results"]
    assert row == {
        "goal": "Signup",
        **expected(
            world,
            "visitors,events,conversion_rate",
            FIRST,
            LAST,
            prop="event:goal",
            match=matcher(["Signup"]),
        ),
    }


def test_breakdown_pages_and_limit(world: World) -> None:
    everything = world.ok(
        "/api/v1/stats/breakdown", period="custom", date=CUSTOM, property="event:page"
    )["results"]
    assert len(everything) >= 4
    page1 = world.ok(
        "/api/v1/stats/breakdown", period="custom", date=CUSTOM, property="event:page", limit="2"
    )["results"]
    page2 = world.ok(
        "/api/v1/stats/breakdown",
        period="custom",
        date=CUSTOM,
        property="event:page",
        limit="2",
        page="2",
    )["results"]
    assert page1 + page2 == everything[:4]


def test_breakdown_filtered_on_its_own_property(world: World) -> None:
    body = world.ok(
        "/api/v1/stats/breakdown",
        period="custom",
        date=CUSTOM,
        property="event:page",
        filters="event:page==/blog*",
        metrics="pageviews",
    )
    assert {r["page"] for r in body["results"]} == {"/blog", "/blog/a"}


# ---- our own API -------------------------------------------------------------------------------


def test_own_api_aggregate_names_the_range_and_compares(world: World) -> None:
    body = world.ok(
        "/api/stats/aggregate", period="custom", **{"from": str(FIRST), "to": str(LAST)}
    )
    assert body["range"] == {"first": str(FIRST), "last": str(LAST), "tz": TZ}
    assert body["previous_range"]["last"] == str(FIRST - timedelta(days=1))
    assert {m: v["value"] for m, v in body["results"].items()} == expected(
        world, "visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration", FIRST, LAST
    )


def test_own_api_breakdown_takes_short_property_names(world: World) -> None:
    short = world.ok("/api/stats/breakdown", period="custom", date=CUSTOM, property="prop:plan")
    v1 = world.ok(
        "/api/v1/stats/breakdown", period="custom", date=CUSTOM, property="event:props:plan"
    )
    assert short["results"] == v1["results"] and short["property"] == "event:props:plan"
    assert short["folded"] is False


# ---- errors: Plausible's messages, or a clear reason when counters cannot answer exactly ------

ERRORS = [
    ({"period": "week"}, "Error parsing `period` parameter: invalid period `week`."),
    ({"period": "custom"}, "The `date` parameter is required when using a custom period."),
    ({"period": "custom", "date": "2026-01-01"}, "Invalid format for `date` parameter."),
    ({"date": "yesterday"}, "Error parsing `date` parameter:"),
    ({"metrics": "visitors,hits"}, "The metric `hits` is not recognized."),
    ({"metrics": "visitors,visitors"}, "Metrics cannot be queried multiple times."),
    (
        {"metrics": "time_on_page"},
        "Metric `time_on_page` can only be queried in a page breakdown or with a page filter.",
    ),
    (
        {"metrics": "conversion_rate"},
        "Metric `conversion_rate` can only be queried in a goal breakdown or with a goal filter",
    ),
    (
        {"metrics": "bounce_rate", "filters": "event:goal==Signup"},
        "Session metric `bounce_rate` cannot be queried when using a filter on `event:goal`.",
    ),
    ({"filters": "visit:planet==Mars"}, "Invalid filter property 'visit:planet'."),
]


@pytest.mark.parametrize(("params", "message"), ERRORS)
def test_invalid_aggregate_parameters_get_400_with_a_clear_message(
    world: World, params: dict[str, str], message: str
) -> None:
    status, body = world.get("/api/v1/stats/aggregate", **params)
    assert status == 400 and body["error"].startswith(message), body


BREAKDOWN_ERRORS = [
    ({}, "The `property` parameter is required."),
    ({"property": "visit:planet"}, "Invalid property 'visit:planet'."),
    (
        {"property": "event:page", "limit": "0"},
        "Please provide limit as a number between 1 and 1000.",
    ),
    (
        {"property": "event:page", "limit": "1001"},
        "Please provide limit as a number between 1 and 1000.",
    ),
    ({"property": "event:page", "page": "-1"}, "Please provide page as a positive number."),
    (
        {"property": "event:goal", "metrics": "visits"},
        "Session metric `visits` cannot be queried for breakdown by `event:goal`.",
    ),
]


@pytest.mark.parametrize(("params", "message"), BREAKDOWN_ERRORS)
def test_invalid_breakdown_parameters_get_400_with_a_clear_message(
    world: World, params: dict[str, str], message: str
) -> None:
    status, body = world.get("/api/v1/stats/breakdown", **params)
    assert status == 400 and body["error"].startswith(message), body


# What the counters refuse (decision 0007) the planner sends to the archive (0031): a 200 from it
# where there is one, and the counters' reason, a 400, where there is none.
REFUSED_BY_THE_COUNTERS = [
    (
        "/api/v1/stats/aggregate",
        {"filters": "visit:source==Google;event:page==/"},
        "Filtering on two properties at once",
    ),
    (
        "/api/v1/stats/aggregate",
        {"filters": "event:page==/blog*"},
        "Visitors of several `event:page` values cannot be added up exactly",
    ),
    (
        "/api/v1/stats/aggregate",
        {"filters": "visit:country!=DE"},
        "Visitors with a negated `visit:country` filter cannot be counted exactly",
    ),
    (
        "/api/v1/stats/aggregate",
        {"metrics": "visits", "filters": "event:page==/"},
        "Metric `visits` is not kept per event:page value.",
    ),
    (
        "/api/v1/stats/breakdown",
        {"property": "visit:source", "filters": "event:page==/"},
        "A breakdown by `visit:source` filtered by `event:page`",
    ),
    (
        "/api/v1/stats/breakdown",
        {"property": "visit:source", "metrics": "events"},
        "Metric `events` is not kept per visit:source value.",
    ),
]


@pytest.mark.parametrize(("path", "params", "message"), REFUSED_BY_THE_COUNTERS)
def test_what_the_counters_refuse_the_archive_answers(
    world: World, path: str, params: dict[str, str], message: str
) -> None:
    response = world.pipeline.get(
        path + "?" + "&".join(f"{k}={quote(v)}" for k, v in {"site_id": SITE, **params}.items()),
        world.key,
    )
    assert response.status == 200, response.body
    assert response.headers["x-liveinsight-answered-from"] == "archive"


@pytest.mark.usefixtures("without_archive")
@pytest.mark.parametrize(("path", "params", "message"), REFUSED_BY_THE_COUNTERS)
def test_without_an_archive_the_counters_refusal_is_a_400_with_its_reason(
    world: World, path: str, params: dict[str, str], message: str
) -> None:
    status, body = world.get(path, **params)
    assert status == 400 and body["error"].startswith(message), body


def test_invalid_interval(world: World) -> None:
    status, body = world.get("/api/v1/stats/timeseries", interval="week")
    assert status == 400
    assert body["error"] == (
        "Error parsing `interval` parameter: invalid interval `week`. Valid intervals are `day`, "
        "`month`"
    )
