"""Our tracker and the real Plausible and Umami trackers in Chromium, counted by the stats API.

The test sites are served from their own origins (`<tracker>.test:<port>`, which Chromium's host
resolver maps to 127.0.0.1, so no request leaves the machine) and post to the local stack on
another origin. Each tracker drives one scenario: land on /, scroll, SPA navigation to /pricing,
a custom event with props, a file download, an outbound link, a 404 page, leave. Then the stats
API must show the same numbers for every tracker; ours and @plausible-analytics/tracker also
report engagement. The real @umami/node client, run by Node, posts server-side to the stack.
The npm trackers are pinned in tests/trackers (make trackers).
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from ingest.umami import website_id
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP_UA, REPO, Stack, wait_for

pytestmark = pytest.mark.e2e

PEERS_DIST = REPO / "tests" / "trackers" / "dist"
INGEST_PATHS = ("/api/event", "/api/send")
# Our tracker, plausible-tracker 0.3.9, @plausible-analytics/tracker 0.4.6, Umami 2.10.0
TRACKERS = ("ours", "pt", "pa", "umami")

BODY = """<body><h1 id="title">{title}</h1>
<nav><a id="to-pricing" href="/pricing">Pricing</a></nav>
<button id="signup">Sign up</button>
<a id="download" href="/files/report.pdf" download>Annual report</a>
<a id="outbound" href="http://elsewhere.test:{port}/out?from=shop">Elsewhere</a>
<div style="height:3000px"></div><p id="end">end</p>
<script src="/app.js"></script></body></html>"""

# The site's own code: an SPA router, a sign-up button, and what each tracker's documentation
# asks a site to add for what it does not track by itself.
APP = """
const tracker = document.documentElement.dataset.tracker;
document.getElementById('to-pricing').addEventListener('click', (e) => {
  e.preventDefault(); history.pushState({}, '', '/pricing');
  document.getElementById('title').textContent = 'Pricing';
});
document.getElementById('signup').addEventListener('click', () =>
  window.track('Signup', {plan: 'pro'}, {currency: 'EUR', amount: '12.50'}));
