"""Stats over the pre-aggregated counters: periods, filters, metrics, in the site's time zone.

A query names a range of the site's local days, optional filters and metrics. The range is read
as whole months from month items and the remaining days from day items, so a year is about 12
items per dimension and 30 days 30 (decision record 0007). Counters are added over the buckets;
rates and means are computed last, from the sums.

What the store keeps decides what can be answered exactly: one dimension at a time, each with the
counters the fold gives it (aggregator/fold.py). A question the counters cannot answer exactly
(two dimensions at once, visitors of several pages added together, a value folded into
"(other)") is a `BadRequest` naming the reason, never an estimate.

Unique visitors over several buckets are the sum of each bucket's exact uniques. Visitor ids are
daily (METRICS.md: the same person on two days is two visitors), so this is the exact count of
distinct ids except for an id active on both sides of the site's local midnight (a visit that
crosses it), which counts once per day.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from core import keys, vocabulary
from core.keys import OTHER, TOTALS, Granularity
from core.sites import PAGEVIEW_GOAL_PREFIX, Site
from query_api.errors import BadRequest
from query_api.reader import CounterReader, Pending

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
PROP_KEYS = vocabulary.PROP_KEYS  # events per prop key (aggregator/fold.py)
# Prop keys a day or a month counts under their own names (aggregator.prop_keys.MAX_PROP_KEYS,
# decision 0017); only named in messages.
MAX_PROP_KEYS = 300

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
    "visit:entry_page": "entry_page",
    "visit:exit_page": "exit_page",
}
# Derived from the IP address and user agent, which the daily visitor id hashes: one value per
# visitor, so visitors of several values add up exactly.
PER_VISITOR = {"country", "browser", "browser_version", "os", "os_version"}
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

# The counters (core/vocabulary.py) each metric is computed from.
NEEDS = {
    VISITORS: (VISITORS,),
    VISITS: (VISITS,),
    PAGEVIEWS: (PAGEVIEWS,),
    EVENTS: (EVENTS,),
    VIEWS_PER_VISIT: (PAGEVIEWS, VISITS),
    BOUNCE_RATE: (vocabulary.BOUNCES, VISITS),
    VISIT_DURATION: (vocabulary.DURATION_MS, VISITS),
    TIME_ON_PAGE: (vocabulary.TIME_ON_PAGE_MS, vocabulary.TIME_ON_PAGE_N),
    SCROLL_DEPTH: (vocabulary.SCROLL_SUM, vocabulary.SCROLL_N),
    CONVERSION_RATE: (VISITORS,),
}
# The counters each kind of dimension keeps per value.
KEPT = vocabulary.KEPT


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
    if name.startswith("event:props:") and len(name) > len("event:props:"):
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
        return DateRange(end.replace(day=1), _month_end(end))
    if period == "year":
        return DateRange(date(end.year, 1, 1), date(end.year, 12, 31))
    months = 6 if period == "6mo" else 12
    return DateRange(_shift_months(end.replace(day=1), -(months - 1)), _month_end(end))


def previous_period(current: DateRange) -> DateRange:
    """The range of the same length just before; whole months map to as many whole months."""
    if current.first.day == 1 and current.last == _month_end(current.last):
        months = (current.last.year - current.first.year) * 12 + (
            current.last.month - current.first.month
        )
        first = _shift_months(current.first, -(months + 1))
        return DateRange(first, current.first - timedelta(days=1))
    length = timedelta(days=current.days)
    return DateRange(current.first - length, current.last - length)


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _shift_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


@dataclass(frozen=True)
class Segment:
    """Buckets first..last of one granularity, read with one Query per dimension."""

    granularity: Granularity
    first: str
    last: str


def segments_of(span: DateRange) -> list[Segment]:
    """Whole months as month buckets, the days around them as day buckets."""
    out: list[Segment] = []
    day = span.first
    while day <= span.last:
        month_end = _month_end(day)
        if day.day == 1 and month_end <= span.last:
            last = day
            while _month_end(last) <= span.last:
                nxt = _month_end(last) + timedelta(days=1)
                if _month_end(nxt) > span.last:
                    break
                last = nxt
            out.append(Segment(Granularity.MONTH, day.strftime("%Y-%m"), last.strftime("%Y-%m")))
            day = _month_end(last) + timedelta(days=1)
        else:
            last = min(month_end, span.last)
            if out and out[-1].granularity is Granularity.DAY:  # days run on: one Query
                out[-1] = Segment(Granularity.DAY, out[-1].first, last.isoformat())
            else:
                out.append(Segment(Granularity.DAY, day.isoformat(), last.isoformat()))
            day = last + timedelta(days=1)
    return out


# ---- reading and adding counters ---------------------------------------------------------------

Cell = dict[str, int]


@dataclass
class Totals:
    """Counters of one dimension summed over some buckets, and the buckets that overflowed."""

    cell: Cell = field(default_factory=dict)
    overflowed: list[str] = field(default_factory=list)  # bucket labels with an "(other)"

    def add(self, label: str, cell: Cell) -> None:
        for name, value in cell.items():
            self.cell[name] = self.cell.get(name, 0) + value
        if any(keys.parse_counter_attr(n)[1] == OTHER and v for n, v in cell.items()):
            self.overflowed.append(label)

    def rows(self) -> dict[str, Cell]:
        """{value: {counter: total}}, e.g. {"/blog": {"visitors": 3, "pageviews": 5}}."""
        out: dict[str, Cell] = {}
        for name, count in self.cell.items():
            metric, value = keys.parse_counter_attr(name)
            if value is not None:
                row = out.setdefault(value, {})
                row[metric] = row.get(metric, 0) + count
        return out

    def kept_in_every_overflow(self, values: Iterable[str], per_bucket: dict[str, Cell]) -> bool:
        """Each value has its own counters in every bucket that overflowed, so none of its
        counts went to "(other)" (admission is first come and then final: bounded.py)."""
        for label in self.overflowed:
            present = {keys.parse_counter_attr(n)[1] for n in per_bucket.get(label, {})}
            if not all(v in present for v in values):
                return False
        return True


class Source:
    """Reads counters for a site, caching each (dimension, segment) once per request.

    A segment inside a *cover* (a wider segment of the same granularity, `covering`) is cut from
    the cover's buckets, read whole once: a series of points then costs the Queries of its
    range, not those of each point (a daily series of three years made ~2,200)."""

    def __init__(self, reader: CounterReader, site: str) -> None:
        self._reader = reader
        self._site = site
        self._cache: dict[tuple[str, Segment], dict[str, Cell]] = {}
        self._pending: dict[Segment, Pending] = {}
        self._covers: list[Segment] = []
        self._sorted: dict[tuple[str, Segment], tuple[list[str], list[Cell]]] = {}
        self._key_lists: dict[Segment, dict[str, frozenset[str]]] = {}

    @contextmanager
    def covering(self, segments: list[Segment]) -> Iterator[None]:
        """Cut what is read inside these segments from them, while the block runs (after it,
        a small read, say a breakdown's leading days, must not pull in a series' whole range)."""
        self._covers = segments
        try:
            yield
        finally:
            self._covers = []

    def buckets(self, dimension: str, segment: Segment) -> dict[str, Cell]:
        key = (dimension, segment)
        if key not in self._cache:
            wide = next((c for c in self._covers if c != segment and _inside(segment, c)), None)
            self._cache[key] = (
                self._read(dimension, segment)
                if wide is None
                else self._cut(dimension, wide, segment)
            )
        return self._cache[key]

    def _read(self, dimension: str, segment: Segment) -> dict[str, Cell]:
        if segment not in self._pending:  # every dimension's slots: one Query per segment
            self._pending[segment] = self._reader.pending(
                self._site, segment.granularity, segment.first, segment.last
            )
        return self._reader.buckets(
            self._site,
            segment.granularity,
            dimension,
            segment.first,
            segment.last,
            self._pending[segment],
        )

    def _cut(self, dimension: str, wide: Segment, segment: Segment) -> dict[str, Cell]:
        """The buckets of `segment` among those of `wide` (labels sort as the dates they name)."""
        if (dimension, wide) not in self._sorted:
            ordered = sorted(self.buckets(dimension, wide).items())
            self._sorted[dimension, wide] = ([k for k, _ in ordered], [c for _, c in ordered])
        labels, cells = self._sorted[dimension, wide]
        low, high = bisect_left(labels, segment.first), bisect_right(labels, segment.last)
        return dict(zip(labels[low:high], cells[low:high], strict=True))

    def key_lists(self, segment: Segment) -> dict[str, frozenset[str]]:
        """{bucket label: admitted prop keys} of the segment's buckets that have a list: one
        Query for the segment, or for the cover it lies in."""
        wide = next((c for c in self._covers if _inside(segment, c)), segment)
        if wide not in self._key_lists:
            self._key_lists[wide] = self._reader.prop_key_lists(
                self._site, wide.granularity, wide.first, wide.last
            )
        return {
            label: admitted
            for label, admitted in self._key_lists[wide].items()
            if segment.first <= label <= segment.last
        }

    def over(self, dimension: str, segments: Iterable[Segment]) -> tuple[Totals, dict[str, Cell]]:
        totals = Totals()
        per_bucket: dict[str, Cell] = {}
        for segment in segments:
            for label, cell in sorted(self.buckets(dimension, segment).items()):
                totals.add(label, cell)
                per_bucket[label] = cell
        return totals, per_bucket


def _inside(inner: Segment, outer: Segment) -> bool:
    return (
        inner.granularity is outer.granularity
        and outer.first <= inner.first
        and inner.last <= outer.last
    )


# ---- metrics from counters ---------------------------------------------------------------------

Number = int | float


def compute(metric: str, row: Cell, site_visitors: int = 0) -> Number:
    visits = row.get("visits", 0)
    if metric == VIEWS_PER_VISIT:
        return round(row.get("pageviews", 0) / visits, 2) if visits else 0.0
    if metric == BOUNCE_RATE:
        return round(100 * row.get("bounces", 0) / visits) if visits else 0
    if metric == VISIT_DURATION:
        return round(row.get("duration_ms", 0) / visits / 1000) if visits else 0
    if metric == TIME_ON_PAGE:
        n = row.get("top_n", 0)
        return round(row.get("top_ms", 0) / n / 1000) if n else 0
    if metric == SCROLL_DEPTH:
        n = row.get("sd_n", 0)
        return round(row.get("sd_sum", 0) / n) if n else 0
    if metric == CONVERSION_RATE:
        return round(100 * row.get("visitors", 0) / site_visitors, 1) if site_visitors else 0.0
    return row.get(metric, 0)


def change(metric: str, value: Number, previous: Number) -> Number | None:
    """Plausible's change: percentage points for rates, else percent (100 from nothing)."""
    if metric in (BOUNCE_RATE, CONVERSION_RATE):
        return round(value - previous, 1) if metric == CONVERSION_RATE else value - previous
    if previous == 0:
        return 100 if value else 0
    return round(100 * (value - previous) / previous)


