"""The stats oracle: what an aggregate, timeseries or breakdown query should answer, computed
straight from the raw events by sorting and counting (no counters, no shared code with
the query engines beyond the raw event model and tests/oracle.py's sessions).

Definitions (docs/metrics.md, decision record 0007):
- a day or month is the site's local one; an event counts where it happens, a visit where it starts;
- visitors over several units (days, or whole months) = the sum of each unit's distinct visitors;
- a filter on a session property keeps the visits whose first event (first and last pageview for
  entry and exit page) has a matching value, with their pageviews, and the visitors who started
  one in the unit; on an event property it keeps the matching events;
- goals: a custom event name, or "Visit /path" for pageviews of a path;
- browser and OS read as Plausible names them, whatever name they were stored under (the
  definition, core/names.py, is shared: its own tests hold it to real user agents).
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core import names
from core.events import RawEvent
from core.keys import Granularity, bucket_label
from tests import oracle

SESSION_PROPS = {
    "visit:source": "source",
    "visit:referrer": "referrer",
    "visit:utm_source": "utm_source",
    "visit:utm_medium": "utm_medium",
    "visit:utm_campaign": "utm_campaign",
    "visit:utm_content": "utm_content",
    "visit:utm_term": "utm_term",
    "visit:country": "country",
    "visit:region": "region",
    "visit:city": "city",
    "visit:channel": "channel",
    "visit:browser": "browser",
    "visit:browser_version": "browser_version",
    "visit:os": "os",
    "visit:os_version": "os_version",
    "visit:device": "device",
}


@dataclass(frozen=True)
class Visit:
    visitor: str
    events: list[RawEvent]  # counted events, sorted
    engagement: list[RawEvent]

    @property
    def first(self) -> RawEvent:
        return self.events[0]

    @property
    def pageviews(self) -> list[RawEvent]:
        return [e for e in self.events if e.is_pageview]

    def value(self, prop: str) -> str:
        if prop == "visit:entry_page":
            return self.pageviews[0].page if self.pageviews else ""
        if prop == "visit:exit_page":
            return self.pageviews[-1].page if self.pageviews else ""
        name = SESSION_PROPS[prop]  # browser and os as Plausible names them (core/names.py)
        return names.renamed(name, str(getattr(self.first, name)))


def visits_of(events: list[RawEvent]) -> list[Visit]:
    events = list({e.event_id: e for e in events}.values())
    owner = oracle.attribute_visitors(events)
    by_visitor: dict[str, list[RawEvent]] = defaultdict(list)
    for event in events:
        by_visitor[owner[event.event_id]].append(event)
    return [
        Visit(visitor, counted, engagement)
        for visitor, mine in by_visitor.items()
        for counted, engagement in oracle.sessions_of(mine)
    ]


def event_value(event: RawEvent, prop: str) -> str | None:
    """An event's value of an event property, or None if the event has none."""
    if prop == "event:page":
        return event.page if event.is_pageview else None
    if prop == "event:hostname":
        return event.hostname or None
    if prop == "event:name":
        return None if event.is_pageview else event.name
    if prop == "event:goal":
        return f"Visit {event.page}" if event.is_pageview else event.name
    if prop.startswith("event:props:"):
        return event.props.get(prop.removeprefix("event:props:"))
    raise ValueError(prop)


