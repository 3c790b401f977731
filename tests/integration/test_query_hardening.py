"""Hostile or extreme query input (issue 22): wildcard filters answer at once, goals come only
from the site's goals, a long daily series reads its range once, exports cannot hand a
spreadsheet a formula or break their headers, and dates past the calendar's ends get a 400."""

from __future__ import annotations

import calendar
import csv
import io
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

import pytest

from core import keys
from core.keys import Granularity
from core.sites import SiteStore
from tests.faults import stored_events
from tests.integration.pipeline import Pipeline, Response
from tests.integration.stats_world import FIRST, LAST, SITE, TZ, World
from tests.stats_oracle import StatsOracle, matcher, metric

MOMENT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # when the small sites' traffic happens
# A generous bound on a hostile filter (it took a minute or more with a backtracking regex), for
# correctness, not speed: a normal answer takes a small fraction of it.
PROMPTLY_S = 10.0
LONG_PAGE = "/" + "a" * 40


def url(path: str, **params: str) -> str:
    return path + "?" + "&".join(f"{k}={quote(v, safe=',:')}" for k, v in params.items())


@pytest.fixture()
def small_site(
    aws_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    set_clock: Callable[[datetime], None],
) -> Callable[..., tuple[Pipeline, str]]:
    """A public site (with `goals`) and some events at MOMENT, the query clock an hour later."""
    import ingest.handler

    def make(events: list[dict[str, Any]], goals: tuple[str, ...] = ()) -> tuple[Pipeline, str]:
        pipeline = Pipeline(aws_env)
        SiteStore(pipeline.ddb, pipeline.names["meta"], cache_seconds=0).add(
            "h.example", public=True, goals=goals
        )
        monkeypatch.setattr(ingest.handler, "now", lambda: MOMENT)
        for i, event in enumerate(events):
            body = {"d": "h.example", "u": "https://h.example/", **event}
            assert pipeline.send(body, ip=f"198.51.100.{i % 200 + 1}").status == 202
        pipeline.pump()
        set_clock(MOMENT + timedelta(hours=1))
        return pipeline, "h.example"

    return make


def pageview(page: str) -> dict[str, Any]:
    return {"n": "pageview", "u": f"https://h.example{page}"}


# ---- 1. wildcards and goals --------------------------------------------------------------------


def test_a_wildcard_page_filter_against_a_long_stored_page_answers_at_once(
    small_site: Callable[..., tuple[Pipeline, str]],
) -> None:
    pipeline, site = small_site([pageview(LONG_PAGE), pageview("/aX")])
    # Without a key, on a public site: a regex of ten `.*` against the stored 41-character page
    # backtracked for minutes.
    started = time.monotonic()
    response = pipeline.get(
        url(
            "/api/v1/stats/aggregate",
            site_id=site,
            period="day",
            metrics="pageviews",
            filters="event:page==/**********X",
        )
    )
    assert time.monotonic() - started < PROMPTLY_S
    assert response.status == 200, response.body
    assert response.json()["results"]["pageviews"]["value"] == 1  # /aX only


def test_the_demo_sites_hanging_goal_filter_answers_at_once(
    small_site: Callable[..., tuple[Pipeline, str]],
) -> None:
    pipeline, site = small_site([pageview(LONG_PAGE)] * 2, goals=(f"Visit {LONG_PAGE}",))
    hostile = f"event:goal==Visit /**********X|Visit {LONG_PAGE}"
    started = time.monotonic()
    response = pipeline.get(
        url(
            "/api/v1/stats/aggregate", site_id=site, period="day", metrics="events", filters=hostile
        )
    )
    assert time.monotonic() - started < PROMPTLY_S
    assert response.status == 200, response.body
    assert response.json()["results"]["events"]["value"] == 2


def test_a_pageview_goal_is_counted_only_once_configured(
    small_site: Callable[..., tuple[Pipeline, str]],
) -> None:
    events = [pageview("/pricing"), pageview("/pricing"), {"n": "Signup"}]
    pipeline, site = small_site(events, goals=("Signup", "Visit /pricing"))
    params = {"site_id": site, "period": "day", "metrics": "visitors,events"}
    configured = pipeline.get(
        url("/api/v1/stats/aggregate", filters="event:goal==Visit /pricing", **params)
    )
    assert configured.status == 200, configured.body
    assert configured.json()["results"] == {"visitors": {"value": 2}, "events": {"value": 2}}
    breakdown = pipeline.get(url("/api/v1/stats/breakdown", property="event:goal", **params))
    assert [r["goal"] for r in breakdown.json()["results"]] == ["Visit /pricing", "Signup"]


