"""Parsing a stats request into a `Query`: properties, filters, periods and metrics, with
Plausible's rules and error messages (docs/compat.md §3). The first step of every stats question:
parse → plan (query_api/plan.py) → engine (counters or archive) → render (the routes, cards).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends
from fastapi import Query as QueryParam

from core import vocabulary
from core.events import MAX_PROP_KEY_BYTES
from core.sites import PAGEVIEW_GOAL_PREFIX, Site
from query_api.errors import BadRequest

DOCS = "https://plausible.io/docs/stats-api"
PERIODS = ("day", "7d", "30d", "month", "6mo", "12mo", "year", "custom")
V1_PERIODS = ("day", "7d", "30d", "month", "6mo", "12mo", "custom")

# ---- properties --------------------------------------------------------------------------------

SESSION, PAGE, HOSTNAME, NAME, GOAL, PROP = (
    vocabulary.SESSION,
    vocabulary.PAGE,
    vocabulary.HOSTNAME,
    vocabulary.NAME,
    vocabulary.GOAL,
    vocabulary.PROP,
)

SESSION_PROPERTIES = {
    "visit:source": "source",
    "visit:referrer": "referrer",
    "visit:utm_medium": "utm_medium",
    "visit:utm_source": "utm_source",
    "visit:utm_campaign": "utm_campaign",
    "visit:utm_content": "utm_content",
    "visit:utm_term": "utm_term",
    "visit:device": "device",
    "visit:browser": "browser",
    "visit:browser_version": "browser_version",
    "visit:os": "os",
    "visit:os_version": "os_version",
    "visit:country": "country",
    "visit:region": "region",
    "visit:city": "city",
    "visit:channel": "channel",
    "visit:entry_page": "entry_page",
    "visit:exit_page": "exit_page",
}
EVENT_ONLY = ("event:name", "event:goal", "event:props:")

# metrics
VISITORS, VISITS, PAGEVIEWS, EVENTS = (
    vocabulary.VISITORS,
    vocabulary.VISITS,
    vocabulary.PAGEVIEWS,
    vocabulary.EVENTS,
)
VIEWS_PER_VISIT, BOUNCE_RATE, VISIT_DURATION = "views_per_visit", "bounce_rate", "visit_duration"
CONVERSION_RATE, TIME_ON_PAGE = "conversion_rate", "time_on_page"
SCROLL_DEPTH = "scroll_depth"  # ours: the mean of each visitor's deepest scroll on a page, %
METRICS = (
    VISITORS,
    VISITS,
    PAGEVIEWS,
    VIEWS_PER_VISIT,
    BOUNCE_RATE,
    VISIT_DURATION,
    EVENTS,
    CONVERSION_RATE,
    TIME_ON_PAGE,
    SCROLL_DEPTH,
)
SESSION_METRICS = (VISITS, BOUNCE_RATE, VISIT_DURATION, VIEWS_PER_VISIT)


@dataclass(frozen=True)
class Property:
    name: str  # as the API spells it: "visit:source", "event:props:plan"
    kind: str
    dimension: str  # the counter dimension: "source", "prop:plan"; "" for goals

    @property
    def key(self) -> str:
        """The result key of a breakdown row: the name without `event:`/`visit:`/`props:`
        (a prop's whole key, which may hold a `:` of its own)."""
        if self.kind == PROP:
            return self.name.removeprefix("event:props:")
        return self.name.split(":")[-1]

    @property
    def event_only(self) -> bool:
        return self.name.startswith(EVENT_ONLY)


def parse_property(name: str, *, filter_: bool = False) -> Property:
    if name in SESSION_PROPERTIES:
        return Property(name, SESSION, SESSION_PROPERTIES[name])
    if name == "event:page":
        return Property(name, PAGE, "page")
    if name == "event:hostname":
        return Property(name, HOSTNAME, "hostname")
    if name == "event:name":
        return Property(name, NAME, "name")
    if name == "event:goal":
        return Property(name, GOAL, "")
    key = name.removeprefix("event:props:")
    if name.startswith("event:props:") and 0 < len(key.encode()) <= MAX_PROP_KEY_BYTES:
        return Property(name, PROP, "prop:" + name.removeprefix("event:props:"))
    if filter_:
        raise BadRequest(
            f"Invalid filter property '{name}'. Please provide a valid filter property: "
            f"{DOCS}#properties"
        )
    raise BadRequest(
        f"Invalid property '{name}'. Please provide a valid property for the breakdown "
        f"endpoint: {DOCS}#properties"
    )


# ---- filters -----------------------------------------------------------------------------------

MAX_PATTERNS = 10  # wildcard values in one filter
FILTER_RE = re.compile(r"^\s*([a-z_:]+[a-zA-Z0-9_:.\-]*)\s*(==|!=)\s*(.*)$", re.S)


@dataclass(frozen=True)
class Filter:
    prop: Property
    negated: bool
    values: tuple[str, ...]  # `*` is a wildcard

    @property
    def single(self) -> bool:
        """It matches at most one value."""
        return not self.negated and len(self.values) == 1 and "*" not in self.values[0]

    def matches(self, value: str) -> bool:
        hit = value in self._exact or any(_parts_match(p, value) for p in self._patterns)
        return hit != self.negated

    @cached_property
    def _exact(self) -> frozenset[str]:
        return frozenset(v for v in self.values if "*" not in v)

    @cached_property
    def _patterns(self) -> tuple[list[str], ...]:
        return tuple(v.split("*") for v in self.values if "*" in v)


def wildcard_match(pattern: str, value: str) -> bool:
    """Plausible's `*`: any run of characters (`**` is the same). Matched part by part in one
    left-to-right pass (no backtracking), never with a regex: a regex of many `.*` backtracks
    polynomially in the number of stars, and `/**********X` against a 40-character value held
    a query for minutes.

    Between the first part (a prefix) and the last (a suffix), each middle part is taken at its
    leftmost place: any later place leaves less room for the parts after it, so if some way to
    match exists, the leftmost one is among them."""
    return _parts_match(pattern.split("*"), value)


def _parts_match(parts: list[str], value: str) -> bool:
    """`parts`: a pattern split at its stars."""
    if len(parts) == 1:
        return parts[0] == value
    head, *middle, tail = parts
    if len(value) < len(head) + len(tail):
        return False
    if not value.startswith(head) or not value.endswith(tail):
        return False
    at, end = len(head), len(value) - len(tail)
    for part in middle:
        if part:
            found = value.find(part, at, end)
            if found < 0:
                return False
            at = found + len(part)
    return True


def parse_filters(raw: str | None) -> tuple[Filter, ...]:
    """Plausible's v1 filter syntax: `event:page==/blog*;visit:country==DE|FR`, `!=`."""
    if not raw or not raw.strip():
        return ()
    filters = []
    for part in re.split(r"(?<!\\);", raw):
        if not part.strip():
            continue
        match = FILTER_RE.match(part)
        if not match:
            raise BadRequest(
                f"Invalid filter '{part.strip()}'. Filters look like `visit:country==DE|FR` or "
                f"`event:page!=/blog*`, joined by `;`. See {DOCS}#filtering"
            )
        name, op, values = match.groups()
        parts = tuple(
            v.replace("\\|", "|").replace("\\;", ";") for v in re.split(r"(?<!\\)\|", values)
        )
        if not any(parts):
            raise BadRequest(f"Filter '{part.strip()}' has no value to compare with.")
        parts = tuple(dict.fromkeys(parts))  # a value twice is one value
        if sum("*" in p for p in parts) > MAX_PATTERNS:
            # each row of a period is tried against each pattern (Plausible allows none in `|`)
            raise BadRequest(
                f"Filter '{part.strip()[:100]}' has more than {MAX_PATTERNS} values with a `*` "
                f"wildcard. See {DOCS}#filtering"
            )
        filters.append(Filter(parse_property(name, filter_=True), op == "!=", parts))
    return tuple(filters)


# ---- periods -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DateRange:
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def each_day(self) -> Iterator[date]:
        day = self.first
        while day <= self.last:
            yield day
            day += timedelta(days=1)


def today_in(tz: str, now: datetime) -> date:
    return now.astimezone(ZoneInfo(tz)).date()


def parse_date(raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError as exc:
        raise BadRequest(
            f"Error parsing `date` parameter: {exc}. Please specify a valid date in ISO-8601 "
            "format."
        ) from None


# The days a period, and the one before it that a comparison reads, may cover: Python's calendar
# (years 1 to 9999) less a day at each end, so that stepping to the next day, or to the UTC
# hours of a local day, never leaves it.
FIRST_DAY, LAST_DAY = date(1, 1, 2), date(9999, 12, 30)


def parse_period(period: str | None, date_param: str | None, today: date) -> DateRange:
    """Plausible's periods, in the site's local days; `date` is the day the period ends on."""
    period = period or "30d"
    if period not in PERIODS:
        raise BadRequest(
            f"Error parsing `period` parameter: invalid period `{period}`. Please find accepted "
            f"values in our docs: {DOCS}#time-periods"
        )
    if period == "custom":
        span = _custom_period(date_param)
    else:
        end = today if not date_param or date_param == "today" else parse_date(date_param)
        try:
            span = _period_ending(period, end)
        except (OverflowError, ValueError):  # a date before year 1 or after 9999
            raise _beyond_the_calendar() from None
    try:
        before = previous_period(span)
    except (OverflowError, ValueError):
        raise _beyond_the_calendar() from None
    if before.first < FIRST_DAY or span.last > LAST_DAY:
        raise _beyond_the_calendar()
    return span


def _beyond_the_calendar() -> BadRequest:
    return BadRequest(
        "Error parsing `date` parameter: the period, and the one before it that a comparison "
        f"reads, must lie between {FIRST_DAY} and {LAST_DAY}. See {DOCS}#time-periods"
    )


def _custom_period(date_param: str | None) -> DateRange:
    if not date_param:
        raise BadRequest(
            f"The `date` parameter is required when using a custom period. See {DOCS}#time-periods"
        )
    parts = date_param.split(",")
    try:
        first, last = (date.fromisoformat(p.strip()) for p in parts)
    except ValueError:
        raise BadRequest(
            "Invalid format for `date` parameter. When using a custom period, please include "
            f"two ISO-8601 formatted dates joined by a comma. See {DOCS}#time-periods"
        ) from None
    if last < first:
        raise BadRequest("The custom period ends before it starts.")
    if (last - first).days > 3 * 366:
        raise BadRequest("A custom period can span at most three years.")
    return DateRange(first, last)


def _period_ending(period: str, end: date) -> DateRange:
    if period == "day":
        return DateRange(end, end)
    if period == "7d":
        return DateRange(end - timedelta(days=6), end)
    if period == "30d":
        return DateRange(end - timedelta(days=30), end)  # as Plausible does: 31 days
    if period == "month":
        return DateRange(end.replace(day=1), last_of_month(end))
    if period == "year":
        return DateRange(date(end.year, 1, 1), date(end.year, 12, 31))
    months = 6 if period == "6mo" else 12
    return DateRange(_shift_months(end.replace(day=1), -(months - 1)), last_of_month(end))


def previous_period(current: DateRange) -> DateRange:
    """The range of the same length just before; whole months map to as many whole months."""
    if current.first.day == 1 and current.last == last_of_month(current.last):
        months = (current.last.year - current.first.year) * 12 + (
            current.last.month - current.first.month
        )
        first = _shift_months(current.first, -(months + 1))
        return DateRange(first, current.first - timedelta(days=1))
    length = timedelta(days=current.days)
    return DateRange(current.first - length, current.last - length)


def last_of_month(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _shift_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


# ---- the query ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    site: Site
    span: DateRange
    filters: tuple[Filter, ...] = ()
    metrics: tuple[str, ...] = (VISITORS,)


def parse_metrics(
    raw: str | None, prop: Property | None, filters: tuple[Filter, ...]
) -> tuple[str, ...]:
    """Plausible's metric validation, in its words (what the counters keep is checked later)."""
    metrics = tuple(m.strip() for m in (raw or VISITORS).split(","))
    if len(set(metrics)) != len(metrics):
        raise BadRequest("Metrics cannot be queried multiple times.")
    filtered = {f.prop.name for f in filters}
    for metric in metrics:
        if metric not in METRICS:
            raise BadRequest(
                f"The metric `{metric}` is not recognized. Find valid metrics from the "
                f"documentation: {DOCS}#metrics"
            )
        checks = (_time_on_page_error, _conversion_rate_error, _views_per_visit_error)
        for check in (*checks, _session_metric_error):
            error = check(metric, prop, filtered)
            if error:
                raise BadRequest(error)
    return metrics


def _time_on_page_error(metric: str, prop: Property | None, filtered: set[str]) -> str | None:
    """Plausible's rule for time on page; scroll depth (ours) follows it."""
    if metric not in (TIME_ON_PAGE, SCROLL_DEPTH):
        return None
    for which in ("event:goal", "event:name"):
        if which in filtered:
            return f"Metric `{metric}` cannot be queried when filtering by `{which}`"
    if prop is not None and prop.name != "event:page":
        return (
            f"Metric `{metric}` is not supported in breakdown queries (except `event:page` "
            "breakdown)"
        )
    if prop is None and "event:page" not in filtered:
        return f"Metric `{metric}` can only be queried in a page breakdown or with a page filter."
    return None


def _conversion_rate_error(metric: str, prop: Property | None, filtered: set[str]) -> str | None:
    goal = (prop is not None and prop.name == "event:goal") or "event:goal" in filtered
    if metric != CONVERSION_RATE or goal:
        return None
    return f"Metric `{metric}` can only be queried in a goal breakdown or with a goal filter"


def _views_per_visit_error(metric: str, prop: Property | None, filtered: set[str]) -> str | None:
    if metric != VIEWS_PER_VISIT:
        return None
    if "event:page" in filtered:
        return f"Metric `{metric}` cannot be queried with a filter on `event:page`."
    if prop is not None:
        return f"Metric `{metric}` is not supported in breakdown queries."
    return None


def _session_metric_error(metric: str, prop: Property | None, filtered: set[str]) -> str | None:
    if metric not in SESSION_METRICS:
        return None
    if prop is not None and prop.event_only:
        return f"Session metric `{metric}` cannot be queried for breakdown by `{prop.name}`."
    event_filter = next((f for f in sorted(filtered) if f.startswith(EVENT_ONLY)), None)
    if event_filter:
        return (
            f"Session metric `{metric}` cannot be queried when using a filter on `{event_filter}`."
        )
    return None


# ---- request parameters shared by the stats routes and the cards ----------------------------

Param = Annotated[str | None, QueryParam(max_length=2000)]


def build_query(
    site: Site,
    now: Any,
    *,
    period: str | None,
    date_param: str | None,
    metrics: str | None,
    filters: str | None,
    prop: Property | None = None,
    default_metrics: str = VISITORS,
) -> Query:
    span = parse_period(period, date_param, today_in(site.tz, now))
    parsed_filters = parse_filters(filters)
    _check_goals(site, parsed_filters)
    parsed_metrics = parse_metrics(metrics or default_metrics, prop, parsed_filters)
    return Query(site, span, parsed_filters, parsed_metrics)


def _check_goals(site: Site, filters: tuple[Filter, ...]) -> None:
    """A goal filter names a configured goal (any event name while none are configured, so
    then a pageview goal is never one)."""
    for f in filters:
        if f.prop.kind != GOAL:
            continue
        for goal in f.values:
            if "*" in goal or goal_configured(site, goal):
                continue
            if goal.startswith(PAGEVIEW_GOAL_PREFIX):
                path = goal.removeprefix(PAGEVIEW_GOAL_PREFIX)
                first = (
                    f"The pageview goal for the pathname `{path}` is not configured for this site. "
                )
            else:
                first = f"The goal `{goal}` is not configured for this site. "
            raise BadRequest(
                first + "Find out how to configure goals here: "
                "https://plausible.io/docs/stats-api#filtering-by-goals"
            )


def goal_configured(site: Site, goal: str) -> bool:
    """A configured goal, or any custom event name while none are configured (never a pageview
    goal then). Shared with the v2 parser."""
    if goal in site.goals:
        return True
    return not site.goals and not goal.startswith(PAGEVIEW_GOAL_PREFIX)


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return 100
    if raw.isdigit() and 1 <= int(raw) <= 1000:
        return int(raw)
    raise BadRequest("Please provide limit as a number between 1 and 1000.")


def parse_page(raw: str | None) -> int:
    if raw is None:
        return 1
    if raw.isdigit() and 1 <= int(raw) <= 1_000_000:
        return int(raw)
    raise BadRequest("Please provide page as a positive number.")


def parse_interval(raw: str | None, period: str | None) -> str:
    period = period or "30d"
    if raw is None:
        if period in ("6mo", "12mo", "year"):
            return "month"
        return "hour" if period == "day" else "day"
    interval = "day" if raw == "date" else raw
    if interval == "hour" and period == "day":
        return interval
    if interval not in ("day", "month"):
        raise BadRequest(
            f"Error parsing `interval` parameter: invalid interval `{raw}`. Valid intervals are "
            "`day`, `month`"
        )
    return interval


def parse_breakdown_property(raw: str | None) -> Property:
    if not raw:
        raise BadRequest(
            "The `property` parameter is required. Please provide at least one property to show "
            "a breakdown by."
        )
    return parse_property(raw)


def _v1_period(period: str | None) -> str | None:
    if period is not None and period not in V1_PERIODS:
        raise BadRequest(
            f"Error parsing `period` parameter: invalid period `{period}`. Please find accepted "
            f"values in our docs: {DOCS}#time-periods"
        )
    return period


SHORT_PROPERTIES = {
    **{v: k for k, v in SESSION_PROPERTIES.items()},
    "page": "event:page",
    "hostname": "event:hostname",
    "name": "event:name",
    "goal": "event:goal",
}


def long_property(name: str) -> str:
    """`source` → `visit:source`, `prop:plan` → `event:props:plan`; v1 names pass through."""
    if name.startswith("prop:"):
        return "event:props:" + name.removeprefix("prop:")
    return SHORT_PROPERTIES.get(name, name)


@dataclass(frozen=True)
class View:
    """The period and filters of our stats API and the dashboard cards; a custom period may come
    as `from`/`to` as well as Plausible's `date=first,last`."""

    period: str | None
    date: str | None
    filters: str | None


def view(
    period: Annotated[
        str | None,
        QueryParam(max_length=20, description="day, 7d, 30d, month, 6mo, 12mo, year or custom"),
    ] = None,
    date: Param = None,
    from_: Annotated[str | None, QueryParam(alias="from", max_length=10)] = None,
    to: Annotated[str | None, QueryParam(max_length=10)] = None,
    filters: Param = None,
) -> View:
    if period == "custom" and from_ and to and not date:
        date = f"{from_},{to}"
    return View(period, date, filters)


ViewParams = Annotated[View, Depends(view)]
