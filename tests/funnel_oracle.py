"""Funnels and journeys recounted straight from raw events, in plain Python: the visits of
tests/oracle.py (attribute_visitors, sessions_of), then a walk along each visit. No SQL and
nothing of query_api/funnels.py (the definitions are in its docstring and docs/metrics.md):

- a visit reaches step k when steps 1..k happen in order, each at a later event than the last;
- a visit counts in the site-local day it starts on, or its whole month when the range holds
  all of that month; visitors = the sum over those units of the distinct visitors;
- session filters look at the visit's first counted event (entry/exit page: its first/last
  pageview); event filters pick the events that can be steps (funnels), or keep the visits
  holding a matching event (journeys).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from core import names
from core.events import RawEvent
from core.keys import Granularity, bucket_label
from query_api.parse import SESSION, Filter, wildcard_match
from tests import oracle
from tests.stats_oracle import event_value


@dataclass(frozen=True)
class Visit:
    visitor: str
    events: list[RawEvent]  # counted events, in order

    @property
    def pages(self) -> list[str]:
        return [e.page for e in self.events if e.is_pageview]


def visits_of(events: Sequence[RawEvent]) -> list[Visit]:
    unique = list({e.event_id: e for e in events}.values())
    owner = oracle.attribute_visitors(unique)
    by_visitor: dict[str, list[RawEvent]] = defaultdict(list)
    for event in unique:
        by_visitor[owner[event.event_id]].append(event)
    return [
        Visit(visitor, counted)
        for visitor, mine in by_visitor.items()
        for counted, _ in oracle.sessions_of(mine)
    ]


def unit_of(visit: Visit, tz: str, first: date, last: date) -> str | None:
    """The unit the visit counts in, or None when it starts outside [first, last]."""
    day = date.fromisoformat(bucket_label(Granularity.DAY, visit.events[0].ts, tz))
    if not first <= day <= last:
        return None
    month_first = day.replace(day=1)
    month_last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    if first <= month_first and month_last <= last:
        return month_first.isoformat()[:7]
    return day.isoformat()


def _session_passes(visit: Visit, f: Filter) -> bool:
    dim = f.prop.dimension
    if dim == "entry_page":
        value = visit.pages[0] if visit.pages else ""
    elif dim == "exit_page":
        value = visit.pages[-1] if visit.pages else ""
    else:
        value = names.renamed(dim, getattr(visit.events[0], dim))  # Plausible's names
    return f.matches(value) if value else f.negated


def _event_passes(event: RawEvent, f: Filter) -> bool:
    value = event_value(event, f.prop.name)
    return f.matches(value) if value is not None else f.negated


def _is_step(event: RawEvent, step: str) -> bool:
    if step.startswith("Visit "):
        return event.is_pageview and wildcard_match(step.removeprefix("Visit "), event.page)
    return not event.is_pageview and event.name == step


def steps_reached(visit: Visit, steps: Sequence[str], filters: Sequence[Filter] = ()) -> int:
    done = 0
    for event in visit.events:
        if not all(_event_passes(event, f) for f in filters if f.prop.kind != SESSION):
            continue
        if done < len(steps) and _is_step(event, steps[done]):
            done += 1
    return done


def funnel_visitors(
    events: Sequence[RawEvent],
    tz: str,
    first: date,
    last: date,
    steps: Sequence[str],
    filters: Sequence[Filter] = (),
) -> list[int]:
    """Visitors reaching each step."""
    reached: dict[tuple[str, str], int] = {}  # (unit, visitor) → the most steps of a visit
    for visit in visits_of(events):
        unit = unit_of(visit, tz, first, last)
        if unit is None:
            continue
        if not all(_session_passes(visit, f) for f in filters if f.prop.kind == SESSION):
            continue
        key = (unit, visit.visitor)
        reached[key] = max(reached.get(key, 0), steps_reached(visit, steps, filters))
    return [sum(1 for n in reached.values() if n >= k) for k in range(1, len(steps) + 1)]


def journeys(
    events: Sequence[RawEvent],
    tz: str,
    first: date,
    last: date,
    page: str,
    from_entry: bool,
    steps: int,
    filters: Sequence[Filter] = (),
) -> dict[tuple[str, ...], tuple[int, int]]:
    """path → (visitors, visits)."""
    seen: dict[tuple[str, ...], set[tuple[str, str]]] = defaultdict(set)
    visits: dict[tuple[str, ...], int] = defaultdict(int)
    for visit in visits_of(events):
        unit = unit_of(visit, tz, first, last)
        if unit is None:
            continue
        if not all(_session_passes(visit, f) for f in filters if f.prop.kind == SESSION):
            continue
        event_filters = [f for f in filters if f.prop.kind != SESSION]
        if event_filters and not any(
            all(_event_passes(e, f) for f in event_filters) for e in visit.events
        ):
            continue
        pages: list[str] = []
        for p in visit.pages:
            if not pages or pages[-1] != p:
                pages.append(p)
        if len(pages) < 2:
            continue
        end = pages[0] if from_entry else pages[-1]
        if not wildcard_match(page, end):
            continue
        path = tuple(pages[:steps] if from_entry else pages[-steps:])
        seen[path].add((unit, visit.visitor))
        visits[path] += 1
    return {path: (len(who), visits[path]) for path, who in seen.items()}
