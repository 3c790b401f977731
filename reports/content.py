"""A report's numbers, asked of the query side's planner (the code the stats API answers with),
and its rendering: jinja2 templates, an HTML and a text part (decision 0038).

The questions are exactly the stats API's for `period=custom&date=<first>,<last>`: the aggregate
with `compare=previous_period` (a week against the week before, a month against the month before:
query_api/parse.py previous_period), and breakdowns of `visit:source`, `event:page` and, for a
site with goals, `event:goal`. Templates format; they do not compute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.mail import Mail
from core.sites import Site
from reports.schedule import Period

if TYPE_CHECKING:
    import jinja2

    from query_api.plan import Planner

METRICS = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration")
LABELS = {
    "visitors": "Unique visitors",
    "visits": "Visits",
    "pageviews": "Pageviews",
    "bounce_rate": "Bounce rate",
    "visit_duration": "Visit duration",
}
TOP = 5  # rows of each breakdown


@dataclass(frozen=True)
class MetricRow:
    name: str
    label: str
    value: float | int
    change: float | int | None


@dataclass(frozen=True)
class Report:
    site: str
    period: Period
    metrics: list[MetricRow]
    sources: list[dict[str, Any]]
    pages: list[dict[str, Any]]
    goals: list[dict[str, Any]] = field(default_factory=list)

    def numbers(self) -> dict[str, Any]:
        """What the tests compare with the stats API."""
        return {
            "aggregate": {m.name: {"value": m.value, "change": m.change} for m in self.metrics},
            "sources": self.sources,
            "pages": self.pages,
            "goals": self.goals,
        }


def date_param(period: Period) -> str:
    return f"{period.first.isoformat()},{period.last.isoformat()}"


def build(planner: Planner, site: Site, period: Period, now: datetime) -> Report:
    from query_api.parse import build_query, parse_breakdown_property

    dates = date_param(period)
    query = build_query(
        site, now, period="custom", date_param=dates, metrics=",".join(METRICS), filters=None
    )
    results = planner.aggregate(query, compare=True)
    metrics = [
        MetricRow(name, LABELS[name], results[name]["value"] or 0, results[name].get("change"))
        for name in METRICS
    ]

    def top(prop_name: str, metrics: str) -> list[dict[str, Any]]:
        prop = parse_breakdown_property(prop_name)
        q = build_query(
            site, now, period="custom", date_param=dates, metrics=metrics, filters=None, prop=prop
        )
        rows, _ = planner.breakdown(q, prop, TOP, 1)
        return rows

    return Report(
        site.domain,
        period,
        metrics,
        top("visit:source", "visitors"),
        top("event:page", "visitors,pageviews"),
        top("event:goal", "visitors,events") if site.goals else [],
    )


# ---- rendering ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["metric"] = format_metric
    env.filters["change"] = format_change
    env.filters["thousands"] = lambda n: f"{n:,}"
    return env


def format_metric(value: float | int, name: str) -> str:
    if name == "bounce_rate":
        return f"{value:g}%"
    if name == "visit_duration":
        minutes, seconds = divmod(round(value), 60)
        return f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"
    return f"{value:,}"


def format_change(change: float | int | None, name: str) -> str:
    """Plausible's `change`: percent, except bounce rate's, in points."""
    if change is None:
        return "—"
    unit = " pts" if name == "bounce_rate" else "%"
    sign = "+" if change > 0 else ("\u2212" if change < 0 else "\u00b1")
    return f"{sign}{abs(change):g}{unit}"


def mail(
    report: Report,
    to: str,
    unsubscribe_url: str,
    dashboard_url: str,
) -> Mail:
    context = {
        "report": report,
        "period": report.period,
        "dashboard_url": dashboard_url,
        "unsubscribe_url": unsubscribe_url,
    }
    env = environment()
    subject = f"{report.site}: your {report.period.kind} report, {report.period.label}"
    return Mail(
        to,
        subject,
        env.get_template("report.txt").render(**context),
        env.get_template("report.html").render(**context),
        {
            # RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs
            # `List-Unsubscribe=One-Click` to the URL, with no page in between.
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