const links = {download: 'File Download', outbound: 'Outbound Link: Click'};
if (tracker === 'umami') {  // Umami tracks links that carry data-umami-event attributes
  for (const [id, name] of Object.entries(links)) {
    const a = document.getElementById(id);
    a.dataset.umamiEvent = name;
    a.dataset.umamiEventUrl = a.href.split('?')[0] + (id === 'outbound' ? '?from=shop' : '');
  }
}
if (tracker === 'pt') {  // plausible-tracker 0.3.9 has no file-download tracking
  const a = document.getElementById('download');
  a.addEventListener('click', () => window.track('File Download', {url: a.href.split('?')[0]}));
}
"""


def head(tracker: str, stack: str, not_found: bool) -> str:
    """The <head> a site using `tracker` has, on a normal page or on its 404 page."""
    if tracker == "ours":
        snippet = (
            "<script>window.liveinsight=window.liveinsight||function(){(window.liveinsight.q="
            "window.liveinsight.q||[]).push(arguments)}</script>"
            f'<script defer src="{stack}/js/script.js"{" data-404" if not_found else ""}></script>'
            "<script>window.track=(name,props,revenue)=>liveinsight(name,{props,revenue})</script>"
        )
    elif tracker == "pt":
        snippet = (
            '<script src="/trackers/plausible-tracker.js"></script><script>'
            "const t=PlausibleTracker.default({apiHost:" + json.dumps(stack) + "});"
            "t.enableAutoOutboundTracking();t.enableAutoPageviews();"
            "window.track=(name,props)=>t.trackEvent(name,{props});"
            + ("t.trackEvent('404',{props:{path:location.pathname}});" if not_found else "")
            + "</script>"
        )
    elif tracker == "pa":
        snippet = (
            '<script src="/trackers/plausible-analytics-tracker.js"></script><script>'
            "PlausibleAnalytics.init({domain:location.hostname,endpoint:"
            + json.dumps(f"{stack}/api/event")
            + ",outboundLinks:true,fileDownloads:true});"
            "window.track=(name,props,revenue)=>PlausibleAnalytics.track(name,{props,revenue});"
            + (
                "PlausibleAnalytics.track('404',{props:{path:location.pathname}});"
                if not_found
                else ""
            )
            + "</script>"
        )
    else:
        website = website_id("umami.test")
        snippet = (
            f'<script defer src="/trackers/umami.js" data-website-id="{website}" '
            f'data-host-url="{stack}"></script>'
            "<script>window.track=(name,props)=>umami.track(name,props);"
            + (
                "addEventListener('load',()=>umami.track('404',{path:location.pathname}));"
                if not_found
                else ""
            )
            + "</script>"
        )
    title = "Not found" if not_found else "Shop"
    return (
        f'<!doctype html><html data-tracker="{tracker}"><head><meta charset="utf-8">'
        f"<title>{title} · Café</title>{snippet}</head>"
    )


@dataclass
class Sites:
    """A static server for every test site: the Host header picks the site's tracker."""

    stack: str
    port: int = 0
    server: ThreadingHTTPServer | None = None
    extra: dict[str, str] = field(default_factory=dict)  # host → full HTML of its pages

    def origin(self, host: str) -> str:
        return f"http://{host}:{self.port}"

    def page(self, host: str, path: str) -> tuple[int, str, str]:
        name = host.split(".")[0]
        if path == "/app.js":
            return 200, "text/javascript", APP
        if path.startswith("/trackers/"):
            return 200, "text/javascript", (PEERS_DIST / path.rsplit("/", 1)[1]).read_text()
        if host in self.extra:
            return 200, "text/html", self.extra[host]
        if name == "elsewhere":
            return 200, "text/html", "<!doctype html><title>Elsewhere</title><p>elsewhere</p>"
        tracker = name if name in TRACKERS else "ours"
        not_found = path not in ("/", "/pricing")
        html = head(tracker, self.stack, not_found) + BODY.format(
            title="Not found" if not_found else "Home", port=self.port
        )
        return (404 if not_found else 200), "text/html", html

    def start(self) -> None:
        sites = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host = (self.headers.get("host") or "").rsplit(":", 1)[0]
                path = urlsplit(self.path).path
                if path.startswith("/files/"):
                    body = b"%PDF-1.4\n%%EOF\n"
                    self.send_response(200)
                    self.send_header("content-type", "application/pdf")
                    self.send_header("content-disposition", "attachment; filename=report.pdf")
                else:
                    status, kind, text = sites.page(host, path)
                    body = text.encode()
                    self.send_response(status)
                    self.send_header("content-type", f"{kind}; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@dataclass
class Sent:
    """Every event the pages of one browser context posted to the stack, decoded.

    Playwright does not see a request a page sends as it goes away (our tracker's engagement on
    leaving): those are read back from the events table instead (`stored`).
    """

    events: list[dict[str, Any]] = field(default_factory=list)

    def record(self, request: Any) -> None:
        if request.method == "POST" and urlsplit(request.url).path in INGEST_PATHS:
            body = json.loads(request.post_data or "null")
            if isinstance(body, dict) and "payload" in body:  # Umami's {type, payload}
                body = {"n": body["payload"].get("name", "pageview"), **body["payload"]}
            self.events.append(body)

    def names(self) -> list[str]:
        return [e.get("n") or e.get("name") for e in self.events]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if (e.get("n") or e.get("name")) == name]


@pytest.fixture(scope="module")
def sites(stack: Stack) -> Iterator[Sites]:
    if not (PEERS_DIST / "umami.js").exists():
        pytest.fail("the npm trackers are not built: run `make trackers` (make test does it)")
    served = Sites(stack.url)
    served.start()
    yield served
    assert served.server is not None
    served.server.shutdown()


@pytest.fixture(scope="module")
def chromium(browser: Any) -> Iterator[Any]:
    """One browser for the module, resolving every *.test host to 127.0.0.1.

    Launched by the session's Playwright (a second sync Playwright cannot run beside it).
    """
    resolving = browser.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            *CHROMIUM_ARGS,
            "--host-resolver-rules=MAP *.test 127.0.0.1",
            # Plain http on a .test host: no HTTPS-first upgrade attempt.
            "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
            # A request a page sends while it goes away leaves with the browser's own user
            # agent, not the context's: without this it says HeadlessChrome (a bot).
            f"--user-agent={DESKTOP_UA}",
        ],
    )
    yield resolving
    resolving.close()


