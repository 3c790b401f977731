"""The filter dialog and the graph's comparison in Chromium, against `liveinsight dev`: what the
dialog builds is the v1 filter syntax, and with it every card shows what the JSON API answers for
the same filter string; the graph's comparison line is the timeseries API's for the other range.

The site gets the dashboard tests' traffic (tests/e2e/test_dashboard_e2e.py), under its own name,
on the same session's stack.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest

from query_api.cards import year_earlier
from tests.e2e import test_dashboard_e2e
from tests.e2e.conftest import Stack, wait_for
from tests.e2e.test_dashboard_e2e import (
    UAS,
    VISITS,
    Admin,
    Watched,
    api,
    counted,
    send,
    settled,
    shot,
    shows_breakdown,
    shows_metrics,
    site_params,
    until_equal,
)

pytestmark = pytest.mark.e2e

SITE = "filters-dash.example"
# the page with dialogs, console errors and CSP violations recorded, and checked after each test
watched = test_dashboard_e2e.watched


@pytest.fixture(scope="module")
def key(stack: Stack) -> str:
    """The site with the dashboard tests' visits, counted by the counters and the archive."""
    site_key = Admin(stack).add_site(SITE)
    pageviews = events = 0
    for n, (entry, referrer, country, more) in enumerate(VISITS):
        ip, ua = f"198.51.100.{n + 60}", UAS[n % len(UAS)]
        for path in [entry, *more]:
            body = {"n": "pageview", "u": f"https://{SITE}{path}", "d": SITE}
            if referrer and path == entry:
                body["r"] = referrer
            send(stack, body, ip, ua, cloudfront_viewer_country=country)
            pageviews += 1
        if n % 3 == 0:
            body = {"n": "Signup", "u": f"https://{SITE}/pricing", "d": SITE}
            send(stack, {**body, "p": {"plan": "pro" if n % 2 else "free"}}, ip, ua)
            events += 1
    counted(stack, SITE, site_key, pageviews, pageviews + events)
    # Two properties at once are the archive's: wait until it holds every pageview too
    archived = site_params(
        SITE,
        period="day",
        metrics="pageviews",
        compare="false",
        filters="visit:source!=none.invalid;event:page!=/none.invalid",
    )

    def all_archived() -> bool:
        body = api(stack, "/api/stats/aggregate", archived, site_key)
        return bool(body["results"]["pageviews"]["value"] == pageviews)

    wait_for(all_archived, timeout=30)
    return site_key


def today(stack: Stack, key: str) -> date:
    body = api(stack, "/api/stats/aggregate", site_params(SITE, period="day"), key)
    return date.fromisoformat(body["range"]["first"])


def dialog_open(page: Any) -> bool:
    return bool(page.evaluate("document.getElementById('filter-dialog').open"))


def focused(page: Any) -> str:
    return str(page.evaluate("document.activeElement.id || document.activeElement.tagName"))


def suggestions(page: Any) -> list[str]:
    return list(
        page.evaluate(
            "[...document.querySelectorAll('#filter-suggestions [role=option]')]"
            ".map((o) => o.dataset.value)"
        )
    )


def filters_become(page: Any, filters: str) -> None:
    """Wait until the URL's filters are these (as the page's URLSearchParams reads them)."""
    read = "new URLSearchParams(location.search).get('filters')"
    until_equal(lambda: page.evaluate(read), filters)


def chips(page: Any) -> list[str]:
    return [
        t.strip() for t in page.locator("#filter-chips button[data-edit-filter]").all_inner_texts()
    ]


