"""The stats oracle: what an aggregate, timeseries or breakdown query should answer, computed
straight from the raw events by sorting and counting (no counters, no shared code with
query_api/stats.py beyond the raw event model and tests/oracle.py's sessions).

Definitions (METRICS.md, decision record 0007):
- a day or month is the site's local one; an event counts where it happens, a visit where it starts;
- visitors over several units (days, or whole months) = the sum of each unit's distinct visitors;
- a filter on a session property keeps the visits whose first event (first and last pageview for
  entry and exit page) has a matching value, with their pageviews, and the visitors who started
  one in the unit; on an event property it keeps the matching events;
- goals: a custom event name, or "Visit /path" for pageviews of a path.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

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
        return str(getattr(self.first, SESSION_PROPS[prop]))


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