def browse(chromium: Any) -> tuple[Any, Any, Sent]:
    """A fresh context (no storage, a desktop user agent), its page, and what it sends."""
    context = chromium.new_context(
        user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 800}, accept_downloads=True
    )
    sent = Sent()
    context.on("request", sent.record)
    return context, context.new_page(), sent


def settle(page: Any, predicate: Any, timeout: float = 15.0) -> None:
    """Wait for `predicate` while Playwright delivers the page's events (time.sleep would not)."""
    for _ in range(int(timeout * 10)):
        if predicate():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the page did not send what was expected within {timeout}s")


def stats(stack: Stack, key: str, site: str, endpoint: str, **params: str) -> Any:
    query = {"site_id": site, "period": "day", **params}
    path = f"/api/v1/stats/{endpoint}?" + "&".join(f"{k}={quote(v)}" for k, v in query.items())
    return stack.get_json(path, key)["results"]


def breakdown(stack: Stack, key: str, site: str, prop: str, metric: str) -> dict[str, Any]:
    rows = stats(stack, key, site, "breakdown", property=prop, metrics=metric)
    name = prop.split(":")[-1]
    return {row[name]: row[metric] for row in rows}


def stored(stack: Stack, site: str) -> list[dict[str, Any]]:
    """The site's raw events in the stack's events table (DynamoDB wire format), oldest first."""
    import botocore.session

    from local import tables
    from local.stack import TABLE_PREFIX

    endpoint = json.loads((stack.data_dir / "stack.json").read_text())["aws_endpoint"]
    client = botocore.session.get_session().create_client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    items = tables.scan_all(client, tables.table_names(TABLE_PREFIX)["events"])
    return sorted((i for i in items if i["site"]["S"] == site), key=lambda i: int(i["ts"]["N"]))


def run_scenario(page: Any, sent: Sent, sites: Sites, host: str) -> None:
    origin = sites.origin(host)
    page.goto(f"{origin}/")
    settle(page, lambda: "pageview" in sent.names())
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    # Stay a while (scroll events come with the next frame; time on page is whole seconds)
    page.wait_for_timeout(1600)
    page.click("#to-pricing")
    settle(page, lambda: sent.names().count("pageview") == 2)
    page.click("#signup")
    with page.expect_download():
        page.click("#download")
    settle(page, lambda: {"Signup", "File Download"} <= set(sent.names()))
    page.click("#outbound")
    page.wait_for_url(re.compile(r"http://elsewhere\.test:\d+/out\?from=shop"))
    page.goto(f"{origin}/missing")
    settle(page, lambda: sent.names().count("pageview") == 3 and "404" in sent.names())
    page.goto("about:blank")  # leave the 404 page


CUSTOM = {"Signup": 1, "File Download": 1, "Outbound Link: Click": 1, "404": 1}


def counted(stack: Stack, key: str, site: str) -> dict[str, Any]:
    """What the stats API says of one run of the scenario, with the site's own host taken out.

    Read once the numbers have settled: a Query can see a transaction half applied (DynamoDB
    reads are read-committed per item, moto applies a transaction item by item), so the totals
    may land a moment before the breakdowns."""

    def read() -> dict[str, Any]:
        totals = stats(stack, key, site, "aggregate", metrics="visitors,visits,pageviews,events")
        names = breakdown(stack, key, site, "event:name", "events")
        urls = breakdown(stack, key, site, "event:props:url", "events")
        return {
            "totals": {metric: value["value"] for metric, value in totals.items()},
            "names": {name: n for name, n in names.items() if name != "pageview"},
            "pages": breakdown(stack, key, site, "event:page", "pageviews"),
            "url": {url.replace(site, "SITE"): n for url, n in urls.items()},
            "plan": breakdown(stack, key, site, "event:props:plan", "events"),
            "path": breakdown(stack, key, site, "event:props:path", "events"),
        }

    def settled() -> dict[str, Any] | None:
        first = read()
        pageviews = first["totals"]["pageviews"]
        whole = first["totals"]["events"] == 7 and sum(first["pages"].values()) == pageviews
        return first if whole and read() == first else None

    result: dict[str, Any] = wait_for(settled, timeout=30)
    return result


