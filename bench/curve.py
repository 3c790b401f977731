"""The bill curve: the monthly total at 10 k ... 100 M pageviews a month and idle, beside the peers.

Each volume is priced from the measured run whose rate is closest to the volume's average rate
(0.4 pageviews/s is ~1 M a month), since batching makes a pageview cheaper as traffic grows. The
PNG is drawn by the project's vendored Chart.js in headless Chromium (no network: the page is
set with the script inlined) and written to docs/bill-curve.png.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import bill, prices
from bench.bill import Bill, Shape, Usage
from bench.terraform_facts import TerraformFacts

REPO = Path(__file__).resolve().parent.parent
VOLUMES = (10_000, 100_000, 1_000_000, 10_000_000, 100_000_000)
PNG = REPO / "docs" / "bill-curve.png"
CHART_JS = (
    REPO / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js",
    REPO / "dashboard" / "dist" / "vendor" / "chart.umd.min.js",
)


@dataclass(frozen=True)
class Point:
    label: str
    pageviews: int
    bill: Bill
    rate_used: float  # the measured run it was priced from (pageviews/s)


def nearest_rate(pageviews: float, rates: list[float]) -> float:
    """The measured rate closest (on a log scale) to a month's average rate."""
    rate = pageviews / prices.SECONDS_PER_MONTH
    return min(rates, key=lambda r: abs(math.log(r) - math.log(rate)))


def points(
    per_pageview: dict[float, Usage],
    per_refresh: Usage | Callable[[float], Usage],
    facts: TerraformFacts,
    shape: Shape,
    volumes: tuple[int, ...] = VOLUMES,
) -> list[Point]:
    """Idle and each volume's bill, from the run nearest its rate; a realtime refresh as
    `per_refresh` measured it, or as it gives it for the volume (bench/bill.py `refresh_at`)."""
    rates = sorted(per_pageview)

    def refresh(volume: float) -> Usage:
        return per_refresh(volume) if callable(per_refresh) else per_refresh

    found = [
        Point(
            "idle",
            0,
            bill.idle(per_pageview[rates[0]], refresh(0), facts, shape),
            0.0,
        )
    ]
    for volume in volumes:
        rate = nearest_rate(volume, rates)
        found.append(
            Point(
                _label(volume),
                volume,
                bill.monthly(volume, per_pageview[rate], refresh(volume), facts, shape),
                rate,
            )
        )
    return found


def _label(volume: int) -> str:
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if volume >= size:
            return f"{volume / size:g} {suffix}"
    return str(volume)


def markdown(curve: list[Point]) -> str:
    lines = [
        "| pageviews a month | LiveInsight, no free tier | with the free tier | priced from "
        "| serverless-website-analytics (worst case) | Plausible Cloud |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for p in curve:
        swa = prices.PEER_SWA_MONTHLY.get(p.pageviews)
        plausible = prices.plausible_monthly(p.pageviews) if p.pageviews else None
        lines.append(
            f"| {p.label} | ${p.bill.total:,.2f} | ${p.bill.total_free_tier:,.2f} | "
            + (f"{p.rate_used:g} pageviews/s run" if p.pageviews else "fixed items only")
            + f" | {'$' + format(swa, ',.2f') if swa is not None else '-'}"
            + f" | {_plausible(p.pageviews, plausible)} |"
        )
    lines.append("")
    lines.append(f"Scope: {curve[-1].bill.scope}.")
    return "\n".join(lines)


def _plausible(pageviews: int, usd: float | None) -> str:
    if not pageviews:
        return "-"
    return f"${usd:,.0f}" if usd is not None else "custom (enterprise) price"


def chart_data(curve: list[Point]) -> dict[str, object]:
    """Chart.js datasets: ours with and without the free tier, the peers' published figures."""
    volumes = [p for p in curve if p.pageviews]
    idle = curve[0].bill.total
    return {
        "ours": [{"x": p.pageviews, "y": round(p.bill.total, 2)} for p in volumes],
        "ours_free": [
            {"x": p.pageviews, "y": round(max(p.bill.total_free_tier, 0.01), 2)} for p in volumes
        ],
        "idle": [{"x": volumes[0].pageviews, "y": idle}, {"x": volumes[-1].pageviews, "y": idle}],
        "swa": [{"x": v, "y": usd} for v, usd in sorted(prices.PEER_SWA_MONTHLY.items())],
        "plausible": [{"x": v, "y": usd} for v, usd in sorted(prices.PLAUSIBLE_MONTHLY.items())],
    }


PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>
body{margin:0;background:#fff;font-family:sans-serif}</style></head><body>
<canvas id="c" width="960" height="540"></canvas>
<script>%(chartjs)s</script>
<script>
const d = %(data)s;
const line = (label, data, color, dash) => ({label, data, borderColor: color,
  backgroundColor: color, borderDash: dash || [], pointRadius: 4, tension: 0, fill: false});
new Chart(document.getElementById("c"), {
  type: "line",
  data: {datasets: [
    line("LiveInsight (no free tier)", d.ours, "#2563eb"),
    line("LiveInsight (with the always-free tier)", d.ours_free, "#93c5fd"),
    line("LiveInsight idle (no visitor)", d.idle, "#2563eb", [2, 4]),
    line("serverless-website-analytics, published worst case", d.swa, "#dc2626", [6, 4]),
    line("Plausible Cloud, Growth plan (custom price past 10 M)", d.plausible, "#16a34a", [6, 4]),
  ]},
  options: {animation: false, responsive: false,
    plugins: {title: {display: true, text: %(title)s},
              legend: {position: "bottom"}},
    scales: {
      x: {type: "logarithmic", title: {display: true, text: "pageviews a month"}},
      y: {type: "logarithmic", title: {display: true, text: "USD a month"}}}}
});
window.__done = true;
</script></body></html>"""


def render_png(curve: list[Point], path: Path = PNG) -> Path:
    """docs/bill-curve.png, drawn by Chart.js in headless Chromium (bench/dashboard.py's)."""
    from playwright.sync_api import sync_playwright

    from bench.dashboard import ARGS, CHROMIUM

    script = next((p for p in CHART_JS if p.exists()), None)
    if script is None:
        raise FileNotFoundError("Chart.js: run `npm ci` (node_modules) or `make build`")
    title = json.dumps(
        f"The monthly bill (us-east-1 list prices {prices.AS_OF}; "
        f"{curve[-1].bill.scope.split(';')[1].strip()})"[:160]
    )
    page_html = PAGE % {
        "chartjs": script.read_text(),
        "data": json.dumps(chart_data(curve)),
        "title": title,
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 980, "height": 560})
            page.set_content(page_html)
            page.wait_for_function("window.__done === true")
            path.parent.mkdir(parents=True, exist_ok=True)
            page.locator("#c").screenshot(path=str(path))
        finally:
            browser.close()
    return path
