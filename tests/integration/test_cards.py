"""Dashboard cards (HTML fragments) show what the stats API returns, escape event text, and
export CSV and ZIP."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import zipfile

import pytest

from tests.integration.stats_world import FIRST, LAST, SITE, World

RANGE = {"period": "custom", "from": str(FIRST), "to": str(LAST)}
CUSTOM = f"{FIRST},{LAST}"


def card(world: World, path: str, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"site_id": SITE, **RANGE, **params}.items())
    response = world.pipeline.get(f"/api/cards/{path}?{query}", world.key)
    assert response.status == 200, response.body
    assert response.headers["content-type"].startswith("text/html")
    return str(response.body)


def test_metric_row_shows_the_aggregate_and_marks_the_graphed_metric(world: World) -> None:
    fragment = card(world, "metrics", metric="pageviews")
    shown = dict(re.findall(r'data-testid="metric-(\w+)" data-value="([\d.]+)"', fragment))
    aggregate = world.ok("/api/stats/aggregate", **RANGE)["results"]
    assert {m: float(v) for m, v in shown.items()} == {
        m: float(v["value"]) for m, v in aggregate.items()
    }
    assert re.search(r'data-metric="pageviews" aria-pressed="true"', fragment)
    assert re.search(r'data-metric="visitors" aria-pressed="false"', fragment)


def test_metric_row_shows_visits_of_a_page_from_the_archive(world: World) -> None:
    fragment = card(world, "metrics", filters="event:page%3D%3D/blog")
    visits = world.ok(
        "/api/stats/aggregate", **RANGE, metrics="visits", filters="event:page==/blog"
    )
    assert visits["answered_from"] == "archive"
    value = visits["results"]["visits"]["value"]
    assert f'data-testid="metric-visits" data-value="{value}"' in fragment
    assert "disabled" not in re.search(r'<[^>]*data-metric="visits"[^>]*>', fragment).group(0)  # type: ignore[union-attr]


@pytest.mark.usefixtures("without_archive")
def test_without_an_archive_the_metric_row_explains_a_metric_the_filter_rules_out(
    world: World,
) -> None:
    fragment = card(world, "metrics", filters="event:page%3D%3D/blog")
    visits = re.search(r'data-metric="visits"[^>]*disabled title="([^"]+)"', fragment)
    assert visits and "is not kept per event:page value" in html.unescape(visits.group(1))
    assert 'data-testid="metric-visitors" data-value=' in fragment


def test_graph_carries_the_timeseries(world: World) -> None:
    fragment = card(world, "graph", metric="visitors")
    chart = json.loads(html.unescape(re.search(r"data-chart='([^']*)'", fragment).group(1)))  # type: ignore[union-attr]
    series = world.ok("/api/stats/timeseries", **RANGE, metrics="visitors")["results"]
    assert chart["data"]["labels"] == [p["date"] for p in series]
    assert chart["data"]["datasets"][0]["data"] == [p["visitors"] for p in series]


def test_breakdown_rows_are_the_stats_rows_and_filter_buttons(world: World) -> None:
    fragment = card(world, "breakdown", property="source")
    v1 = world.ok(
        "/api/v1/stats/breakdown", period="custom", date=CUSTOM, property="visit:source", limit="10"
    )["results"]
    buttons = re.findall(r'data-filter="([^"]+)"[^>]*>([^<]+)</button>', fragment)
    assert [html.unescape(label) for _, label in buttons] == [r["source"] for r in v1]
    assert [html.unescape(f) for f, _ in buttons] == [f"visit:source=={r['source']}" for r in v1]


def test_a_breakdown_card_filtered_by_another_property_shows_the_archives_rows(
    world: World,
) -> None:
    fragment = card(world, "breakdown", property="source", filters="event:page%3D%3D/blog")
    v1 = world.ok(
        "/api/v1/stats/breakdown",
        period="custom",
        date=CUSTOM,
        property="visit:source",
        filters="event:page==/blog",
        limit="10",
    )["results"]
    assert v1, "the world has visits to /blog"
    buttons = re.findall(r'data-filter="([^"]+)"[^>]*>([^<]+)</button>', fragment)
    assert [html.unescape(label) for _, label in buttons] == [r["source"] for r in v1]
    assert 'data-answered-from="archive"' in fragment and "data-unavailable" not in fragment


@pytest.mark.usefixtures("without_archive")
def test_without_an_archive_the_breakdown_card_says_why_it_cannot_be_filtered(
    world: World,
) -> None:
    fragment = card(world, "breakdown", property="source", filters="event:page%3D%3D/blog")
    assert "data-unavailable" in fragment and "filtered by `event:page`" in html.unescape(fragment)


def test_csv_and_zip_exports(world: World) -> None:
    query = "&".join(f"{k}={v}" for k, v in {"site_id": SITE, **RANGE}.items())
    response = world.pipeline.get(f"/api/cards/breakdown.csv?{query}&property=page", world.key)
    assert response.status == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(str(response.body))))
    v1 = world.ok(
        "/api/v1/stats/breakdown",
        period="custom",
        date=CUSTOM,
        property="event:page",
        metrics="visitors,pageviews",
        limit="1000",
    )["results"]
    assert [(r["page"], int(r["visitors"]), int(r["pageviews"])) for r in rows] == [
        (r["page"], r["visitors"], r["pageviews"]) for r in v1
    ]
    export = world.pipeline.get(f"/api/cards/export.zip?{query}", world.key)
    assert export.status == 200 and export.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(export.raw))
    names = set(archive.namelist())
    assert {"visitors.csv", "source.csv", "page.csv", "goal.csv", "country.csv"} <= names
    assert archive.read("page.csv").decode() == str(response.body)


def test_props_card_lists_the_prop_keys_of_the_period(world: World) -> None:
    fragment = card(world, "props")
    assert re.findall(r'data-prop-key="([^"]+)"', fragment) == ["plan"]
    empty = card(world, "props", period="day", date="2026-01-01")
    assert "data-empty" in empty