def _add(rows: Iterable[Cell]) -> Cell:
    out: Cell = {}
    for row in rows:
        for name, value in row.items():
            out[name] = out.get(name, 0) + value
    return out


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


class NotExact(BadRequest):
    """The counters cannot answer this exactly: the planner (query_api/plan.py) asks the
    archive instead, and only without one is it the caller's 400."""


def not_exact(reason: str) -> NotExact:
    return NotExact(
        f"{reason} LiveInsight answers from pre-aggregated counters and gives no estimates."
    )


def _check_kept(metrics: Iterable[str], kind: str, what: str) -> None:
    kept = KEPT[kind]
    for metric in metrics:
        if metric == CONVERSION_RATE:
            continue
        missing = [c for c in NEEDS[metric] if c not in kept]
        if missing:
            raise not_exact(f"Metric `{metric}` is not kept per {what} value.")


class Stats:
    """Aggregate, timeseries and breakdown over one site's counters."""

    def __init__(self, reader: CounterReader, site: Site) -> None:
        self.site = site
        self.source = Source(reader, site.domain)

    # -- one dimension's rows -----------------------------------------------------------------

    def _goal_rows(self, segments: list[Segment]) -> dict[str, Cell]:
        """Configured goals (every event name when none are): visitors and events (conversions).
        Only these: a filter's values select among them and never add one."""
        names, _ = self.source.over("name", segments)
        name_rows = names.rows()
        if self.site.goals:
            goals = list(self.site.goals)
        else:
            goals = sorted(v for v, row in name_rows.items() if v != OTHER and any(row.values()))
        rows: dict[str, Cell] = {}
        pages: Totals | None = None
        for goal in goals:
            if goal.startswith(PAGEVIEW_GOAL_PREFIX):
                if pages is None:
                    pages, _ = self.source.over("page", segments)
                row = pages.rows().get(goal.removeprefix(PAGEVIEW_GOAL_PREFIX), {})
                rows[goal] = {"visitors": row.get("visitors", 0), "events": row.get("pageviews", 0)}
            else:
                row = name_rows.get(goal, {})
                rows[goal] = {"visitors": row.get("visitors", 0), "events": row.get("events", 0)}
        return rows

    def _rows(
        self, prop: Property, segments: list[Segment]
    ) -> tuple[dict[str, Cell], Totals, dict[str, Cell]]:
        if prop.kind == GOAL:
            rows = self._goal_rows(segments)
            return rows, Totals(), {}
        if prop.kind == PROP:
            self._check_prop_key(prop.key, segments)
        totals, per_bucket = self.source.over(prop.dimension, segments)
        return totals.rows(), totals, per_bucket

    def _check_prop_key(self, key: str, segments: list[Segment]) -> None:
        """A key missing from the list of a bucket that counted events under "(other)" may have
        been refused there (decision 0017): its counts are in `prop:(other)`, not under its own
        name, so its rows would be short. A bucket that refused nothing has none of its events
        elsewhere: a key absent there simply was not sent."""
        if key == OTHER:
            return
        refused: list[str] = []
        for segment in segments:
            counted, _ = self.source.over(PROP_KEYS, [segment])
            if not counted.overflowed:
                continue
            admitted = self.source.key_lists(segment)
            refused += [b for b in counted.overflowed if key not in admitted.get(b, frozenset())]
        if refused:
            raise not_exact(
                f'Prop key `{key}` was counted under "(other)" on some days of this period '
                f"({', '.join(refused[:3])}): more than {MAX_PROP_KEYS} prop keys were sent "
                "those days, so a breakdown or a filter on it cannot be answered exactly."
            )

    def _site_totals(self, segments: list[Segment]) -> Cell:
        totals, _ = self.source.over(TOTALS, segments)
        return totals.cell

    # -- filtered totals ------------------------------------------------------------------------

    def _filtered(
        self, filters: tuple[Filter, ...], metrics: tuple[str, ...], segments: list[Segment]
    ) -> Cell:
        """The counters of everything the filters let through, over the segments."""
        if not filters:
            return self._site_totals(segments)
        props = {f.prop.name for f in filters}
        if len(props) > 1:
            raise not_exact(
                "Filtering on two properties at once ("
                + ", ".join(f"`{p}`" for p in sorted(props))
                + ") is not supported: each property is counted on its own."
            )
        prop = filters[0].prop
        what = prop.name
        _check_kept(metrics, prop.kind, what)
        rows, totals, per_bucket = self._rows(prop, segments)
        matched = [v for v in rows if all(f.matches(v) for f in filters)]
        exact_single = all(f.single for f in filters)
        counts_visitors = VISITORS in metrics or CONVERSION_RATE in metrics
        if counts_visitors and any(f.negated for f in filters):
            raise not_exact(
                f"Visitors with a negated `{what}` filter cannot be counted exactly (a visit that "
                "crosses midnight is in the day's visitors but starts the day before)."
            )
        if counts_visitors and not exact_single and prop.dimension not in PER_VISITOR:
            raise not_exact(
                f"Visitors of several `{what}` values cannot be added up exactly (one visitor "
                "can have many); filter on a single value."
            )
        if any(f.negated for f in filters) and prop.kind == GOAL:
            raise not_exact("A goal filter cannot be negated: conversions are counted per goal.")
        if totals.overflowed:
            wanted = [v for f in filters for v in f.values]
            if not exact_single or not totals.kept_in_every_overflow(wanted, per_bucket):
                raise not_exact(
                    f"`{what}` had more distinct values than are kept per day on "
                    f'{", ".join(totals.overflowed[:3])}; the rest were counted as "(other)", so '
                    "a filter on it cannot be answered exactly for this period."
                )
        if all(f.negated for f in filters):
            # everything (with or without a value) minus the values the filters exclude
            site = self._site_totals(segments)
            every_value = _add(rows.values())
            out = {
                c: site.get(c, 0) if c in KEPT[TOTALS] else every_value.get(c, 0)
                for c in KEPT[prop.kind]
            }
            for name, value in _add(rows[v] for v in rows if v not in matched).items():
                out[name] = out.get(name, 0) - value
            return out
        return _add(rows[v] for v in matched)

    def prop_keys(self, span: DateRange) -> list[tuple[str, int]]:
        """(prop key, events carrying it) in the range, most first; then "(other)", the events
        of keys past a day's or a month's bound (decision 0017), so no event goes unlisted."""
        totals, _ = self.source.over(PROP_KEYS, segments_of(span))
        counts = {key: row.get("events", 0) for key, row in totals.rows().items()}
        named = sorted(
            ((k, n) for k, n in counts.items() if n > 0 and k != OTHER),
            key=lambda kn: (-kn[1], kn[0]),
        )
        return [*named, (OTHER, counts[OTHER])] if counts.get(OTHER, 0) > 0 else named

    # -- the three queries ----------------------------------------------------------------------

    def aggregate(self, query: Query, compare: bool = False) -> dict[str, dict[str, Number | None]]:
        current = self._aggregate_values(query, query.span)
        if not compare:
            return {m: {"value": v} for m, v in current.items()}
        previous = self._aggregate_values(query, previous_period(query.span))
        return {
            m: {"value": v, "comparison_value": previous[m], "change": change(m, v, previous[m])}
            for m, v in current.items()
        }

    def _aggregate_values(self, query: Query, span: DateRange) -> dict[str, Number]:
        segments = segments_of(span)
        row = self._filtered(query.filters, query.metrics, segments)
        site_visitors = (
            self._site_totals(segments).get("visitors", 0)
            if CONVERSION_RATE in query.metrics
            else 0
        )
        return {m: compute(m, row, site_visitors) for m in query.metrics}

    def timeseries(self, query: Query, interval: str) -> list[dict[str, Number | str]]:
        if interval == "hour":
            return self._hourly(query)
        whole = query.span
        covers = (
            [Segment(Granularity.DAY, whole.first.isoformat(), whole.last.isoformat())]
            if interval == "day"
            else segments_of(whole)  # a month point is made of these segments' buckets
        )
        out: list[dict[str, Number | str]] = []
        with self.source.covering(covers):
            for label, span in _slots(whole, interval):
                values = self._aggregate_values(query, span)
                out.append({"date": label, **values})
        return out

    def _hourly(self, query: Query) -> list[dict[str, Number | str]]:
        if query.filters:
            raise not_exact(
                "Hourly figures are kept for the whole site only; use `interval=day` with filters."
            )
        _check_kept(query.metrics, TOTALS, "hour")
        tz = ZoneInfo(self.site.tz)
        out: list[dict[str, Number | str]] = []
        for day in query.span.each_day():
            start = datetime(day.year, day.month, day.day, tzinfo=tz)
            end = start + timedelta(days=1)
            if start.utcoffset() and start.utcoffset() % timedelta(hours=1):  # type: ignore[operator]
                raise not_exact(
                    f"The site's time zone {self.site.tz} is not a whole number of hours from UTC; "
                    "hourly figures are kept per UTC hour. Use `interval=day`."
                )
            hours = _utc_hours(start, end)
            buckets = self.source.buckets(
                TOTALS, Segment(Granularity.HOUR, hours[0][1], hours[-1][1])
            )
            for local, label in hours:
                row = buckets.get(label, {})
                out.append(
                    {
                        "date": local.strftime("%Y-%m-%d %H:00:00"),
                        **{m: compute(m, row) for m in query.metrics},
                    }
                )
        return out

    def breakdown(
        self, query: Query, prop: Property, limit: int = 100, page: int = 1
    ) -> tuple[list[dict[str, Number | str]], bool]:
        """Rows sorted by the first metric, descending; and whether some values were folded into
        "(other)" (which then appears as a row of its own)."""
        others = [f for f in query.filters if f.prop.name != prop.name]
        if others:
            raise not_exact(
                f"A breakdown by `{prop.name}` filtered by `{others[0].prop.name}` needs both "
                "properties counted together, which is not supported: each property is counted "
                "on its own."
            )
        _check_kept(query.metrics, prop.kind, prop.name)
        segments = segments_of(query.span)
        rows, totals, _ = self._rows(prop, segments)
        site_visitors = (
            self._site_totals(segments).get("visitors", 0)
            if CONVERSION_RATE in query.metrics
            else 0
        )
        results = []
        for value, row in rows.items():
            if not all(f.matches(value) for f in query.filters):
                continue
            if prop.kind != GOAL and not any(row.values()):
                continue  # every counter of the value netted out to zero: not in the period
            results.append(
                {prop.key: value, **{m: compute(m, row, site_visitors) for m in query.metrics}}
            )
        first = query.metrics[0]
        results.sort(key=_sort_key(first, prop.key))
        start = (page - 1) * limit
        return results[start : start + limit], bool(totals.overflowed)


def _sort_key(metric: str, key: str) -> Callable[[dict[str, Number | str]], tuple[float, str]]:
    def sort_key(row: dict[str, Number | str]) -> tuple[float, str]:
        value = row[metric]
        return (-float(value) if not isinstance(value, str) else 0.0, str(row[key]))

    return sort_key


def _slots(span: DateRange, interval: str) -> Iterator[tuple[str, DateRange]]:
    if interval == "month":
        day = span.first
        while day <= span.last:
            end = min(_month_end(day), span.last)
            yield day.replace(day=1).isoformat(), DateRange(day, end)
            day = end + timedelta(days=1)
        return
    for day in span.each_day():
        yield day.isoformat(), DateRange(day, day)


def _utc_hours(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    hours = []
    cursor = start.astimezone(UTC)
    while cursor < end.astimezone(UTC):
        hours.append((cursor.astimezone(start.tzinfo), cursor.strftime("%Y-%m-%dT%H")))
        cursor += timedelta(hours=1)
    return hours