def test_filter_dialog_builds_is_not_and_contains_filters_and_the_cards_match_the_api(
    stack: Stack, key: str, watched: Watched
) -> None:
    page = watched.page
    day = {"period": "day"}
    page.goto(f"{stack.url}/?site={SITE}&period=day#key={key}")
    shows_metrics(page, stack, site_params(SITE, **day), key)

    # When the filter button is pressed, a modal opens with the keyboard on its first field
    page.click("#open-filter")
    assert dialog_open(page) and focused(page) == "filter-property"
    assert page.get_attribute("#filter-dialog", "aria-labelledby") == "filter-dialog-title"
    for field in ("filter-property", "filter-operator", "filter-value"):
        assert page.locator(f"label[for={field}]").count() == 1
    # And Tab stays inside it, both ways
    inside = "document.getElementById('filter-dialog').contains(document.activeElement)"
    for _ in range(8):
        page.keyboard.press("Tab")
        assert page.evaluate(inside)
    page.focus("#filter-property")
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "filter-apply"
    # And Escape closes it, giving the keyboard back to the button
    page.keyboard.press("Escape")
    assert not dialog_open(page) and focused(page) == "open-filter"

    # When it opens again, the site's custom properties are offered, with their values
    page.click("#open-filter")
    page.locator("#filter-property option[value='event:props:plan']").wait_for(state="attached")
    page.select_option("#filter-property", "event:props:plan")
    plans = api(
        stack,
        "/api/stats/breakdown",
        site_params(SITE, property="event:props:plan", metrics="visitors", limit="100", **day),
        key,
    )["results"]
    until_equal(lambda: suggestions(page), [r["plan"] for r in plans])
    assert set(suggestions(page)) == {"free", "pro"}
    # When Source is picked, the period's sources are suggested, most visitors first
    page.select_option("#filter-property", "visit:source")
    sources = api(
        stack,
        "/api/stats/breakdown",
        site_params(SITE, property="visit:source", metrics="visitors", limit="100", **day),
        key,
    )["results"]
    until_equal(lambda: suggestions(page), [r["source"] for r in sources])
    assert "Google" in suggestions(page)
    # And typing narrows them (any case)
    page.fill("#filter-value", "gOO")
    assert suggestions(page) == ["Google"]
    shot(page, "filter-dialog", full_page=False)
    # When "is not" Google is applied (the suggestion picked with the keyboard)
    page.select_option("#filter-operator", "is_not")
    page.focus("#filter-value")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.locator("#filter-values [data-value=Google]").count() == 1
    page.click("#filter-apply")
    # Then the URL carries the v1 filter, the chip says it in words, the cards the API's numbers
    not_google = "visit:source!=Google"
    filters_become(page, not_google)
    assert not dialog_open(page) and chips(page) == ["Source is not Google"]
    shows_metrics(page, stack, site_params(SITE, filters=not_google, **day), key)

    # When "Page contains blog" is added (typed, not suggested)
    page.click("#open-filter")
    page.select_option("#filter-property", "event:page")
    page.select_option("#filter-operator", "contains")
    page.fill("#filter-value", "blog")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")  # the field is empty now: Enter applies
    both = "visit:source!=Google;event:page==*blog*"
    filters_become(page, both)
    assert chips(page) == ["Source is not Google", "Page contains blog"]
    # Then every card is the API's answer for the same filter string
    shows_metrics(page, stack, site_params(SITE, filters=both, **day), key)
    pages = shows_breakdown(
        page,
        stack,
        "#panel-pages",
        site_params(SITE, property="page", filters=both, **day),
        key,
        ("visitors", "pageviews"),
    )
    assert {row[0] for row in pages} <= {"/blog", "/blog/realtime"}
    shows_breakdown(
        page,
        stack,
        "#panel-sources",
        site_params(SITE, property="source", filters=both, **day),
        key,
    )

    # When the page chip is clicked, the dialog opens on that filter; it becomes "does not contain"
    page.click("#filter-chips button[data-edit-filter='1']")
    assert dialog_open(page)
    assert page.inner_text("#filter-dialog-title") == "Edit filter"
    assert page.input_value("#filter-property") == "event:page"
    assert page.input_value("#filter-operator") == "contains"
    assert page.locator("#filter-values li").all_inner_texts()[0].startswith("blog")
    page.select_option("#filter-operator", "contains_not")
    page.click("#filter-apply")
    edited = "visit:source!=Google;event:page!=*blog*"
    filters_become(page, edited)
    assert chips(page) == ["Source is not Google", "Page does not contain blog"]
    shows_metrics(page, stack, site_params(SITE, filters=edited, **day), key)
    shows_breakdown(
        page,
        stack,
        "#panel-pages",
        site_params(SITE, property="page", filters=edited, **day),
        key,
        ("visitors", "pageviews"),
    )

    # When the source chip is removed, the page filter alone is left
    page.click("#filter-chips button[data-remove-filter='0']")
    filters_become(page, "event:page!=*blog*")
    assert chips(page) == ["Page does not contain blog"]
    shows_metrics(page, stack, site_params(SITE, filters="event:page!=*blog*", **day), key)
    # And a row click still sets its property's filter, replacing the dialog's
    page.click("#tab-pages-page")
    settled(page, "#panel-pages")
    page.click("#panel-pages button[data-filter='event:page==/pricing']")
    filters_become(page, "event:page==/pricing")
    assert chips(page) == ["Page is /pricing"]
    # When a value holds the syntax's separators, they are escaped, and the API agrees
    page.click("#open-filter")
    page.select_option("#filter-property", "visit:utm_campaign")
    page.fill("#filter-value", "a|b;c")
    page.click("#filter-apply")
    escaped = "event:page==/pricing;visit:utm_campaign==a\\|b\\;c"
    filters_become(page, escaped)
    assert chips(page)[1] == "UTM campaign is a|b;c"
    shows_metrics(page, stack, site_params(SITE, filters=escaped, **day), key)