@dataclass
class Run:
    sent: Sent
    counts: dict[str, Any]
    stored: list[dict[str, Any]]
    key: str


@pytest.fixture(scope="module")
def runs(stack: Stack, sites: Sites, chromium: Any) -> dict[str, Run]:
    """Each tracker drives the scenario once on its own site: what it sent, what was counted."""
    keys = {t: stack.cli("site", "add", f"{t}.test", "--json")["key"] for t in TRACKERS}
    sent: dict[str, Sent] = {}
    for tracker in TRACKERS:
        site = f"{tracker}.test"
        context, page, sent[tracker] = browse(chromium)
        run_scenario(page, sent[tracker], sites, site)
        if tracker in ("ours", "pa"):  # they report engagement, the last one on leaving
            # (Closing the context would cancel what the page sent as it went away.)
            wait_for(lambda site=site: len(named(stored(stack, site), "engagement")) >= 3)
        context.close()
    # The stream is aggregated meanwhile: read the numbers once all four have run.
    return {
        t: Run(sent[t], counted(stack, keys[t], f"{t}.test"), stored(stack, f"{t}.test"), keys[t])
        for t in TRACKERS
    }


def named(items: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [i for i in items if i["name"]["S"] == name]


def test_our_tracker_sends_every_feature_and_the_stats_api_counts_them(
    runs: dict[str, Run], sites: Sites, stack: Stack
) -> None:
    run = runs["ours"]
    origin = sites.origin("ours.test")
    # Then it sent three pageviews (load, SPA navigation, the 404 page) ...
    assert [e["u"] for e in run.sent.named("pageview")] == [
        f"{origin}/",
        f"{origin}/pricing",
        f"{origin}/missing",
    ]
    # ... the SPA navigation's pageview carrying the engagement of the page it left, in one
    # request (decision 0041): no request of its own for the engagement of /
    navigation = run.sent.named("pageview")[1]
    assert navigation["l"]["u"] == f"{origin}/"
    assert navigation["l"]["sd"] == 100 and navigation["l"]["e"] >= 1500
    assert f"{origin}/" not in [e["u"] for e in run.sent.named("engagement")]
    # ... the custom event with its props and revenue, both clicked links and the 404 ...
    (signup,) = run.sent.named("Signup")
    assert signup["props"] == {"plan": "pro"}
    assert signup["revenue"] == {"currency": "EUR", "amount": "12.50"}
    (download,) = run.sent.named("File Download")
    assert download["props"] == {"url": f"{origin}/files/report.pdf"}
    (outbound,) = run.sent.named("Outbound Link: Click")
    assert outbound["props"] == {"url": f"http://elsewhere.test:{sites.port}/out?from=shop"}
    (not_found,) = run.sent.named("404")
    assert not_found["props"] == {"path": "/missing"}
    # ... and, for each page it left, engagement: the deepest scroll and the visible time
    # (by page: a page left by a full navigation sends its engagement as it unloads, and that
    # keepalive request may reach ingest after the next page's own)
    engagement = {e["page"]["S"]: e for e in named(run.stored, "engagement")}
    assert len(named(run.stored, "engagement")) == 3
    assert sorted(engagement) == ["/", "/missing", "/pricing"]
    depth = {page: int(e["scroll_depth"]["N"]) for page, e in engagement.items()}
    assert depth["/"] == 100  # scrolled to the end of /
    assert 0 < depth["/pricing"] < 50  # /pricing: only the first screen of a long page was seen
    assert all(int(e["engaged_ms"]["N"]) > 0 for e in engagement.values())
    (stored_signup,) = named(run.stored, "Signup")
    assert (stored_signup["revenue_amount"], stored_signup["revenue_currency"]) == (
        {"S": "12.50"},
        {"S": "EUR"},
    )
    # And the stats API counts every one of them (engagement feeds time on page only)
    assert run.counts["totals"] == {"visitors": 1, "visits": 1, "pageviews": 3, "events": 7}
    assert run.counts["names"] == CUSTOM
    assert run.counts["pages"] == {"/": 1, "/pricing": 1, "/missing": 1}
    assert run.counts["url"] == {
        f"http://SITE:{sites.port}/files/report.pdf": 1,
        f"http://elsewhere.test:{sites.port}/out?from=shop": 1,
    }
    assert run.counts["plan"] == {"pro": 1}
    assert run.counts["path"] == {"/missing": 1}
    # Time on / runs from its pageview to the visit's next event (it stayed there > 1.5 s)
    on_page = breakdown(stack, run.key, "ours.test", "event:page", "time_on_page")
    times = [int(e["ts"]["N"]) for e in run.stored]
    first = next(i for i, e in enumerate(run.stored) if e["name"]["S"] == "pageview")
    assert on_page["/"] == round((times[first + 1] - times[first]) / 1000) >= 1


@pytest.mark.parametrize("tracker", ["pt", "pa", "umami"])
def test_real_plausible_and_umami_trackers_are_counted_as_ours_is(
    runs: dict[str, Run], tracker: str
) -> None:
    # Given the same scenario driven by the real tracker from npm (tests/trackers)
    run = runs[tracker]
    # Then it sent every event of the scenario, and they were counted as our tracker's were
    assert set(run.sent.names()) - {"engagement"} == {"pageview", *CUSTOM}
    assert run.counts == runs["ours"].counts


def test_plausible_tracker_props_sent_as_a_json_string_are_counted(runs: dict[str, Run]) -> None:
    (signup,) = runs["pt"].sent.named("Signup")
    assert signup["p"] == '{"plan":"pro"}'
    assert runs["pt"].counts["plan"] == {"pro": 1}


def test_plausible_analytics_tracker_engagement_and_revenue_are_stored(
    runs: dict[str, Run],
) -> None:
    run = runs["pa"]
    (signup,) = run.sent.named("Signup")
    assert signup["$"] == {"currency": "EUR", "amount": "12.50"}
    (stored_signup,) = named(run.stored, "Signup")
    assert stored_signup["revenue_amount"] == {"S": "12.50"}
    engagement = named(run.stored, "engagement")
    assert [e["page"]["S"] for e in engagement][:3] == ["/", "/pricing", "/missing"]
    assert int(engagement[0]["scroll_depth"]["N"]) == 100
    assert all("engaged_ms" in e for e in engagement)


def test_umami_tracker_posts_paths_and_encoded_titles_that_are_resolved(
    runs: dict[str, Run],
) -> None:
    run = runs["umami"]
    pageview = run.sent.named("pageview")[0]
    assert (pageview["url"], pageview["hostname"]) == ("/", "umami.test")
    assert pageview["title"] == quote("Shop · Café", safe="")
    assert pageview["screen"] == "1280x800"
    assert [e["page"]["S"] for e in named(run.stored, "pageview")] == ["/", "/pricing", "/missing"]
    assert {e["device"]["S"] for e in run.stored} == {"Laptop"}  # 1280 px wide


def test_localhost_and_opted_out_visitors_send_nothing(
    stack: Stack, sites: Sites, chromium: Any
) -> None:
    # Given our tracker on a page at 127.0.0.1, and on a site whose visitor opted out
    stack.cli("site", "add", "optout.test", "--json")
    sent: list[Sent] = []
    for origin, opt_out in (
        (f"http://127.0.0.1:{sites.port}", False),
        (sites.origin("optout.test"), True),
    ):
        context, page, events = browse(chromium)
        if opt_out:
            context.add_init_script("localStorage.setItem('liveinsight_ignore', 'true')")
        # When the visitor does everything the tracker would report
        page.goto(f"{origin}/")
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.click("#to-pricing")
        page.click("#signup")
        with page.expect_download():
            page.click("#download")
        page.click("#outbound")
        page.wait_for_url(re.compile(r"http://elsewhere\.test:\d+/out\?from=shop"))
        page.goto(f"{origin}/missing")
        page.goto("about:blank")
        page.wait_for_timeout(500)
        context.close()
        sent.append(events)
    # Then nothing was sent, and nothing stored
    assert [s.events for s in sent] == [[], []]
    assert stored(stack, "optout.test") == []


HASH_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Docs</title>
<script>window.liveinsight=window.liveinsight||function(){(window.liveinsight.q=window.liveinsight.q||[]).push(arguments)}
liveinsight('Queued', {props: {early: 'yes'}})</script>
<script defer data-hash src="STACK/js/script.js"></script></head>
<body><a id="settings" href="#/settings">Settings</a></body></html>"""


def test_hash_routing_and_calls_queued_before_the_script_loads_are_counted(
    stack: Stack, sites: Sites, chromium: Any
) -> None:
    # Given a hash-routed site whose page calls liveinsight() before the script has loaded
    key = stack.cli("site", "add", "hash.test", "--json")["key"]
    sites.extra["hash.test"] = HASH_PAGE.replace("STACK", stack.url)
    context, page, sent = browse(chromium)
    # When a visitor opens it and follows a #/ link, then the app sets another fragment
    page.goto(f"{sites.origin('hash.test')}/docs")
    page.click("#settings")
    page.evaluate("location.hash = '#/billing'")
    settle(page, lambda: sent.names().count("pageview") == 3)
    context.close()
    # Then each route was a pageview sent in hash mode, and the queued event went out too
    assert {e["h"] for e in sent.named("pageview")} == {1}
    assert sent.named("Queued")[0]["props"] == {"early": "yes"}
    wait_for(
        lambda: (
            stats(stack, key, "hash.test", "aggregate", metrics="events")["events"]["value"] == 4
        )
    )

    # (the breakdowns' items may still be landing: a Query can see a transaction half applied)
    def all_pages() -> dict[str, Any] | None:
        pages = breakdown(stack, key, "hash.test", "event:page", "pageviews")
        return pages if sum(pages.values()) == 3 else None

    pages = wait_for(all_pages)
    assert pages == {"/docs": 1, "/docs#/settings": 1, "/docs#/billing": 1}
    early = wait_for(lambda: breakdown(stack, key, "hash.test", "event:props:early", "events"))
    assert early == {"yes": 1}


# A website id an Umami server issued: nothing derives it from a domain (docs/compat.md §7)
ATTACHED_UMAMI_ID = "50429a93-8479-4073-be80-d5d29c09c2ec"
MOVED_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Moved</title>
<script defer src="/trackers/umami.js" data-website-id="WEBSITE" data-host-url="STACK"></script>
</head><body><h1>Moved from Umami</h1></body></html>"""


def test_umami_snippet_keeping_its_website_id_is_counted_on_the_site_it_is_attached_to(
    stack: Stack, sites: Sites, chromium: Any
) -> None:
    # Given a site with an existing Umami snippet's website id attached, and the snippet kept
    # as it was but for the host
    key = stack.cli("site", "add", "moved.test", "--json")["key"]
    updated = stack.cli("site", "update", "moved.test", "--umami-id", ATTACHED_UMAMI_ID, "--json")
    assert updated["umami_id"] == ATTACHED_UMAMI_ID
    sites.extra["moved.test"] = MOVED_PAGE.replace("WEBSITE", ATTACHED_UMAMI_ID).replace(
        "STACK", stack.url
    )
    # When a visitor opens a page and the site tracks an event through Umami's tracker
    context, page, sent = browse(chromium)
    page.goto(f"{sites.origin('moved.test')}/welcome")
    settle(page, lambda: "pageview" in sent.names())
    page.evaluate("umami.track('Signup', {plan: 'pro'})")
    settle(page, lambda: "Signup" in sent.names())
    context.close()
    # Then the tracker sent the attached id, and the site counts both
    assert {e["website"] for e in sent.events} == {ATTACHED_UMAMI_ID}

    def read() -> dict[str, Any]:
        totals = stats(stack, key, "moved.test", "aggregate", metrics="pageviews,events")
        return {
            "totals": {metric: value["value"] for metric, value in totals.items()},
            "names": breakdown(stack, key, "moved.test", "event:name", "events"),
            "pages": breakdown(stack, key, "moved.test", "event:page", "pageviews"),
            "plan": breakdown(stack, key, "moved.test", "event:props:plan", "events"),
        }

    expected = {
        "totals": {"pageviews": 1, "events": 2},
        "names": {"Signup": 1},
        "pages": {"/welcome": 1},
        "plan": {"pro": 1},
    }
    # (read until settled: a Query can see a transaction half applied)
    wait_for(lambda: read() == expected, timeout=30)
    assert read() == expected


# The real @umami/node (tests/trackers): a server-side client, so no hostname, no Origin, and its
# own user agent. It posts {type, payload}; `track(object)` sends the object (a pageview when it
# has no name), `track(name, data)` an event without a url. Prints each answer as JSON.
# (Node loads the package's CommonJS `main`, so the client is its `default` export.)
UMAMI_NODE = REPO / "tests" / "trackers" / "node_modules" / "@umami" / "node"
NODE_SCRIPT = """
import pkg from "@umami/node";
const umami = pkg.default;
const [websiteId, hostUrl] = process.argv.slice(1);
umami.init({websiteId, hostUrl});
const answers = [];
for (const call of [() => umami.track({url: "/checkout", title: "Checkout"}),
                    () => umami.track("signup", {plan: "pro"})]) {
  const response = await call();
  answers.push({status: response.status, body: await response.text()});
}
console.log(JSON.stringify(answers));
"""
# Another id an Umami server issued (each id belongs to one site: moved.test holds the other)
NODE_ATTACHED_UMAMI_ID = "8c1f3a52-6e0d-4b7a-9f21-3d5e7a90b4c6"


def umami_node_track(stack: Stack, website: str) -> list[dict[str, Any]]:
    """Run the real @umami/node against the local stack: a page with a url, an event with data."""
    if not (UMAMI_NODE / "package.json").exists():
        pytest.fail("@umami/node is not installed: run `make trackers` (make test does it)")
    out = subprocess.run(
        ["node", "--input-type=module", "-e", NODE_SCRIPT, website, stack.url],
        cwd=REPO / "tests" / "trackers",  # where `import "@umami/node"` resolves
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    answers: list[dict[str, Any]] = json.loads(out.stdout)
    return answers


def test_umami_node_is_counted_with_the_attached_and_the_derived_website_id(
    stack: Stack,
) -> None:
    # Given a site with an Umami website id attached
    key = stack.cli("site", "add", "node.test", "--json")["key"]
    stack.cli("site", "update", "node.test", "--umami-id", NODE_ATTACHED_UMAMI_ID, "--json")

    def read() -> dict[str, Any]:
        totals = stats(stack, key, "node.test", "aggregate", metrics="pageviews,events")
        return {
            "totals": {metric: value["value"] for metric, value in totals.items()},
            "names": breakdown(stack, key, "node.test", "event:name", "events"),
            "pages": breakdown(stack, key, "node.test", "event:page", "pageviews"),
            "plan": breakdown(stack, key, "node.test", "event:props:plan", "events"),
        }

    # When @umami/node sends a page and an event with the attached id, then with the derived one,
    # each is answered as Umami answers and counted on the site (read until settled: a Query can
    # see a transaction half applied)
    for n, website in enumerate((NODE_ATTACHED_UMAMI_ID, website_id("node.test")), start=1):
        answers = umami_node_track(stack, website)
        assert [a["status"] for a in answers] == [200, 200], answers
        assert all({"sessionId", "visitId"} <= set(json.loads(a["body"])) for a in answers)
        expected = {
            "totals": {"pageviews": n, "events": 2 * n},
            "names": {"signup": n},
            "pages": {"/checkout": n},
            "plan": {"pro": n},
        }
        with contextlib.suppress(AssertionError):  # the assertion below shows what was read
            wait_for(lambda expected=expected: read() == expected, timeout=30)
        assert read() == expected
