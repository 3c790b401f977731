"""The dashboard in Chromium against `liveinsight dev`: every view shows what the stats API says.

Traffic goes to POST /api/event like a browser's (a desktop user agent, one X-Forwarded-For per
visitor, which the local front believes from 127.0.0.1); each test then compares what the page
shows with the JSON of /api/stats or /api/v1/stats for the same parameters (those are checked
against the oracle elsewhere). The page is watched for dialogs and CSP violations throughout.

`UPDATE_SCREENSHOTS=1` saves the screenshots shown in the README under docs/screenshots/.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest

from query_api import geo
from tests.e2e.conftest import DESKTOP_UA, REPO, Stack, wait_for

pytestmark = pytest.mark.e2e

SCREENSHOTS = REPO / "docs" / "screenshots"
UPDATE_SCREENSHOTS = os.environ.get("UPDATE_SCREENSHOTS") == "1"
PHONE = {"width": 375, "height": 740}
TILES = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration")

SITE = "dash.example"  # private: read with its key, a shared link, or the admin's session
OPEN_SITE = "open-dash.example"  # public: listed for everyone
LIVE_SITE = "live-dash.example"
XSS_SITE = "xss-dash.example"

UAS = (
    DESKTOP_UA,
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15",
)
# (path, referrer, country, pages viewed after the first) for each visitor of SITE
VISITS = [
    ("/", "https://www.google.com/", "DE", ["/pricing"]),
    ("/", "https://www.google.com/", "FR", []),
    ("/blog", "https://www.google.com/", "US", ["/blog/realtime", "/pricing"]),
    ("/pricing", "https://t.co/x", "US", []),
    ("/blog/realtime", "https://news.ycombinator.com/", "GB", ["/"]),
    ("/", None, "DE", []),
    ("/docs", None, "JP", ["/docs/install"]),
    ("/?utm_source=newsletter&utm_medium=email&utm_campaign=launch", None, "NL", ["/pricing"]),
    ("/blog", "https://duckduckgo.com/", "BR", []),
    ("/", "https://github.com/", "IN", ["/docs"]),
]


# ---- traffic -----------------------------------------------------------------------------------


def send(stack: Stack, body: dict[str, Any], ip: str, ua: str = DESKTOP_UA, **headers: str) -> None:
    request = urllib.request.Request(
        stack.url + "/api/event",
        data=json.dumps(body).encode(),
        headers={
            "content-type": "text/plain",
            "user-agent": ua,
            "x-forwarded-for": ip,
            **{k.replace("_", "-"): v for k, v in headers.items()},
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        assert "x-plausible-dropped" not in response.headers


def counted(stack: Stack, site: str, key: str, pageviews: int, events: int) -> None:
    """Wait until the stats API counts what was sent (the aggregator runs behind a stream)."""
    path = f"/api/stats/aggregate?site_id={site}&period=day&metrics=pageviews,events&compare=false"

    def done() -> bool:
        results = stack.get_json(path, key)["results"]
        return (results["pageviews"]["value"], results["events"]["value"]) == (pageviews, events)

    wait_for(done, timeout=30)


class Admin:
    """The admin JSON API over HTTP with a signed-in session (faster than a CLI process each)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        password = (stack.data_dir / "admin-password").read_text().strip()
        request = urllib.request.Request(
            stack.url + "/api/auth/login",
            data=json.dumps({"password": password}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            self.csrf = json.loads(response.read())["csrf_token"]
            self.cookie = response.headers["set-cookie"].split(";")[0]

    def __call__(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.stack.url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={
                "content-type": "application/json",
                "cookie": self.cookie,
                "x-csrf-token": self.csrf,
                "origin": self.stack.url,
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def add_site(self, domain: str, public: bool = False, goals: tuple[str, ...] = ()) -> str:
        body = {"domain": domain, "public": public, "goals": list(goals)}
        return str(self("POST", "/api/admin/sites", body)["key"])


@dataclass
class Seeded:
    admin: Admin
    key: str
    open_key: str
    live_key: str
    xss_key: str
    share: dict[str, Any] = field(default_factory=dict)


# A subdivision and a city for each country (CloudFront-Viewer-Country-Region and -City)
PLACES = {
    "US": ("CA", "San Francisco"),
    "GB": ("ENG", "London"),
    "DE": ("BY", "Munich"),
    "JP": ("13", "Tokyo"),
    "NL": ("NH", "Amsterdam"),
    "BR": ("SP", "Sao Paulo"),
    "IN": ("MH", "Mumbai"),
}


def located(country: str) -> dict[str, str]:
    region, city = PLACES.get(country, ("", ""))
    return {
        "cloudfront_viewer_country": country,
        "cloudfront_viewer_country_region": region,
        "cloudfront_viewer_city": city,
    }


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> Seeded:
    admin = Admin(stack)
    key = admin.add_site(SITE, goals=("Signup",))
    open_key = admin.add_site(OPEN_SITE, public=True)
    live_key = admin.add_site(LIVE_SITE)
    xss_key = admin.add_site(XSS_SITE)
    pageviews = events = 0
    for n, (entry, referrer, country, more) in enumerate(VISITS):
        ip, ua = f"198.51.100.{n + 10}", UAS[n % len(UAS)]
        for path in [entry, *more]:
            body = {"n": "pageview", "u": f"https://{SITE}{path}", "d": SITE}
            if referrer and path == entry:
                body["r"] = referrer
            send(stack, body, ip, ua, **located(country))
            pageviews, events = pageviews + 1, events + 1
        if n % 3 == 0:
            props = {"plan": "pro" if n % 2 else "free"}
            body = {"n": "Signup", "u": f"https://{SITE}/pricing", "d": SITE, "p": props}
            send(stack, body, ip, ua, **located(country))
            events += 1
    seed_xss(stack)
    counted(stack, SITE, key, pageviews, events)
    share = admin("POST", f"/api/admin/sites/{SITE}/shares", {"label": "e2e"})
    return Seeded(admin, key, open_key, live_key, xss_key, share)


# ---- the page and what it shows --------------------------------------------------------------------

WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


@dataclass
class Watched:
    page: Any
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        csp = self.page.evaluate("window.__csp")
        assert self.dialogs == [], f"a dialog fired: {self.dialogs}"
        assert csp == [], f"CSP violations: {csp}"
        assert self.errors == [], f"console errors: {self.errors}"


@pytest.fixture()
def watched(page: Any) -> Iterator[Watched]:
    """The page, with dialogs, console errors and CSP violations recorded (and checked after)."""
    w = Watched(page)

    def on_dialog(dialog: Any) -> None:
        w.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: w.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: w.errors.append(str(e)))
    page.add_init_script(WATCH)
    yield w
    w.assert_clean()


def shot(page: Any, name: str, full_page: bool = True) -> None:
    if UPDATE_SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def api(stack: Stack, route: str, params: dict[str, str], key: str | None = None) -> Any:
    return stack.get_json(f"{route}?{urlencode(params)}", key)


def shown_metrics(page: Any) -> dict[str, Any]:
    """The metric row as the page shows it: the range its label names and each tile's value."""
    return dict(
        page.evaluate(
            """() => {
              const group = document.querySelector("#metrics [role=group]");
              if (!group || document.querySelector("#metrics[aria-busy=true]")) return {};
              const range = /(\\S+) to (\\S+)$/.exec(group.getAttribute("aria-label"));
              const tiles = {};
              for (const tile of group.querySelectorAll("[data-testid^=metric-]")) {
                tiles[tile.dataset.testid.slice(7)] = tile.dataset.value ?? null;
              }
              return {range: range ? [range[1], range[2]] : null, tiles};
            }"""
        )
    )


def expected_metrics(stack: Stack, params: dict[str, str], key: str | None) -> dict[str, Any]:
    """The API's answer for each tile; a metric the filters rule out (a 400) is an empty tile."""
    tiles: dict[str, str | None] = {}
    for metric in TILES:
        try:
            body = api(stack, "/api/stats/aggregate", {**params, "metrics": metric}, key)
        except urllib.error.HTTPError as refused:
            assert refused.code == 400
            tiles[metric] = None
            continue
        tiles[metric] = fmt_value(body["results"][metric]["value"])
        span = [body["range"]["first"], body["range"]["last"]]
    return {"range": span, "tiles": tiles}


def fmt_value(value: float) -> str:
    """How the tile's data-value spells a number (Jinja's str of it)."""
    return str(value)


def until_equal(shown: Any, expected: Any, timeout: float = 15) -> Any:
    """Wait until the page shows what the API says; on failure, say what each said."""
    last: list[Any] = [None]

    def same() -> bool:
        last[0] = shown()
        return bool(last[0] == expected)

    try:
        wait_for(same, timeout=timeout)
    except AssertionError:
        raise AssertionError(f"the page shows {last[0]!r}; the API says {expected!r}") from None
    return last[0]


def shows_metrics(page: Any, stack: Stack, params: dict[str, str], key: str | None) -> None:
    until_equal(lambda: shown_metrics(page), expected_metrics(stack, params, key))


def settled(page: Any, selector: str) -> None:
    """Wait until no answer is on its way to this element (htmx marks it with htmx-request).

    A click is a press and a release; an answer swapped in between them takes the pressed row
    away, and the click lands on no row. A test clicks a row only once its card is settled.
    """
    idle = "(s) => !document.querySelector(s).classList.contains('htmx-request')"
    wait_for(lambda: page.evaluate(idle, selector))


def shown_rows(page: Any, panel: str) -> list[list[str]]:
    return list(
        page.evaluate(
            """(panel) => {
              const root = document.querySelector(panel);
              if (!root || root.getAttribute("aria-busy") === "true") return null;
              return [...root.querySelectorAll("tbody tr")].map(
                (tr) => [...tr.cells].map((td) => td.textContent.trim()));
            }""",
            panel,
        )
        or []
    )


def shows_breakdown(
    page: Any,
    stack: Stack,
    panel: str,
    params: dict[str, str],
    key: str | None,
    columns: tuple[str, ...] = ("visitors",),
) -> list[list[str]]:
    body = api(
        stack, "/api/stats/breakdown", {**params, "metrics": ",".join(columns), "limit": "10"}, key
    )
    name = body["property"].split(":")[-1]
    # a country or region as its name (the API answers codes)
    expected = [
        [geo.display(name, str(r[name])), *(cell(c, r[c]) for c in columns)]
        for r in body["results"]
    ]
    assert expected, f"no rows for {params}: the scenario should have some"
    return list(until_equal(lambda: shown_rows(page, panel), expected))


def cell(metric: str, value: float) -> str:
    """A number as a card's cell shows it (small counts in these tests: no k or M)."""
    return f"{value:g}%" if metric in ("conversion_rate", "bounce_rate") else f"{value:,}"


def today_of(stack: Stack, key: str) -> str:
    """The site's today, in its time zone, as the stats API resolves period=day."""
    body = api(
        stack, "/api/stats/aggregate", site_params(SITE, period="day", metrics="visitors"), key
    )
    return str(body["range"]["first"])


def site_params(site: str, **more: str) -> dict[str, str]:
    return {"site_id": site, **more}


# ---- views -------------------------------------------------------------------------------------


def test_sites_list_shows_public_sites_with_current_visitors_and_opens_their_dashboard(
    stack: Stack, seeded: Seeded, watched: Watched
) -> None:
    page = watched.page
    # Given a public site with three visitors right now, opened by someone not signed in (sent
    # here, not by the module's fixture: "now" is the last 5 minutes, and the module's other
    # tests may run first for longer than that)
    for n in range(3):
        body = {"n": "pageview", "u": f"https://{OPEN_SITE}/", "d": OPEN_SITE}
        send(stack, body, f"203.0.113.{n + 1}")
    realtime = f"/api/v1/stats/realtime/visitors?site_id={OPEN_SITE}"
    wait_for(lambda: stack.get_json(realtime) == 3, timeout=30)
    page.goto(stack.url + "/")
    row = page.locator(f"#sites-card a[data-site='{OPEN_SITE}']")
    row.wait_for()
    # Then the list shows it with the current visitors the Plausible realtime API reports
    current = stack.get_json(realtime)
    count = page.locator(f"#sites-card li:has(a[data-site='{OPEN_SITE}']) [data-value]")
    assert count.get_attribute("data-value") == str(current) == "3"
    # And private sites are not listed
    assert page.locator(f"#sites-card a[data-site='{SITE}']").count() == 0
    assert (
        page.locator("#nav-signin").is_visible() and not page.locator("#nav-settings").is_visible()
    )
    shot(page, "sites")
    # When the site is opened, its realtime view shows without a reload
    page.evaluate("window.__stayed = true")
    row.click()
    page.wait_for_url(re.compile(rf"\?site={OPEN_SITE}$"))
    wait_for(lambda: page.inner_text("#realtime [data-testid=current-visitors]") == "3")
    assert page.evaluate("window.__stayed") is True
    assert page.inner_text("#live-count") == "3"


def test_dashboard_shows_the_stats_api_numbers_through_periods_filters_and_history(
    stack: Stack, seeded: Seeded, watched: Watched
) -> None:
    page = watched.page
    today = {"period": "day"}
    # Given the site's dashboard for today, opened with its read key
    page.goto(f"{stack.url}/?site={SITE}&period=day#key={seeded.key}")
    assert "key=" not in page.url
    # Then the metric row, the cards and the graph show what the stats API returns
    shows_metrics(page, stack, site_params(SITE, **today), seeded.key)
    shows_breakdown(
        page, stack, "#panel-sources", site_params(SITE, property="source", **today), seeded.key
    )
    shows_breakdown(
        page,
        stack,
        "#panel-pages",
        site_params(SITE, property="page", **today),
        seeded.key,
        ("visitors", "pageviews"),
    )
    shows_breakdown(
        page, stack, "#panel-locations", site_params(SITE, property="country", **today), seeded.key
    )
    shows_breakdown(
        page, stack, "#panel-devices", site_params(SITE, property="browser", **today), seeded.key
    )
    shows_breakdown(
        page,
        stack,
        "#panel-goals",
        site_params(SITE, property="goal", **today),
        seeded.key,
        ("visitors", "events", "conversion_rate"),
    )
    shot(page, "dashboard")

    # When another tab of a card is picked (with the arrow keys), it shows that property, even
    # when the tab passed on the way answers last (its answer is held back here)
    held: list[Any] = []
    page.route("**/api/cards/breakdown?*property=referrer*", lambda route: held.append(route))
    page.focus("#tab-sources-source")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#tab-sources-utm_source", "aria-selected") == "true"
    utm = site_params(SITE, property="utm_source", **today)
    shows_breakdown(page, stack, "#panel-sources", utm, seeded.key)
    wait_for(lambda: held)
    held[0].continue_()
    page.unroute("**/api/cards/breakdown?*property=referrer*")
    page.wait_for_timeout(500)
    shows_breakdown(page, stack, "#panel-sources", utm, seeded.key)
    page.click("#tab-goals-props")
    page.locator("#panel-goals button[data-prop-key=plan]").wait_for()
    shows_breakdown(
        page,
        stack,
        "#prop-values",
        site_params(SITE, property="prop:plan", **today),
        seeded.key,
        ("visitors", "events"),
    )

    # When the period changes to yesterday (nothing then), then to the last 7 days
    page.select_option("#period", "yesterday")
    page.wait_for_url(re.compile(r"period=day&date=\d{4}-\d{2}-\d{2}"))
    yesterday = {"period": "day", "date": re.search(r"date=([\d-]+)", page.url)[1]}  # type: ignore[index]
    shows_metrics(page, stack, site_params(SITE, **yesterday), seeded.key)
    assert shown_metrics(page)["tiles"]["visitors"] == "0"
    page.locator("#panel-sources [data-empty]").wait_for()
    # When a custom range from yesterday to today is applied
    page.select_option("#period", "custom")
    page.fill("#range-from", yesterday["date"])
    page.fill("#range-to", today_of(stack, seeded.key))
    page.click("#custom-range button[type=submit]")
    page.wait_for_url(re.compile(r"period=custom&from=[\d-]+&to=[\d-]+"))
    custom = {"period": "custom", "from": yesterday["date"], "to": today_of(stack, seeded.key)}
    shows_metrics(page, stack, site_params(SITE, **custom), seeded.key)
    seven = {"period": "7d"}
    page.select_option("#period", "7d")
    shows_metrics(page, stack, site_params(SITE, **seven), seeded.key)

    # When a row is chosen (Enter on it), the whole dashboard is filtered by it
    page.click("#tab-sources-source")
    page.focus("#panel-sources button[data-filter='visit:source==Google']")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"filters=visit%3Asource%3D%3DGoogle"))
    google = {**seven, "filters": "visit:source==Google"}
    shows_metrics(page, stack, site_params(SITE, **google), seeded.key)
    assert page.inner_text("#filter-chips [data-filter-chip] span") == "Source is Google"
    assert page.evaluate("document.activeElement.dataset.removeFilter") == "0"  # focus kept
    shows_breakdown(
        page, stack, "#panel-sources", site_params(SITE, property="source", **google), seeded.key
    )
    # And every other card answers through the filter: the counters keep one property at a
    # time, so pages and countries come from the event archive, exactly as the API says; the
    # graph too (from the counters, which keep visitors by source per day)
    by_page = site_params(SITE, property="page", **google)
    assert api(stack, "/api/stats/breakdown", by_page, seeded.key)["answered_from"] == "archive"
    pages = shows_breakdown(
        page, stack, "#panel-pages", by_page, seeded.key, ("visitors", "pageviews")
    )
    assert {row[0] for row in pages} == {"/", "/pricing", "/blog", "/blog/realtime"}
    page.locator("#panel-pages [data-answered-from=archive]").wait_for()
    shows_breakdown(
        page, stack, "#panel-locations", site_params(SITE, property="country", **google), seeded.key
    )
    assert page.locator("[data-unavailable]").count() == 0
    filtered_series = api(
        stack, "/api/stats/timeseries", site_params(SITE, metrics="visitors", **google), seeded.key
    )
    until_equal(
        lambda: shown_rows(page, "#graph"),
        [[str(p["date"]), f"{p['visitors']:,}"] for p in filtered_series["results"]],
    )
    shot(page, "dashboard-filtered")

    # When the back button is pressed, the unfiltered dashboard is back; forward filters again
    page.go_back()
    shows_metrics(page, stack, site_params(SITE, **seven), seeded.key)
    assert not page.locator("#filter-bar").is_visible()
    page.go_forward()
    shows_metrics(page, stack, site_params(SITE, **google), seeded.key)

    # When the filter's chip is removed, the numbers are the unfiltered ones again, from the
    # counters
    page.click("#filter-chips button[data-remove-filter]")
    shows_metrics(page, stack, site_params(SITE, **seven), seeded.key)
    assert "filters=" not in page.url
    unfiltered = site_params(SITE, property="page", **seven)
    assert api(stack, "/api/stats/breakdown", unfiltered, seeded.key)["answered_from"] == "counters"
    shows_breakdown(page, stack, "#panel-pages", unfiltered, seeded.key, ("visitors", "pageviews"))
    assert page.locator("#panel-pages [data-answered-from]").count() == 0

    # When a tile is clicked, the graph shows that metric as the timeseries API does
    page.click("#metrics button[data-metric=pageviews]")
    page.wait_for_url(re.compile(r"metric=pageviews"))
    series = api(
        stack, "/api/stats/timeseries", site_params(SITE, metrics="pageviews", **seven), seeded.key
    )["results"]
    expected = [[str(p["date"]), f"{p['pageviews']:,}"] for p in series]
    until_equal(lambda: shown_rows(page, "#graph"), expected)
    assert page.inner_text("#graph-title") == "Total pageviews"
    assert page.get_attribute("#metrics button[data-metric=pageviews]", "aria-pressed") == "true"


def test_locations_tabs_show_countries_regions_and_cities_by_name_and_sources_channels(
    stack: Stack, seeded: Seeded, watched: Watched
) -> None:
    page = watched.page
    today = {"period": "day"}
    page.goto(f"{stack.url}/?site={SITE}&period=day#key={seeded.key}")
    # Given the Locations card, its tabs show the stats API's rows, codes as names
    countries = shows_breakdown(
        page, stack, "#panel-locations", site_params(SITE, property="country", **today), seeded.key
    )
    assert "Germany" in [row[0] for row in countries]
    page.click("#tab-locations-region")
    regions = shows_breakdown(
        page, stack, "#panel-locations", site_params(SITE, property="region", **today), seeded.key
    )
    assert "Bavaria" in [row[0] for row in regions]  # DE-BY
    page.click("#tab-locations-city")
    cities = shows_breakdown(
        page, stack, "#panel-locations", site_params(SITE, property="city", **today), seeded.key
    )
    assert "Munich" in [row[0] for row in cities]
    # and Top sources has a Channels tab
    page.click("#tab-sources-channel")
    channels = shows_breakdown(
        page, stack, "#panel-sources", site_params(SITE, property="channel", **today), seeded.key
    )
    assert {"Organic Search", "Email"} <= {row[0] for row in channels}
    watched.assert_clean()


def test_dashboard_at_phone_width_fits_and_keeps_its_numbers(
    stack: Stack, seeded: Seeded, browser: Any
) -> None:
    context = browser.new_context(user_agent=DESKTOP_UA, viewport=PHONE, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(f"{stack.url}/?site={SITE}&period=day#key={seeded.key}")
        shows_metrics(page, stack, site_params(SITE, period="day"), seeded.key)
        page.locator("#panel-sources tbody tr").first.wait_for()
        # Nothing is wider than the screen: no sideways scrolling
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shot(page, "dashboard-phone")
    finally:
        context.close()


def test_realtime_badge_counts_a_new_visitor_within_seconds_without_a_reload(
    stack: Stack, seeded: Seeded, watched: Watched
) -> None:
    page = watched.page
    send(stack, {"n": "pageview", "u": f"https://{LIVE_SITE}/", "d": LIVE_SITE}, "192.0.2.1")
    realtime = f"/api/v1/stats/realtime/visitors?site_id={LIVE_SITE}"
    wait_for(lambda: stack.get_json(realtime, seeded.live_key) == 1)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    # Given the realtime view of a site with one visitor now
    page.goto(f"{stack.url}/?site={LIVE_SITE}#key={seeded.live_key}")
    wait_for(lambda: page.inner_text("#live-count") == "1")
    assert page.inner_text("#realtime [data-testid=current-visitors]") == "1"
    assert page.locator("[aria-live=polite] #live-count").count() == 1  # read out on change
    page.evaluate("window.__stayed = true")
    # When a second visitor arrives
    send(stack, {"n": "pageview", "u": f"https://{LIVE_SITE}/pricing", "d": LIVE_SITE}, "192.0.2.2")
    # Then the badge says 2 within seconds, in the same page, as the API does
    wait_for(lambda: page.inner_text("#live-count") == "2", timeout=15)
    assert stack.get_json(realtime, seeded.live_key) == 2
    assert page.evaluate("window.__stayed") is True
    # And the card's other numbers are the realtime API's
    now = stack.get_json(f"/api/realtime?site_id={LIVE_SITE}", seeded.live_key)
    wait_for(lambda: page.inner_text("#realtime [data-testid=pageviews-30m]") == "2")
    assert now["pageviews"] == 2
    pages = page.locator("#realtime [data-testid=top-pages] tbody tr").all_inner_texts()
    assert [p.split("\t") for p in pages] == [
        [p["page"], str(p["pageviews"])] for p in now["top_pages"]
    ]
    # And freshness shows: "data as of … · N s ago", counting up between refreshes
    age = page.locator("#realtime [data-testid=as-of-age]")
    assert re.fullmatch(r"\d+ s ago", age.inner_text())
    assert int(age.inner_text().split()[0]) <= 10
    # And each refresh is one request: nothing but the realtime card is polled
    polled = [u for u in requests if "/api/" in u]
    assert polled and all("/api/realtime/card?" in u for u in polled), polled
    assert not any("chart.umd" in u for u in requests)  # the realtime view needs no Chart.js
    if UPDATE_SCREENSHOTS:  # the busier site makes the better picture
        page.goto(f"{stack.url}/?site={SITE}#key={seeded.key}")
        page.locator("#realtime [data-testid=top-sources]").wait_for()
        shot(page, "realtime")


POLLS = """
window.__polls = [];
document.addEventListener("refresh", (event) => {
  if (event.target.id === "realtime") window.__polls.push(Date.now());
}, true);
"""


def test_realtime_polls_every_1_5_s_while_someone_uses_the_page_and_every_10_s_after(
    stack: Stack, seeded: Seeded, watched: Watched
) -> None:
    # A refresh costs a CloudFront request, a query Lambda call and DynamoDB reads (decision
    # 0026): a tab left open polls at a fifth of the watched rate. Page time is Playwright's clock.
    page = watched.page
    page.add_init_script(POLLS)
    page.clock.install()
    page.goto(f"{stack.url}/?site={LIVE_SITE}#key={seeded.live_key}")
    page.locator("#realtime [data-testid=current-visitors]").wait_for()

    def gaps_over(ms: int) -> list[int]:
        start = len(page.evaluate("window.__polls"))
        page.clock.run_for(ms)
        polls = page.evaluate("window.__polls")[max(0, start - 1) :]
        # to the nearest 0.1 s: the first timer starts a few ms after the card's first load
        return [round(b - a, -2) for a, b in itertools.pairwise(polls)]

    # Given someone using the page: a refresh every 1.5 s
    page.mouse.move(200, 200)
    assert set(gaps_over(21_000)) == {1500}
    # When nobody touches it for two minutes: every 10 s
    page.clock.run_for(120_000)
    assert set(gaps_over(60_000)) == {10_000}
    # And as soon as someone moves the mouse again, every 1.5 s (from the next refresh on)
    page.mouse.move(300, 300)
    assert set(gaps_over(30_000)[1:]) == {1500}


# ---- escaping ----------------------------------------------------------------------------------

SCRIPT = "<script>alert('script')</script>"
IMG = '"><img src=x onerror=alert(1)>'
JS_URL = "javascript:alert(2)"


def seed_xss(stack: Stack) -> None:
    ua = DESKTOP_UA
    pageview = {"n": "pageview", "d": XSS_SITE}
    send(
        stack,
        {
            **pageview,
            "u": f"https://{XSS_SITE}/{SCRIPT}?utm_source={SCRIPT}",
            "r": f"https://evil.example/{IMG}",
        },
        "192.0.2.50",
    )
    send(stack, {**pageview, "u": f"https://{XSS_SITE}/{IMG}", "r": JS_URL}, "192.0.2.51", ua)
    send(
        stack,
        {
            "n": IMG,
            "u": f"https://{XSS_SITE}/{JS_URL}",
            "d": XSS_SITE,
            "p": {SCRIPT: IMG, "plan": JS_URL},
        },
        "192.0.2.52",
    )
    # Umami's format carries a page title too
    umami = {
        "type": "event",
        "payload": {
            "website": XSS_SITE,
            "hostname": XSS_SITE,
            "url": f"/{JS_URL}",
            "title": f"{SCRIPT}{IMG}",
            "referrer": f"https://evil.example/{SCRIPT}",
            "language": "en",
            "screen": "1920x1080",
        },
    }
    request = urllib.request.Request(
        stack.url + "/api/send",
        data=json.dumps(umami).encode(),
        headers={
            "content-type": "application/json",
            "user-agent": ua,
            "x-forwarded-for": "192.0.2.53",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_event_values_carrying_markup_and_javascript_urls_render_as_text(
    stack: Stack, seeded: Seeded, watched: Watched
) -> None:
    page = watched.page
    wait_for(
        lambda: (
            api(
                stack,
                "/api/stats/aggregate",
                site_params(XSS_SITE, period="day", metrics="events"),
                seeded.xss_key,
            )["results"]["events"]["value"]
            == 4
        )
    )
    # Given a dashboard whose every card holds values with markup and javascript: URLs
    page.goto(f"{stack.url}/?site={XSS_SITE}&period=day#key={seeded.xss_key}")
    page.locator("#panel-pages tbody tr").first.wait_for()
    visits = [
        ("#tab-sources-source", "#panel-sources", SCRIPT),
        ("#tab-sources-referrer", "#panel-sources", IMG),
        ("#tab-sources-utm_source", "#panel-sources", SCRIPT),
        ("#tab-pages-page", "#panel-pages", IMG),
        ("#tab-pages-entry_page", "#panel-pages", SCRIPT),
        ("#tab-goals-name", "#panel-goals", IMG),
    ]
    # Then each shows the values as text
    for tab, panel, text in visits:
        page.click(tab)
        wait_for(lambda panel=panel, text=text: text in page.inner_text(panel))
    page.click("#tab-goals-props")
    page.locator("#panel-goals button[data-prop-key]").first.wait_for()
    settled(page, "#panel-goals")
    page.click(f"#panel-goals button[data-prop-key={json.dumps(SCRIPT)}]")
    wait_for(lambda: IMG in page.inner_text("#prop-values"))
    # When a row carrying markup becomes a filter, its chip shows the markup as text too
    page.click("#tab-pages-page")
    settled(page, "#panel-pages")
    page.locator(f"#panel-pages button[data-filter={json.dumps('event:page==/' + IMG)}]").click()
    wait_for(lambda: IMG in page.inner_text("#filter-chips"))
    # And the realtime view too
    page.select_option("#period", "realtime")
    wait_for(lambda: SCRIPT in page.inner_text("#realtime [data-testid=top-pages]"))
    # And nothing ran: no element was made from the values, no dialog, no CSP violation
    assert page.locator("img").count() == 0
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
    watched.assert_clean()


# ---- shared link and settings --------------------------------------------------------------------


def test_shared_link_shows_the_dashboard_read_only_and_cannot_reach_settings(
    stack: Stack, seeded: Seeded, watched: Watched
) -> None:
    page = watched.page
    token = seeded.share["token"]
    assert seeded.share["url"].startswith(f"{stack.url}/?site={SITE}&auth=")
    # Given the shared link, opened by someone without a key or a sign-in
    page.goto(seeded.share["url"] + "&period=day")
    # Then it shows the dashboard with the stats API's numbers for the token
    shows_metrics(page, stack, site_params(SITE, period="day", auth=token), None)
    shows_breakdown(
        page,
        stack,
        "#panel-sources",
        site_params(SITE, property="source", period="day", auth=token),
        None,
    )
    # And it is read-only: no settings, no sign-in, no sites list
    assert page.locator("#nav-shared").is_visible()
    for hidden in ("#nav-settings", "#nav-signin", "#nav-sites", "#nav-signout"):
        assert not page.locator(hidden).is_visible(), hidden
    assert page.locator("a[href*='view=settings']:visible").count() == 0
    shot(page, "shared")
    # And asking for settings with the token shows the dashboard, not settings
    page.goto(f"{stack.url}/?view=settings&site={SITE}&auth={token}")
    page.locator("#view-site").wait_for()
    assert not page.locator("#view-settings").is_visible()
    # And the admin API refuses the token, in the page and outside it
    statuses = page.evaluate(
        """async (token) => [
          (await fetch(`/api/admin/sites?auth=${token}`)).status,
          (await fetch("/api/admin/sites", {headers: {Authorization: `Bearer ${token}`}})).status,
          (await fetch(`/api/admin/sites/dash.example/keys?auth=${token}`, {method: "POST"})).status,
        ]""",
        token,
    )
    assert all(s in (401, 403) for s in statuses), statuses
    watched.errors.clear()  # the refused fetches above log their 401/403 in the console


def test_admin_signs_in_then_adds_a_goal_and_creates_and_revokes_a_key(
    stack: Stack, seeded: Seeded, watched: Watched
) -> None:
    page = watched.page
    password = (stack.data_dir / "admin-password").read_text().strip()
    # Given the admin signs in with the password `liveinsight dev` made
    page.goto(stack.url + "/?view=login")
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    page.locator("#nav-settings").wait_for()
    # Then every site is listed, the private one too
    page.locator(f"#sites-card a[data-site='{SITE}']").wait_for()
    # When they open the site's settings and add a goal
    page.click("#nav-settings a")
    page.locator("#settings-sites li").first.wait_for()
    page.select_option("#settings-site", SITE)
    page.locator("#goals-list [data-goal=Signup]").wait_for()
    page.fill("#new-goal", "Visit /pricing")
    page.click("#add-goal button[type=submit]")
    page.locator("#goals-list [data-goal='Visit /pricing']").wait_for()
    goals = seeded.admin("GET", f"/api/admin/sites/{SITE}/goals")["goals"]
    assert goals == ["Signup", "Visit /pricing"]
    # And create a key: shown once, and it reads the site's stats
    keys = f"/api/admin/sites/{SITE}/keys"
    before = {k["id"] for k in seeded.admin("GET", keys)["keys"]}
    page.click("#create-key")
    new_key = page.locator("[data-testid=new-key]")
    wait_for(lambda: new_key.inner_text().startswith("li_"))
    key = new_key.inner_text()
    assert stack.get_json(f"/api/v1/stats/realtime/visitors?site_id={SITE}", key) >= 0
    (key_id,) = {k["id"] for k in seeded.admin("GET", keys)["keys"]} - before
    shot(page, "settings")
    # When it is revoked (the button asks once more on itself)
    revoke = page.locator(f"#keys-list [data-key-id='{key_id}'] button")
    revoke.click()
    revoke.click()
    page.locator(f"#keys-list [data-key-id='{key_id}']").wait_for(state="detached")
    # Then it opens nothing any more, and the other key still works
    with pytest.raises(urllib.error.HTTPError) as refused:
        stack.get_json(f"/api/v1/stats/realtime/visitors?site_id={SITE}", key)
    assert refused.value.code == 401
    assert stack.get_json(f"/api/v1/stats/realtime/visitors?site_id={SITE}", seeded.key) >= 0


# ---- exports -------------------------------------------------------------------------------------


def test_card_csv_and_zip_of_all_cards_hold_the_stats_api_numbers(
    stack: Stack, seeded: Seeded, watched: Watched
) -> None:
    page = watched.page
    page.goto(f"{stack.url}/?site={SITE}&period=day#key={seeded.key}")
    page.locator("#panel-sources tbody tr").first.wait_for()
    # When the sources card's CSV is downloaded
    with page.expect_download() as download:
        page.click("[data-card=sources] [data-csv]")
    rows = list(csv.reader(io.StringIO(download.value.path().read_text())))
    # Then it holds every source with its visitors, as the stats API counts them
    body = api(
        stack,
        "/api/stats/breakdown",
        site_params(SITE, period="day", property="source"),
        seeded.key,
    )
    assert download.value.suggested_filename == f"{SITE}-source.csv"
    assert rows == [
        ["source", "visitors"],
        *([r["source"], str(r["visitors"])] for r in body["results"]),
    ]
    # When every card is exported
    with page.expect_download() as download:
        page.click("#export-zip")
    with zipfile.ZipFile(download.value.path()) as archive:
        names = set(archive.namelist())
        pages = list(csv.reader(io.StringIO(archive.read("page.csv").decode())))
    assert {"visitors.csv", "source.csv", "page.csv", "country.csv", "browser.csv"} <= names
    body = api(
        stack,
        "/api/stats/breakdown",
        site_params(SITE, period="day", property="page", metrics="visitors,pageviews"),
        seeded.key,
    )
    assert pages[1:] == [
        [r["page"], str(r["visitors"]), str(r["pageviews"])] for r in body["results"]
    ]