CHART = """() => {
  const canvas = document.querySelector("#graph canvas");
  const chart = canvas && window.Chart && window.Chart.getChart(canvas);
  if (!chart || document.querySelector("#graph[aria-busy=true]")) return null;
  return {
    labels: chart.data.labels,
    datasets: chart.data.datasets.map((d) => ({
      label: d.label, data: d.data, dates: d.dates || null, dashed: Boolean(d.borderDash),
    })),
    legend: chart.options.plugins.legend.display,
  };
}"""

TOOLTIP = """(index) => {
  const chart = window.Chart.getChart(document.querySelector("#graph canvas"));
  chart.tooltip.setActiveElements(
    [{datasetIndex: 0, index}, {datasetIndex: 1, index}], {x: 10, y: 10});
  chart.update();
  return chart.tooltip.body.flatMap((b) => b.lines);
}"""


def test_graph_comparison_draws_the_other_ranges_timeseries_dashed_with_its_dates(
    stack: Stack, key: str, watched: Watched
) -> None:
    page = watched.page
    # Given tomorrow's graph (hour by hour), whose previous period is today, which has traffic
    now = today(stack, key)
    tomorrow = now + timedelta(days=1)
    page.goto(f"{stack.url}/?site={SITE}&period=day&date={tomorrow}#key={key}")
    page.locator("#graph canvas").wait_for()
    # When the comparison with the previous period is chosen
    page.select_option("#compare", "previous_period")
    page.wait_for_url(re.compile(r"compare=previous_period"))
    # Then the chart's second, dashed, labelled line is the timeseries API's for today
    series = api(
        stack, "/api/stats/timeseries", site_params(SITE, period="day", date=str(now)), key
    )["results"]
    assert sum(p["visitors"] for p in series) > 0
    shown = wait_for(lambda: (c := page.evaluate(CHART)) and len(c["datasets"]) == 2 and c)
    current, before = shown["datasets"]
    assert before["data"] == [p["visitors"] for p in series]
    assert before["dates"] == [p["date"][:16] for p in series]
    assert before["dashed"] and not current["dashed"] and shown["legend"] is True
    assert before["label"] == "Visitors, previous period"
    tomorrows = api(
        stack, "/api/stats/timeseries", site_params(SITE, period="day", date=str(tomorrow)), key
    )["results"]
    assert current["data"] == [p["visitors"] for p in tomorrows]
    # And the tooltip names the compared hour's own date
    busiest = max(range(len(series)), key=lambda i: series[i]["visitors"])
    lines = page.evaluate(TOOLTIP, busiest)
    hour = series[busiest]["date"][:16]
    assert lines[1] == f"Visitors, previous period ({hour}): {series[busiest]['visitors']}"
    assert lines[0] == f"Visitors ({tomorrow}{hour[10:]}): 0"
    shot(page, "dashboard-compare", full_page=False)

    # When it is the same period last year, the line is the timeseries of that day
    page.select_option("#compare", "year_over_year")
    page.wait_for_url(re.compile(r"compare=year_over_year"))
    last_year = year_earlier(tomorrow)
    series = api(
        stack, "/api/stats/timeseries", site_params(SITE, period="day", date=str(last_year)), key
    )["results"]
    shown = wait_for(
        lambda: (
            (c := page.evaluate(CHART))
            and len(c["datasets"]) == 2
            and c["datasets"][1]["label"] == "Visitors, same period last year"
            and c
        )
    )
    assert shown["datasets"][1]["data"] == [p["visitors"] for p in series]
    assert shown["datasets"][1]["dates"][0] == f"{last_year} 00:00"
    # And when it is switched off, the graph has one line and the URL no comparison
    page.select_option("#compare", "")
    wait_for(lambda: (c := page.evaluate(CHART)) and len(c["datasets"]) == 1)
    assert "compare=" not in page.url