class StatsOracle:
    def __init__(self, events: list[RawEvent], tz: str, unit: str = "day") -> None:
        self.visits = visits_of(events)
        self.tz = tz
        self.granularity = Granularity.MONTH if unit == "month" else Granularity.DAY

    def _day(self, event: RawEvent) -> date:
        return date.fromisoformat(bucket_label(Granularity.DAY, event.ts, self.tz))

    def _unit(self, event: RawEvent) -> str:
        return bucket_label(self.granularity, event.ts, self.tz)

    def counts(
        self,
        first: date,
        last: date,
        prop: str | None = None,
        match: Callable[[str], bool] | None = None,
    ) -> dict[str, int]:
        """Counters of everything in [first, last] that the (prop, match) filter lets through."""
        out: dict[str, int] = defaultdict(int)
        uniques: set[tuple[str, str]] = set()
        session_prop = prop is not None and prop.startswith("visit:")
        for visit in self.visits:
            if session_prop and not (match and prop and match(visit.value(prop))):
                continue
            if first <= self._day(visit.first) <= last and (prop is None or session_prop):
                self._visit_counts(visit, out)
                if session_prop:
                    uniques.add((visit.visitor, self._unit(visit.first)))
            for event in self._events(visit, first, last, None if session_prop else prop, match):
                out["events"] += 1
                out["pageviews"] += int(event.is_pageview)
                if not session_prop:
                    uniques.add((visit.visitor, self._unit(event)))
                self._time_on_page(visit, event, out)
        out["visitors"] = len(uniques)
        if prop == "event:page" and match is not None:
            self._scroll_depth(first, last, match, out)
        return dict(out)

    def _scroll_depth(
        self, first: date, last: date, match: Callable[[str], bool], out: dict[str, int]
    ) -> None:
        """Each visitor's deepest scroll per matching page and unit, from its visits' engagement."""
        deepest: dict[tuple[str, str, str], int] = {}
        for visit in self.visits:
            for event in visit.engagement:
                if first <= self._day(event) <= last and match(event.page):
                    key = (visit.visitor, event.page, self._unit(event))
                    depth = max(0, min(event.scroll_depth or 0, 100))
                    deepest[key] = max(deepest.get(key, 0), depth)
        out["sd_sum"] = sum(deepest.values())
        out["sd_n"] = len(deepest)

    def _events(
        self,
        visit: Visit,
        first: date,
        last: date,
        prop: str | None,
        match: Callable[[str], bool] | None,
    ) -> list[RawEvent]:
        """The visit's counted events in the range with a matching value of an event property."""
        out = []
        for event in visit.events:
            if not first <= self._day(event) <= last:
                continue
            value = event_value(event, prop) if prop else ""
            if prop is None or (value is not None and match is not None and match(value)):
                out.append(event)
        return out

    @staticmethod
    def _visit_counts(visit: Visit, out: dict[str, int]) -> None:
        interactive = any(not e.is_pageview and e.interactive for e in visit.events)
        out["visits"] += 1
        out["bounces"] += int(len(visit.pageviews) == 1 and not interactive)
        out["duration_ms"] += visit.events[-1].ts - visit.first.ts

    @staticmethod
    def _time_on_page(visit: Visit, event: RawEvent, out: dict[str, int]) -> None:
        """Time to the visitor's next event in the visit (engagement included)."""
        if not event.is_pageview:
            return
        timeline = sorted(visit.events + visit.engagement, key=lambda e: (e.ts, e.event_id))
        index = timeline.index(event)
        if index + 1 < len(timeline):
            out["top_ms"] += timeline[index + 1].ts - event.ts
            out["top_n"] += 1

    def values(self, prop: str, first: date, last: date) -> set[str]:
        found = set()
        for visit in self.visits:
            if prop.startswith("visit:"):
                if first <= self._day(visit.first) <= last and visit.value(prop):
                    found.add(visit.value(prop))
                continue
            for event in visit.events:
                value = event_value(event, prop)
                if value is not None and first <= self._day(event) <= last:
                    found.add(value)
        return found


def matcher(values: list[str], negated: bool = False) -> Callable[[str], bool]:
    return lambda v: any(fnmatch.fnmatchcase(v, pattern) for pattern in values) != negated


def metric(name: str, c: dict[str, int], site_visitors: int = 0) -> Any:
    visits = c.get("visits", 0)
    if name == "bounce_rate":
        return round(100 * c.get("bounces", 0) / visits) if visits else 0
    if name == "visit_duration":
        return round(c.get("duration_ms", 0) / visits / 1000) if visits else 0
    if name == "views_per_visit":
        return round(c.get("pageviews", 0) / visits, 2) if visits else 0.0
    if name == "scroll_depth":
        return round(c.get("sd_sum", 0) / c["sd_n"]) if c.get("sd_n") else 0
    if name == "time_on_page":
        return round(c.get("top_ms", 0) / c["top_n"] / 1000) if c.get("top_n") else 0
    if name == "conversion_rate":
        return round(100 * c.get("visitors", 0) / site_visitors, 1) if site_visitors else 0.0
    return c.get(name, 0)


