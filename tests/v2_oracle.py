"""The v2 oracle: what a V2Query should answer, recounted straight from raw events in plain
Python (visits from tests/oracle.py; nothing shared with query_api/v2/engine.py).

Definitions (query_api/v2/engine.py's docstring says the same in other words):
- visits: each owner's counted events split at 30 minutes; a visit's `visit:` values are its
  first counted event's ('' is none), entry/exit page its first/last pageview's page;
- a condition on `visit:x` tests the visit's value, on `event:x` the event's (an engagement
  event has page, hostname and props only); a plain form never passes a missing value, a negated
  form is exactly "not the plain form"; `(none)` in a prop's is/is_not stands for no key;
- has_done(f): some counted event of the visit passes f;
- event metrics: counted events passing the tree, in [start_ms, end_ms), by their own time;
  visit metrics: visits with a passing counted event (at any time), started in the range, by
  their start; a visit's row values: visit dimensions its own, event:page its entry page, other
  event dimensions each value among its passing events;
- visitors: distinct (owner, unit) pairs, units being each local day (or hour for time:hour),
  or a whole month of [first, last] for no time dimension or time:month; by visit start when
  only visit dimensions are asked or filtered (outside has_done), else by event;
- time:week buckets are Mondays, never before the first day; time:month the month's 1st.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core import names
from core.events import RawEvent
from core.sites import Site
from query_api.metrics import compute
from query_api.v2.model import (
    Behaviour,
    Condition,
    FilterTree,
    Junction,
    Negation,
    Result,
    Row,
    V2Query,
)
from tests import oracle

FIRST_EVENT = (
    "source", "referrer", "utm_medium", "utm_source", "utm_campaign", "utm_content", "utm_term",
    "country", "browser", "browser_version", "os", "os_version", "device",
)  # fmt: skip


class Visit:
    def __init__(self, owner: str, counted: list[RawEvent], engagement: list[RawEvent]) -> None:
        self.owner, self.events, self.engagement = owner, counted, engagement
        self.flags: dict[int, bool] = {}

    def value(self, dimension: str) -> str | None:
        name = dimension.removeprefix("visit:")
        pageviews = [e for e in self.events if e.is_pageview]
        if name == "entry_page":
            return pageviews[0].page if pageviews else None
        if name == "exit_page":
            return pageviews[-1].page if pageviews else None
        assert name in FIRST_EVENT, dimension
        return names.renamed(name, str(getattr(self.events[0], name))) or None  # Plausible's


def event_value(site: Site, event: RawEvent, dimension: str) -> str | None:
    eng = event.is_engagement
    if dimension == "event:page":
        return event.page if (eng or event.is_pageview) else None
    if dimension == "event:hostname":
        return event.hostname or None
    if dimension.startswith("event:props:"):
        return event.props.get(dimension.removeprefix("event:props:"))
    if eng:
        return None
    if dimension == "event:name":
        return None if event.is_pageview else event.name
    if dimension == "event:goal":
        if not site.goals:
            return None if event.is_pageview else event.name
        goal = f"Visit {event.page}" if event.is_pageview else event.name
        return goal if goal in site.goals else None
    raise ValueError(dimension)


def passes(c: Condition, value: str | None) -> bool:
    values = list(c.values)
    none = (
        c.dimension.startswith("event:props:") and c.op in ("is", "is_not") and "(none)" in values
    )
    values = [v for v in values if not (none and v == "(none)")]
    hit = False
    if value is not None:
        v = value if c.case_sensitive else value.lower()
        wanted = values if c.case_sensitive else [w.lower() for w in values]
        if c.op in ("is", "is_not"):
            hit = v in wanted
        elif c.op in ("contains", "contains_not"):
            hit = any(w in v for w in wanted)
        else:
            flags = 0 if c.case_sensitive else re.IGNORECASE
            hit = any(re.search(p, value, flags) for p in values)
    if none and value is None:
        hit = True
    return hit != c.negated


class V2Oracle:
    def __init__(self, events: list[RawEvent], site: Site) -> None:
        self.site = site
        events = list({e.event_id: e for e in events}.values())
        owner = oracle.attribute_visitors(events)
        mine: dict[str, list[RawEvent]] = defaultdict(list)
        for event in events:
            mine[owner[event.event_id]].append(event)
        self.visits = [
            Visit(who, counted, engagement)
            for who, evs in mine.items()
            for counted, engagement in oracle.sessions_of(evs)
        ]
        self.zone = ZoneInfo(site.tz)

    # -- filters ------------------------------------------------------------------------------

    def ok(self, f: FilterTree, visit: Visit, event: RawEvent | None) -> bool:
        """`event` None: the visit alone (a tree of visit conditions)."""
        if isinstance(f, Condition):
            if f.dimension.startswith("visit:"):
                return passes(f, visit.value(f.dimension))
            assert event is not None
            return passes(f, event_value(self.site, event, f.dimension))
        if isinstance(f, Junction):
            results = [self.ok(c, visit, event) for c in f.children]
            return all(results) if f.op == "and" else any(results)
        if isinstance(f, Negation):
            return not self.ok(f.child, visit, event)
        assert isinstance(f, Behaviour)
        done = any(self.ok(f.child, visit, e) for e in visit.events)
        return done == f.done

    def all_ok(self, filters: tuple[FilterTree, ...], visit: Visit, event: RawEvent) -> bool:
        return all(self.ok(f, visit, event) for f in filters)

    # -- time ---------------------------------------------------------------------------------

    def local(self, ts: int) -> datetime:
        return datetime.fromtimestamp(ts / 1000, UTC).astimezone(self.zone)

    def unit(self, ts: int, q: V2Query, grain: str) -> str:
        moment = self.local(ts)
        if grain == "hour":
            return moment.replace(minute=0, second=0, microsecond=0).astimezone(UTC).isoformat()
        day = moment.date()
        if grain in ("", "month"):
            first = day.replace(day=1)
            last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            if q.first <= first and last <= q.last:
                return first.strftime("%Y-%m")
        return day.isoformat()

    def bucket(self, ts: int, q: V2Query, grain: str) -> str:
        moment = self.local(ts)
        day = moment.date()
        if grain == "hour":
            return moment.strftime("%Y-%m-%d %H:00:00")
        if grain == "day":
            return day.isoformat()
        if grain == "week":
            return max(day - timedelta(days=day.weekday()), q.first).isoformat()
        if grain == "month":
            return day.replace(day=1).isoformat()
        return ""

    def inside(self, ts: int, q: V2Query) -> bool:
        return q.start_ms <= ts < q.end_ms

    # -- counting -----------------------------------------------------------------------------

    def cells(  # noqa: C901 (one pass over the visits, plainly)
        self, q: V2Query, dims: tuple[str, ...], filters: tuple[FilterTree, ...], grain: str
    ) -> dict[tuple[tuple[str, ...], str], dict[str, int]]:
        out: dict[tuple[tuple[str, ...], str], dict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        pairs: dict[tuple[tuple[str, ...], str], set[tuple[str, str]]] = defaultdict(set)
        deepest: dict[tuple[tuple[str, ...], str, str, str, str], int] = {}
        by_visit = by_visit_rule(dims, filters)
        for visit in self.visits:
            kept = [e for e in visit.events if self.all_ok(filters, visit, e)]
            timeline = sorted(visit.events + visit.engagement, key=lambda e: (e.ts, e.event_id))
            for event in kept:
                values = self.row_values(dims, visit, event)
                if values is None or not self.inside(event.ts, q):
                    continue
                key = (values, self.bucket(event.ts, q, grain))
                cell = out[key]
                cell["events"] += 1
                cell["pageviews"] += int(event.is_pageview)
                if not by_visit:
                    pairs[key].add((visit.owner, self.unit(event.ts, q, grain)))
                at = timeline.index(event)
                if event.is_pageview and at + 1 < len(timeline):
                    cell["top_ms"] += timeline[at + 1].ts - event.ts
                    cell["top_n"] += 1
            if kept and self.inside(visit.events[0].ts, q):
                pageviews = [e for e in visit.events if e.is_pageview]
                interactive = any(not e.is_pageview and e.interactive for e in visit.events)
                for values in self.visit_rows(dims, visit, kept):
                    key = (values, self.bucket(visit.events[0].ts, q, grain))
                    cell = out[key]
                    cell["visits"] += 1
                    cell["bounces"] += int(len(pageviews) == 1 and not interactive)
                    cell["duration_ms"] += visit.events[-1].ts - visit.events[0].ts
                    if by_visit:
                        pairs[key].add((visit.owner, self.unit(visit.events[0].ts, q, grain)))
            for event in visit.engagement:
                if not self.inside(event.ts, q) or not self.all_ok(filters, visit, event):
                    continue
                values = self.row_values(dims, visit, event)
                if values is None:
                    continue
                at_key = (
                    values,
                    self.bucket(event.ts, q, grain),
                    self.unit(event.ts, q, grain),
                    visit.owner,
                    event.page,
                )
                depth = max(0, min(event.scroll_depth or 0, 100))
                deepest[at_key] = max(deepest.get(at_key, 0), depth)
        for key, seen in pairs.items():
            out[key]["visitors"] = len(seen)
        for (values, bucket, _, _, _), depth in deepest.items():
            out[(values, bucket)]["sd_sum"] += depth
            out[(values, bucket)]["sd_n"] += 1
        return {k: dict(v) for k, v in out.items()}

    def row_values(
        self, dims: tuple[str, ...], visit: Visit, event: RawEvent
    ) -> tuple[str, ...] | None:
        values = []
        for d in dims:
            v = visit.value(d) if d.startswith("visit:") else event_value(self.site, event, d)
            if v is None:
                return None
            values.append(v)
        return tuple(values)

    def visit_rows(
        self, dims: tuple[str, ...], visit: Visit, kept: list[RawEvent]
    ) -> set[tuple[str, ...]]:
        rows = set()
        for event in kept:
            values = []
            for d in dims:
                if d.startswith("visit:"):
                    v = visit.value(d)
                elif d == "event:page":
                    v = visit.value("visit:entry_page")
                else:
                    v = event_value(self.site, event, d)
                if v is None:
                    break
                values.append(v)
            else:
                rows.add(tuple(values))
        return rows

    # -- the answer ---------------------------------------------------------------------------

    def answer(self, q: V2Query) -> Result:  # noqa: C901
        grain = ""
        for d in q.dimensions:
            if d == "time" or d.startswith("time:"):
                grain = q.time_dimension or d.split(":")[1]
        dims = tuple(d for d in q.dimensions if not (d == "time" or d.startswith("time:")))
        cells = self.cells(q, dims, q.filters, grain)
        no_goals = tuple(
            f
            for f in top_level(q.filters)
            if not (
                isinstance(f, Condition)
                and (f.dimension == "event:goal" or f.dimension.startswith("event:props:"))
            )
        )

        def total(filters: tuple[FilterTree, ...]) -> int:
            return sum(c.get("visitors", 0) for c in self.cells(q, (), filters, "").values())

        everyone = total(q.filters) if "percentage" in q.metrics else 0
        converting_base = total(no_goals) if "conversion_rate" in q.metrics else 0
        group_dims = tuple(d for d in dims if d != "event:goal")
        groups = (
            self.cells(q, group_dims, no_goals, grain)
            if "group_conversion_rate" in q.metrics
            else {}
        )
        rows = []
        for (values, bucket), cell in cells.items():
            if "scroll_depth" not in q.metrics:  # engagement alone makes a row only for it
                cell = {k: v for k, v in cell.items() if k not in ("sd_n", "sd_sum")}
            if not any(cell.values()):
                continue
            visitors = cell.get("visitors", 0)
            metrics: list[float | int | None] = []
            for m in q.metrics:
                if m == "percentage":
                    metrics.append(round(100 * visitors / everyone, 1) if everyone else None)
                elif m == "conversion_rate":
                    metrics.append(
                        round(100 * visitors / converting_base, 1) if converting_base else 0.0
                    )
                elif m == "group_conversion_rate":
                    kept = tuple(v for d, v in zip(dims, values, strict=True) if d != "event:goal")
                    group = groups.get((kept, bucket), {}).get("visitors", 0)
                    metrics.append(round(100 * visitors / group, 1) if group else 0.0)
                else:
                    metrics.append(compute(m, cell))
            labels = list(values)
            for i, d in enumerate(q.dimensions):
                if d == "time" or d.startswith("time:"):
                    labels.insert(i, bucket)
            rows.append(Row(tuple(labels), tuple(metrics)))
        rows.sort(key=lambda r: sort_key(q, r))
        return Result(tuple(rows[q.offset : q.offset + q.limit]), len(rows))


def top_level(filters: tuple[FilterTree, ...]) -> list[FilterTree]:
    out: list[FilterTree] = []
    for f in filters:
        if isinstance(f, Junction) and f.op == "and":
            out += top_level(f.children)
        else:
            out.append(f)
    return out


def by_visit_rule(dims: tuple[str, ...], filters: tuple[FilterTree, ...]) -> bool:
    found: list[str] = []

    def walk(f: FilterTree) -> None:
        if isinstance(f, Condition):
            found.append(f.dimension)
        elif isinstance(f, Junction):
            for c in f.children:
                walk(c)
        elif isinstance(f, Negation):
            walk(f.child)

    for f in filters:
        walk(f)
    names = list(dims) + found
    return any(n.startswith("visit:") for n in names) and all(n.startswith("visit:") for n in names)


def sort_key(q: V2Query, row: Row) -> tuple[Any, ...]:
    order = list(q.order_by) or [(q.metrics[0], "desc")]
    parts: list[Any] = []
    for name, direction in order:
        if name in q.metrics:
            value = row.metrics[q.metrics.index(name)]
            number = -math.inf if value is None else float(value)
            parts.append((-number if direction == "desc" else number,))
        else:
            text = row.dimensions[q.dimensions.index(name)]
            if direction == "desc":  # code points negated: a string ordered backwards
                parts.append((*(-ord(ch) for ch in text), 1))
            else:
                parts.append(tuple(ord(ch) for ch in text))
    return (*parts, row.dimensions)


def day_range(site: Site, first: date, last: date) -> tuple[int, int]:
    """The instants of [first, last] in the site's zone: local midnights."""
    zone = ZoneInfo(site.tz)
    start = datetime(first.year, first.month, first.day, tzinfo=zone)
    after = last + timedelta(days=1)
    end = datetime(after.year, after.month, after.day, tzinfo=zone)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)
