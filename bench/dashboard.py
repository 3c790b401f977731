"""The dashboard in Chromium (issue 5): how soon a site's dashboard shows its numbers, what its
first load costs in bytes and requests, and how many requests one realtime refresh makes.

Each load is a fresh browser context (a cold cache), against the running local stack. Paint
times come from Chromium itself: CDP `Performance.getMetrics` (FirstMeaningfulPaint, relative to
NavigationStart), the paint and largest-contentful-paint entries, and the moment the metric row
(the first numbers a reader looks for) is on screen after htmx swapped it in. The local front
serves files uncompressed; CloudFront compresses them (`compress = true`), so the gzip size of
the same bodies is a row of its own. Locally one warm query Lambda answers the dashboard's seven
card requests in turn (in AWS they run side by side), so the metric row waits for its
neighbours here: the figure is an upper bound.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)

# Runs before the page's own scripts: records paints, and when the metric row is first painted
# (the frame after htmx settles it).
PROBE = """
window.__bench = {};
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__bench[entry.name] = entry.startTime;
}).observe({ type: "paint", buffered: true });
new PerformanceObserver((list) => {
  const entries = list.getEntries();
  window.__bench.lcp = entries[entries.length - 1].startTime;
}).observe({ type: "largest-contentful-paint", buffered: true });
document.addEventListener("htmx:afterSettle", (event) => {
  if (event.detail.target.id !== "metrics" || window.__bench.metrics) return;
  requestAnimationFrame(() => setTimeout(() => { window.__bench.metrics = performance.now(); }));
});
"""


def _cold_load(browser: Any, url: str) -> dict[str, float]:
    context = browser.new_context(user_agent=UA, viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.add_init_script(PROBE)
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        cdp.send("Network.enable")
        encoded: list[float] = []
        ids: dict[str, str] = {}
        cdp.on(
            "Network.requestWillBeSent",
            lambda e: ids.setdefault(e["requestId"], e["request"]["url"]),
        )
        cdp.on("Network.loadingFinished", lambda e: encoded.append(e["encodedDataLength"]))
        responses: list[Any] = []
        page.on("response", lambda response: responses.append(response))
        page.goto(url)
        page.wait_for_function("() => window.__bench.metrics && window.__bench.lcp")
        page.wait_for_load_state("networkidle")
        marks = page.evaluate("window.__bench")
        bodies = [r.body() for r in responses if r.ok]
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        return {
            "fmp": (metrics["FirstMeaningfulPaint"] - metrics["NavigationStart"]) * 1000,
            "fcp": marks["first-contentful-paint"],
            "lcp": marks["lcp"],
            "metrics": marks["metrics"],
            "bytes": sum(encoded),
            "gzip": sum(len(gzip.compress(b)) for b in bodies),
            "requests": len(ids),
        }
    finally:
        context.close()


def _realtime_requests(browser: Any, url: str, seconds: float) -> tuple[float, float]:
    """Requests per refresh of the realtime view, and bytes per refresh, once it is loaded."""
    context = browser.new_context(user_agent=UA, viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#realtime [data-testid=current-visitors]")
        page.wait_for_load_state("networkidle")
        seen: list[Any] = []
        page.on("requestfinished", lambda request: seen.append(request))
        page.wait_for_timeout(seconds * 1000)  # (a sleep would hold back Playwright's events)
        refreshes = [r for r in seen if "/api/realtime/card" in r.url]
        if not refreshes:
            return float("nan"), float("nan")
        sizes = [
            r.sizes()["responseBodySize"] + r.sizes()["responseHeadersSize"] for r in refreshes
        ]
        return len(seen) / len(refreshes), statistics.median(sizes)
    finally:
        context.close()


def rows(url: str, site: str, key: str, runs: int = 5) -> list[dict[str, Any]]:
    if not Path(CHROMIUM).exists():
        return []  # no browser here: the table simply has no dashboard rows
    from playwright.sync_api import sync_playwright

    dashboard = f"{url}/?site={site}&period=30d#key={key}"
    realtime = f"{url}/?site={site}#key={key}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            _cold_load(browser, dashboard)  # warm the query Lambda's caches, as a visitor would
            loads = [_cold_load(browser, dashboard) for _ in range(runs)]
            per_refresh, refresh_bytes = _realtime_requests(browser, realtime, seconds=15.5)
        finally:
            browser.close()

    def median(name: str) -> float:
        return statistics.median(load[name] for load in loads)

    return [
        {
            "figure": f"dashboard (30d): first meaningful paint, Chromium (median of {runs} cold loads)",
            "value": round(median("fmp"), 1),
            "unit": "ms",
            "goal": "≤ 1000",
            "anchor": "",
        },
        {
            "figure": "dashboard (30d): first contentful paint",
            "value": round(median("fcp"), 1),
            "unit": "ms",
            "goal": "",
            "anchor": "",
        },
        {
            "figure": "dashboard (30d): metric row on screen (numbers painted)",
            "value": round(median("metrics"), 1),
            "unit": "ms",
            "goal": "≤ 1000",
            "anchor": "",
        },
        {
            "figure": "dashboard (30d): largest contentful paint",
            "value": round(median("lcp"), 1),
            "unit": "ms",
            "goal": "≤ 2500",
            "anchor": "web.dev 'good' LCP: 2.5 s",
        },
        {
            "figure": "dashboard (30d): bytes transferred, first load (local front, uncompressed)",
            "value": median("bytes"),
            "unit": "bytes",
            "goal": "",
            "anchor": "",
        },
        {
            "figure": "dashboard (30d): the same bodies gzipped (as CloudFront serves them)",
            "value": median("gzip"),
            "unit": "bytes",
            "goal": "≤ 150000",
            "anchor": "",
        },
        {
            "figure": "dashboard (30d): requests, first load",
            "value": median("requests"),
            "unit": "",
            "goal": "",
            "anchor": "",
        },
        {
            "figure": "realtime view: requests per refresh (a watched tab: every 2 s)",
            "value": round(per_refresh, 2),
            "unit": "",
            "goal": "1",
            "anchor": "",
        },
        {
            "figure": "realtime view: bytes per refresh (headers + body)",
            "value": refresh_bytes,
            "unit": "bytes",
            "goal": "",
            "anchor": "",
        },
    ]


# ---- user-seen freshness (issue 20, item 5) ---------------------------------------------------

FRESHNESS_SITE = "fresh.example"
FRESHNESS_ANCHOR = "Plausible's realtime polls every 30 s, Umami's every 10 s"

# Watches the realtime card's pageviews (the card is swapped whole by htmx, so the observer sits
# on its container) and notes the wall-clock time each new value is in the DOM.
WATCH = """
() => {
  const read = () => {
    const cell = document.querySelector("#realtime [data-testid=pageviews-30m]");
    return cell ? Number(cell.textContent.replace(/[^0-9]/g, "")) : NaN;
  };
  window.__seen = { value: read(), at: Date.now() };
  new MutationObserver(() => {
    const value = read();
    if (value !== window.__seen.value) window.__seen = { value, at: Date.now() };
  }).observe(document.getElementById("realtime"), { childList: true, subtree: true, characterData: true });
}
"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _post_pageview(url: str, site: str, path: str, ip: str) -> None:
    body = json.dumps({"n": "pageview", "u": f"https://{site}{path}", "d": site}).encode()
    request = urllib.request.Request(
        f"{url}/api/event",
        data=body,
        headers={"content-type": "text/plain", "user-agent": UA, "x-forwarded-for": ip},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 202:
            raise RuntimeError(f"POST /api/event answered {response.status}")


def user_seen_freshness(
    url: str, site: str, key: str, samples: int = 20, seed: int = 5
) -> list[float]:
    """Seconds from a POST /api/event to the realtime dashboard in Chromium showing one more
    pageview, `samples` times. Each POST waits a random 0-10 s first, so it lands anywhere in the
    poll cycle (10 s is a whole number of 2 s, 5 s and 10 s cycles), and the mouse moves before
    it: someone is watching the page (app.js polls a watched page faster)."""
    from playwright.sync_api import sync_playwright

    rnd = random.Random(seed)
    latencies: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            context = browser.new_context(user_agent=UA, viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(f"{url}/?site={site}#key={key}")
            page.wait_for_selector("#realtime [data-testid=pageviews-30m]")
            page.evaluate(WATCH)
            for i in range(samples):
                page.wait_for_timeout(rnd.uniform(0, 10) * 1000)
                page.mouse.move(rnd.uniform(100, 1100), rnd.uniform(100, 700))
                before = page.evaluate("window.__seen.value")
                sent = time.time() * 1000
                _post_pageview(url, site, f"/fresh/{i}", f"198.51.100.{i % 250 + 1}")
                page.wait_for_function(
                    "(before) => window.__seen.value > before", arg=before, timeout=60_000
                )
                latencies.append((page.evaluate("window.__seen.at") - sent) / 1000)
            context.close()
        finally:
            browser.close()
    return latencies


@contextlib.contextmanager
def _functions_log_to(path: Path) -> Iterator[None]:
    """The functions' log lines and EMF blobs into `path` (stdout is the bench table's)."""
    from core.observability import logger

    with path.open("a") as sink:
        handlers = [
            h
            for service in ("ingest", "aggregator", "query")
            for h in logger(service)._logger.handlers
            if isinstance(h, logging.StreamHandler)
        ]
        streams = [h.setStream(sink) for h in handlers]
        console, sys.stdout = sys.stdout, sink  # EMF blobs are print()ed
        try:
            yield
        finally:
            sys.stdout = console
            for handler, stream in zip(handlers, streams, strict=True):
                if stream is not None:
                    handler.setStream(stream)


def freshness_rows(samples: int = 20) -> list[dict[str, Any]]:
    """`python -m bench --only freshness`: its own local stack (as `liveinsight dev` runs it), a
    site with a read key, the realtime view in Chromium, `samples` events."""
    if not Path(CHROMIUM).exists():
        return []
    import socket

    from local.stack import LocalStack, StackConfig

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with (
        tempfile.TemporaryDirectory(prefix="bench-fresh-") as tmp,
        _functions_log_to(Path(tmp) / "functions.log"),
    ):
        stack = LocalStack(StackConfig(port=port, data_dir=Path(tmp), persist=False))
        stack.start()
        try:
            from core.aws import make_client
            from core.sites import SiteStore

            sites = SiteStore(make_client("dynamodb"), stack.names["meta"])
            sites.add(FRESHNESS_SITE)
            key = sites.create_key(FRESHNESS_SITE)
            latencies = user_seen_freshness(stack.url, FRESHNESS_SITE, key, samples)
        finally:
            stack.stop()
    figure = "user-seen freshness {} (POST → number on the realtime dashboard in Chromium)"
    return [
        {
            "figure": figure.format("p50"),
            "value": round(statistics.median(latencies), 2),
            "unit": "s",
            "goal": "",
            "anchor": FRESHNESS_ANCHOR,
        },
        {
            "figure": figure.format("p95"),
            "value": round(_percentile(latencies, 0.95), 2),
            "unit": "s",
            "goal": "≤ 3 s (p95)",
            "anchor": FRESHNESS_ANCHOR,
        },
        {
            "figure": "user-seen freshness: slowest of the samples",
            "value": round(max(latencies), 2),
            "unit": "s",
            "goal": "",
            "anchor": f"{len(latencies)} samples, a watched tab (input within 2 min)",
        },
    ]