# ---- several filters at once, breakdowns filtered by other properties ------------------------
#
# The archive engine's questions (docs/decisions/0028): any filters, any breakdown. Written again
# from the definitions, sharing nothing with query_api/archive_engine.py:
# - a session filter keeps the visits whose value (first event; entry and exit page from the
#   first and last pageview; "" is no value) matches; an event filter keeps the counted events
#   whose value matches (a pageview has a page, a custom event a name, a goal is a configured
#   goal, or any custom event name when none are); filters AND; a negation keeps what does not
#   match, events and visits without a value included;
# - events and pageviews: kept events of kept visits, where they happen; visits, bounces and
#   duration: kept visits holding a kept event (any visit without event filters), where they
#   start; a page breakdown's visits are those entering on the page, another event property's
#   those holding a kept event with the value;
# - visitors: distinct (visitor, unit) pairs of kept events, or of kept visits where only
#   session properties are filtered or broken down (the counters' session dimensions);
# - time on page: kept pageviews with a next event in their visit; scroll depth: each visitor's
#   deepest scroll per page and unit among the kept visits' engagement events the event filters
#   keep (an engagement event has a page, a hostname and props);
# - units: each day, or each whole month of the range and the other days, or each local hour.


@dataclass(frozen=True)
class Cond:
    prop: str  # "visit:source", "event:page", "event:props:plan", ...
    values: tuple[str, ...]
    negated: bool = False

    def matches(self, value: str | None) -> bool:
        hit = value is not None and any(wildcard(p, value) for p in self.values)
        return hit != self.negated

    @property
    def on_session(self) -> bool:
        return self.prop.startswith("visit:")