def test_a_filter_value_never_becomes_a_goal(
    small_site: Callable[..., tuple[Pipeline, str]],
) -> None:
    # No goals configured: the goals are the custom event names, so `Visit /pricing` is none
    # of them (it used to be made a goal for the query, counting /pricing's pageviews).
    pipeline, site = small_site([pageview("/pricing"), {"n": "Signup"}])
    params = {"site_id": site, "period": "day", "metrics": "events"}
    response = pipeline.get(
        url("/api/v1/stats/aggregate", filters="event:goal==Visit /pricing", **params)
    )
    assert response.status == 400
    assert "`/pricing` is not configured" in response.json()["error"]
    wildcard = pipeline.get(url("/api/v1/stats/aggregate", filters="event:goal==Visit*", **params))
    assert wildcard.status == 200 and wildcard.json()["results"]["events"]["value"] == 0
    signup = pipeline.get(url("/api/v1/stats/aggregate", filters="event:goal==Sign*", **params))
    assert signup.json()["results"]["events"]["value"] == 1
    hostile = f"event:goal==Visit /**********X|Visit {LONG_PAGE}"  # as on the demo site
    started = time.monotonic()
    refused = pipeline.get(url("/api/v1/stats/aggregate", filters=hostile, **params))
    assert time.monotonic() - started < PROMPTLY_S
    assert refused.status == 400 and f"`{LONG_PAGE}` is not configured" in refused.json()["error"]


# ---- 2. a long daily series reads its range once -----------------------------------------------


@pytest.fixture()
def aggregate_queries(world: World) -> Iterator[list[dict[str, Any]]]:
    """The DynamoDB Query calls the query API makes to the aggregates table."""
    from query_api.deps import get_deps

    client = get_deps().counters._client  # the handler's own (one per cold start)
    table = world.pipeline.names["aggregates"]
    calls: list[dict[str, Any]] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == table:
            calls.append(params)

    client.meta.events.register("before-parameter-build.dynamodb.Query", count)
    yield calls
    client.meta.events.unregister("before-parameter-build.dynamodb.Query", count)


THREE_YEARS = f"{LAST - timedelta(days=3 * 365)},{LAST}"


def oracle_row(world: World, metrics: str, first: date, last: date, **filt: Any) -> dict[str, Any]:
    counts = world.oracle.counts(first, last, **filt)
    site_visitors = world.oracle.counts(first, last)["visitors"]
    return {m: metric(m, counts, site_visitors) for m in metrics.split(",")}


@pytest.mark.parametrize(
    ("filters", "filt"),
    [
        ("", {}),
        ("event:page==/pricing", {"prop": "event:page", "match": matcher(["/pricing"])}),
    ],
)
def test_a_three_year_daily_series_reads_its_range_once_and_equals_the_oracle(
    world: World, aggregate_queries: list[dict[str, Any]], filters: str, filt: dict[str, Any]
) -> None:
    metrics = "visitors,pageviews"
    params = {"period": "custom", "date": THREE_YEARS, "interval": "date", "metrics": metrics}
    if filters:
        params["filters"] = filters
    aggregate_queries.clear()
    rows = world.ok("/api/v1/stats/timeseries", **params)["results"]
    three_years = len(aggregate_queries)
    assert len(rows) == 3 * 365 + 1
    aggregate_queries.clear()
    world.ok("/api/v1/stats/timeseries", **{**params, "date": f"{FIRST},{LAST}"})
    # one Query per dimension read and one per key of the pending slots (0018), whatever the
    # number of days
    assert three_years == len(aggregate_queries) <= 3 + keys.SLOT_PARTITIONS
    seen = 0
    for row in rows:
        day = date.fromisoformat(row["date"])
        want = oracle_row(world, metrics, day, day, **filt) if FIRST <= day <= LAST else None
        assert {m: row[m] for m in metrics.split(",")} == (want or {"visitors": 0, "pageviews": 0})
        seen += row["pageviews"]
    assert seen == oracle_row(world, "pageviews", FIRST, LAST, **filt)["pageviews"] > 0


