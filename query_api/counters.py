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
daily (docs/metrics.md: the same person on two days is two visitors), so this is the exact count of
distinct ids except for an id active on both sides of the site's local midnight (a visit that
crosses it), which counts once per day.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core import keys, names, vocabulary
from core.keys import OTHER, TOTALS, Granularity
from core.sites import PAGEVIEW_GOAL_PREFIX, Site
from query_api.errors import BadRequest
from query_api.metrics import NEEDS, Cell, Number, compared, compute
from query_api.parse import (
    CONVERSION_RATE,
    GOAL,
    PROP,
    VISITORS,
    DateRange,
    Filter,
    Property,
    Query,
    last_of_month,
    previous_period,
)
from query_api.reader import CounterReader, Pending

PROP_KEYS = vocabulary.PROP_KEYS  # events per prop key (aggregator/fold.py)
# Prop keys a day or a month counts under their own names (aggregator.prop_keys.MAX_PROP_KEYS,
# decision 0017); only named in messages.
MAX_PROP_KEYS = 300
# Derived from the IP address and user agent, which the daily visitor id hashes: one value per
# visitor, so visitors of several values add up exactly.
PER_VISITOR = {"country", "region", "city", "browser", "browser_version", "os", "os_version"}
# The counters each kind of dimension keeps per value.
KEPT = vocabulary.KEPT


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
        month_end = last_of_month(day)
        if day.day == 1 and month_end <= span.last:
            last = day
            while last_of_month(last) <= span.last:
                nxt = last_of_month(last) + timedelta(days=1)
                if last_of_month(nxt) > span.last:
                    break
                last = nxt
            out.append(Segment(Granularity.MONTH, day.strftime("%Y-%m"), last.strftime("%Y-%m")))
            day = last_of_month(last) + timedelta(days=1)
        else:
            last = min(month_end, span.last)
            if out and out[-1].granularity is Granularity.DAY:  # days run on: one Query
                out[-1] = Segment(Granularity.DAY, out[-1].first, last.isoformat())
            else:
                out.append(Segment(Granularity.DAY, day.isoformat(), last.isoformat()))
            day = last + timedelta(days=1)
    return out


# ---- reading and adding counters ---------------------------------------------------------------


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


def _renamed(dimension: str, rows: dict[str, Cell]) -> dict[str, Cell]:
    """Rows under the names they read as now: an old name's counters join its new name's (a
    browser or OS is one per visitor a day, so visitors add up as for several values)."""
    out: dict[str, Cell] = {}
    for value, row in rows.items():
        into = out.setdefault(names.renamed(dimension, value), {})
        for name, count in row.items():
            into[name] = into.get(name, 0) + count
    return out


def _add(rows: Iterable[Cell]) -> Cell:
    out: Cell = {}
    for row in rows:
        for name, value in row.items():
            out[name] = out.get(name, 0) + value
    return out


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


class CounterEngine:
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
        if prop.dimension in names.TABLES:  # names stored before Plausible's (decision 0034)
            return _renamed(prop.dimension, totals.rows()), totals, per_bucket
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
            # a renamed value is kept only if each name it was stored under is (decision 0034)
            wanted = [
                n for f in filters for v in f.values for n in names.stored_names(prop.dimension, v)
            ]
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
        previous = self._aggregate_values(query, previous_period(query.span)) if compare else None
        return compared(current, previous)

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
            if start.utcoffset() and start.utcoffset() % timedelta(hours=1):  # type: ignore[operator]
                raise not_exact(
                    f"The site's time zone {self.site.tz} is not a whole number of hours from UTC; "
                    "hourly figures are kept per UTC hour. Use `interval=day`."
                )
            hours = [(h.astimezone(tz), h.strftime("%Y-%m-%dT%H")) for h in local_hours(day, tz)]
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
            end = min(last_of_month(day), span.last)
            yield day.replace(day=1).isoformat(), DateRange(day, end)
            day = end + timedelta(days=1)
        return
    for day in span.each_day():
        yield day.isoformat(), DateRange(day, day)


def local_hours(day: date, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants at which the hours of a local day start: 23, 24 or 25 of them (the
    counters' hourly buckets and the archive engine's hourly points)."""
    cursor = datetime.combine(day, time(), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
    hours = []
    while cursor < end:
        hours.append(cursor)
        cursor += timedelta(hours=1)
    return hours