def wildcard(pattern: str, value: str) -> bool:
    """`*` is any run of characters, everything else itself."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, value, re.S) is not None


def session_value(visit: Visit, prop: str) -> str | None:
    return visit.value(prop) or None


def counted_value(event: RawEvent, prop: str, goals: tuple[str, ...]) -> str | None:
    if prop == "event:goal":
        if event.is_pageview:
            goal = f"Visit {event.page}"
            return goal if goal in goals else None
        return event.name if not goals or event.name in goals else None
    if prop == "event:hostname":
        return event.hostname or None
    return event_value(event, prop)


def engagement_value(event: RawEvent, prop: str) -> str | None:
    if prop == "event:page":
        return event.page
    if prop == "event:hostname":
        return event.hostname or None
    if prop.startswith("event:props:"):
        return event.props.get(prop.removeprefix("event:props:"))
    return None


def _local(ts: int, tz: str) -> datetime:
    return datetime.fromtimestamp(ts / 1000, ZoneInfo(tz))


def local_hours(day: date, tz: str) -> list[datetime]:
    """The local hours of a day, in time order (a DST night has 23 or 25)."""
    zone = ZoneInfo(tz)
    start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    hours = set()  # as UTC instants: the two 02:00s of a DST night compare equal in local time
    for minute in range(0, 25 * 60, 1):
        moment = (start + timedelta(minutes=minute)).astimezone(zone)
        if moment.date() == day:
            hours.add(moment.replace(minute=0, second=0, microsecond=0).astimezone(UTC))
    return [h.astimezone(zone) for h in sorted(hours)]


class MultiOracle:
    """Answers with any filters and breakdowns: {row value: counters} over [first, last]."""

    def __init__(self, events: list[RawEvent], tz: str, goals: tuple[str, ...] = ()) -> None:
        self.visits = visits_of(events)
        self.tz = tz
        self.goals = goals

    def day(self, event: RawEvent) -> date:
        return _local(event.ts, event.tz).date()

    def unit(self, event: RawEvent, first: date, last: date, units: str) -> str:
        """`units`: "day", "hour", or "auto" (whole months of [first, last] as one unit)."""
        moment = _local(event.ts, event.tz)
        if units == "hour":
            hour = moment.replace(minute=0, second=0, microsecond=0)
            return hour.astimezone(UTC).isoformat()
        day = moment.date()
        if units == "auto":
            month_first = day.replace(day=1)
            month_last = (month_first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            if first <= month_first and month_last <= last:
                return month_first.strftime("%Y-%m")
        return day.isoformat()

    def answer(
        self,
        first: date,
        last: date,
        conds: tuple[Cond, ...] = (),
        prop: str | None = None,
        units: str = "auto",
        only: str | None = None,
    ) -> dict[str, dict[str, int]]:
        """`only`: count in this unit alone (an hour of an hourly series)."""
        tally = _Tally(self, first, last, conds, prop, units, only)
        for visit in self.visits:
            if all(c.matches(session_value(visit, c.prop)) for c in tally.session_conds):
                kept = [
                    e
                    for e in visit.events
                    if all(
                        c.matches(counted_value(e, c.prop, self.goals)) for c in tally.event_conds
                    )
                ]
                tally.events(visit, kept)
                if kept or not tally.event_conds:
                    tally.visit(visit, kept)
                tally.engagement(visit)
        return tally.result()

    def _event_key(self, visit: Visit, event: RawEvent, prop: str | None) -> str | None:
        if prop is None:
            return ""
        if prop.startswith("visit:"):
            return session_value(visit, prop)
        return counted_value(event, prop, self.goals)

    def _visit_keys(self, visit: Visit, kept: list[RawEvent], prop: str | None) -> set[str]:
        if prop is None:
            return {""}
        if prop.startswith("visit:"):
            value = session_value(visit, prop)
            return {value} if value is not None else set()
        if prop == "event:page":  # Plausible: a page's visits are those entering on it
            return {visit.pageviews[0].page} if visit.pageviews else set()
        return {v for e in kept if (v := counted_value(e, prop, self.goals)) is not None}


class _Tally:
    """One question's counts, visit by visit."""

    def __init__(
        self,
        oracle: MultiOracle,
        first: date,
        last: date,
        conds: tuple[Cond, ...],
        prop: str | None,
        units: str,
        only: str | None,
    ) -> None:
        self.oracle, self.first, self.last, self.prop = oracle, first, last, prop
        self.units, self.only = units, only
        self.session_conds = [c for c in conds if c.on_session]
        self.event_conds = [c for c in conds if not c.on_session]
        on_event = prop is not None and prop.startswith("event:")
        on_session = prop is not None and prop.startswith("visit:")
        self.by_visit = bool(self.session_conds or on_session) and not (
            self.event_conds or on_event
        )
        self.out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.uniques: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.deepest: dict[tuple[str, str, str, str], int] = {}

    def unit(self, event: RawEvent) -> str:
        return self.oracle.unit(event, self.first, self.last, self.units)

    def inside(self, event: RawEvent) -> bool:
        if not self.first <= self.oracle.day(event) <= self.last:
            return False
        return self.only is None or self.unit(event) == self.only

    def events(self, visit: Visit, kept: list[RawEvent]) -> None:
        timeline = sorted(visit.events + visit.engagement, key=lambda e: (e.ts, e.event_id))
        for event in kept:
            key = self.oracle._event_key(visit, event, self.prop)
            if key is None or not self.inside(event):
                continue
            cell = self.out[key]
            cell["events"] += 1
            cell["pageviews"] += int(event.is_pageview)
            if not self.by_visit:
                self.uniques[key].add((visit.visitor, self.unit(event)))
            at = timeline.index(event)
            if event.is_pageview and at + 1 < len(timeline):
                cell["top_ms"] += timeline[at + 1].ts - event.ts
                cell["top_n"] += 1

    def visit(self, visit: Visit, kept: list[RawEvent]) -> None:
        if not self.inside(visit.first):
            return
        interactive = any(not e.is_pageview and e.interactive for e in visit.events)
        for key in self.oracle._visit_keys(visit, kept, self.prop):
            cell = self.out[key]
            cell["visits"] += 1
            cell["bounces"] += int(len(visit.pageviews) == 1 and not interactive)
            cell["duration_ms"] += visit.events[-1].ts - visit.first.ts
            if self.by_visit:
                self.uniques[key].add((visit.visitor, self.unit(visit.first)))

    def engagement(self, visit: Visit) -> None:
        if self.prop not in (None, "event:page"):
            return
        for event in visit.engagement:
            if not self.inside(event):
                continue
            if not all(c.matches(engagement_value(event, c.prop)) for c in self.event_conds):
                continue
            key = "" if self.prop is None else event.page
            depth = max(0, min(event.scroll_depth or 0, 100))
            at = (key, visit.visitor, event.page, self.unit(event))
            self.deepest[at] = max(self.deepest.get(at, 0), depth)

    def result(self) -> dict[str, dict[str, int]]:
        for key, pairs in self.uniques.items():
            self.out[key]["visitors"] = len(pairs)
        for (key, _, _, _), depth in self.deepest.items():
            self.out[key]["sd_sum"] += depth
            self.out[key]["sd_n"] += 1
        return {k: dict(v) for k, v in self.out.items() if any(v.values())}