def test_a_three_year_monthly_series_equals_the_oracle_in_few_queries(
    world: World, aggregate_queries: list[dict[str, Any]]
) -> None:
    metrics = "visitors,visits,pageviews,bounce_rate"
    aggregate_queries.clear()
    rows = world.ok(
        "/api/stats/timeseries",
        period="custom",
        **{"from": str(LAST - timedelta(days=3 * 365)), "to": str(LAST)},
        interval="month",
        metrics=metrics,
    )["results"]
    # leading days, whole months, trailing days: a dimension and the slot keys (0018) each
    assert len(aggregate_queries) <= 3 * (1 + keys.SLOT_PARTITIONS)
    assert len(rows) == 37
    # visitors of a whole month are the month's distinct ids; of part of one, the days' sum
    monthly = StatsOracle(stored_events(world.pipeline.ddb, world.pipeline.names), TZ, "month")
    for row in rows:
        first = max(date.fromisoformat(row["date"]), LAST - timedelta(days=3 * 365))
        month_end = first.replace(day=calendar.monthrange(first.year, first.month)[1])
        last = min(month_end, LAST)
        whole = first.day == 1 and last == month_end
        oracle = World(world.pipeline, world.key, monthly) if whole else world
        assert {m: row[m] for m in metrics.split(",")} == oracle_row(oracle, metrics, first, last)


def read_ranges(calls: list[dict[str, Any]]) -> Iterator[tuple[str, int]]:
    """(partition, days between the sk bounds) of each Query over day buckets."""
    for call in calls:
        bounds = call["ExpressionAttributeValues"]
        try:
            low, high = (date.fromisoformat(bounds[b]["S"][:10]) for b in (":a", ":b"))
        except ValueError:
            continue  # month buckets
        yield bounds[":pk"]["S"], (high - low).days + 1


def test_the_graph_card_and_export_of_three_years_read_the_range_once(
    world: World, aggregate_queries: list[dict[str, Any]]
) -> None:
    span = {"period": "custom", "from": str(LAST - timedelta(days=3 * 365)), "to": str(LAST)}
    aggregate_queries.clear()
    graph = world.pipeline.get(url("/api/cards/graph", site_id=SITE, **span), world.key)
    assert graph.status == 200 and len(aggregate_queries) <= 3 + keys.SLOT_PARTITIONS
    aggregate_queries.clear()
    export = world.pipeline.get(url("/api/cards/export.zip", site_id=SITE, **span), world.key)
    assert export.status == 200
    # the series (a dimension and the pending slots), then the 21 breakdowns (22 dimensions with
    # the goals' event names) over three segments and their pending slots (a Query per slot
    # key, 0018): not one per day
    assert len(aggregate_queries) <= 1 + keys.SLOT_PARTITIONS + 22 * 3 + 3 * keys.SLOT_PARTITIONS
    # and the breakdowns read their own days, not the series' three years of them
    assert {pk for pk, days in read_ranges(aggregate_queries) if days > 31} == {
        keys.counter_pk(SITE, Granularity.DAY, keys.TOTALS),
        *keys.slot_pks(SITE, Granularity.DAY),
    }
    daily = list(
        csv.DictReader(
            io.StringIO(zipfile.ZipFile(io.BytesIO(export.raw)).read("visitors.csv").decode())
        )
    )
    assert len(daily) == 3 * 365 + 1


# ---- 3. exports --------------------------------------------------------------------------------

FORMULA_KEY = "=cmd|' /C calc'!A0"
ODD_KEYS = [FORMULA_KEY, "名前", 'a"b\r\nContent-Type: text/html', "@sum", "-1+1", "plain"]


def download(pipeline: Pipeline, site: str, key: str) -> Response:
    return pipeline.get(
        url("/api/cards/breakdown.csv", site_id=site, period="day", property=f"prop:{key}")
    )


@pytest.mark.parametrize("key", ODD_KEYS)
def test_a_prop_key_reaches_the_csv_header_as_text_and_the_filename_encoded(
    small_site: Callable[..., tuple[Pipeline, str]], key: str
) -> None:
    pipeline, site = small_site([{"n": "Signup", "p": {key: "x"}}])
    response = download(pipeline, site, key)
    assert response.status == 200, response.body
    (header, row) = list(csv.reader(io.StringIO(response.body)))[:2]
    assert header[0] == ("'" + key if key[0] in "=+-@" else key)
    assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") for cell in header)
    assert row[0] == "x"
    disposition = response.headers["content-disposition"]
    disposition.encode("latin-1")  # a header value HTTP can carry
    assert "\r" not in disposition and "\n" not in disposition
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and '"' not in fallback and fallback.endswith(".csv")
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == f"{site}-{key}.csv"


def test_the_zip_export_names_its_members_after_fixed_properties(
    small_site: Callable[..., tuple[Pipeline, str]],
) -> None:
    pipeline, site = small_site([{"n": "Signup", "p": {FORMULA_KEY: "x"}}, pageview("/=1+1")])
    export = pipeline.get(url("/api/cards/export.zip", site_id=site, period="day"))
    assert export.status == 200
    assert export.headers["content-disposition"].startswith(
        'attachment; filename="h.example-export.zip"'
    )
    archive = zipfile.ZipFile(io.BytesIO(export.raw))
    for name in archive.namelist():
        assert name.isascii() and "/" not in name and name.endswith(".csv")
        for row in csv.reader(io.StringIO(archive.read(name).decode())):
            assert not any(cell[:1] in ("=", "+", "-", "@") for cell in row), (name, row)
    assert "/=1+1" in archive.read("page.csv").decode()  # a page starts with "/": as it is


# ---- 4. dates past the calendar's ends ---------------------------------------------------------

ROUTES = [
    ("/api/v1/stats/aggregate", {}),
    ("/api/v1/stats/aggregate", {"compare": "previous_period"}),
    ("/api/v1/stats/timeseries", {}),
    ("/api/v1/stats/breakdown", {"property": "event:page"}),
    ("/api/stats/aggregate", {}),
    ("/api/stats/aggregate", {"compare": "false"}),
    ("/api/stats/timeseries", {}),
    ("/api/stats/breakdown", {"property": "page"}),
    ("/api/cards/metrics", {}),
    ("/api/cards/graph", {}),
    ("/api/cards/breakdown", {"property": "source"}),
    ("/api/cards/props", {}),
    ("/api/cards/breakdown.csv", {"property": "page"}),
    ("/api/cards/export.zip", {}),
]
EXTREME_DATES = [
    {"period": "7d", "date": "0001-01-03"},
    {"period": "day", "date": "9999-12-31"},
    {"period": "day", "date": "0001-01-01"},  # its previous day is before the calendar
    {"period": "30d", "date": "0001-01-31"},
    {"period": "month", "date": "9999-12-05"},
    {"period": "12mo", "date": "0001-03-01"},
    {"period": "6mo", "date": "9999-12-01"},
    {"period": "year", "date": "9999-01-01"},
    {"period": "custom", "date": "0001-01-01,0001-01-05"},
    {"period": "custom", "date": "9999-12-01,9999-12-31"},
]


@pytest.mark.parametrize("dates", EXTREME_DATES, ids=lambda d: f"{d['period']}-{d['date']}")
@pytest.mark.parametrize(
    ("path", "extra"), ROUTES, ids=[f"{p}{'?' + ','.join(e) if e else ''}" for p, e in ROUTES]
)
def test_a_date_past_the_calendars_ends_is_a_400(
    world: World, path: str, extra: dict[str, str], dates: dict[str, str]
) -> None:
    response = world.pipeline.get(url(path, site_id=SITE, **dates, **extra), world.key)
    assert response.status == 400, (response.status, response.body[:300])
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize(
    "dates",
    [
        {"period": "day", "date": "0001-01-03"},
        {"period": "day", "date": "9999-12-30"},
        {"period": "custom", "date": "9999-12-01,9999-12-30"},
    ],
)
def test_the_first_and_last_days_the_calendar_can_compare_are_answered(
    world: World, dates: dict[str, str]
) -> None:
    # (hourly figures of year 1 are refused for another reason: the zone's offset then was
    # local mean time, not whole hours; the graph falls back to one daily point)
    for path, extra in (
        ("/api/stats/aggregate", {}),
        ("/api/v1/stats/timeseries", {"interval": "date"}),
        ("/api/cards/graph", {}),
    ):
        response = world.pipeline.get(url(path, site_id=SITE, **dates, **extra), world.key)
        assert response.status == 200, (path, response.body[:300])
