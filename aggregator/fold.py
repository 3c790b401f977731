"""The pure fold of raw events into visitor state and counter deltas (decision records 0003, 0005).

A visitor's state is the list of its *hits* (one per event: time, kind, page, name, and a
reference to the event's session attributes). Every counter is a *contribution* derived from
that state: sessions are recomputed from the hits (no gap longer than 30 minutes), and a session
contributes its visit, bounce and duration to the bucket where it starts, its pageviews to the
buckets they happened in, one unique visitor to each (bucket, dimension value) it touched, and
time on page to the pages it viewed. Folding events in is then:

    delta = contributions(new state) - contributions(old state)

so late and out-of-order events (a session whose start moves earlier, two sessions bridged into
one, an engagement event that arrives before its pageview) come out exact with no special case,
and the result does not depend on delivery order. Event-level counts that need no history (events
and pageviews by name, page, hostname and prop) are added per event. Props are kept with each hit's
attributes, so a prop value has exact unique visitors like a page has.

Sessions follow docs/metrics.md. A visitor id is per day (daily salt); an event whose
previous-day id still has a session open continues it.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from core.events import RawEvent
from core.keys import TOTALS, Granularity, bucket_label, counter_attr
from core.vocabulary import (
    BOUNCES,
    DURATION_MS,
    ENTRY_PAGE,
    EVENTS,
    EXIT_PAGE,
    HOSTNAME,
    NAME,
    PAGE,
    PAGEVIEWS,
    PROP_KEYS,
    PROP_PREFIX,
    SCROLL_N,
    SCROLL_SUM,
    SESSION_DIMENSIONS,
    TIME_ON_PAGE_MS,
    TIME_ON_PAGE_N,
    VISITORS,
    VISITS,
)

SESSION_GAP_MS = 30 * 60 * 1000

# Which granularities carry which counters (decision records 0005, 0012):
#   hour: totals, for one-day graphs;
#   day and month: totals and every dimension, so a 30-day range is 30 items, a year 12.
# Minutes (realtime) are not folded: aggregator/minutes.py counts them without visitor state.
TOTAL_GRANULARITIES = (Granularity.HOUR, Granularity.DAY, Granularity.MONTH)
SESSION_GRANULARITIES = TOTAL_GRANULARITIES
DIMENSION_GRANULARITIES = (Granularity.DAY, Granularity.MONTH)

# hit kinds
PAGEVIEW_HIT = "p"
INTERACTIVE_HIT = "i"
NON_INTERACTIVE_HIT = "n"
ENGAGEMENT_HIT = "e"

# A counter cell: (granularity, dimension, bucket label) → {attribute: delta}
CellKey = tuple[Granularity, str, str]
Deltas = dict[CellKey, dict[str, int]]


@dataclass(frozen=True, order=True)
class Hit:
    ts: int
    kind: str
    page: str
    name: str  # custom event name; "" for pageviews and engagement
    ref: str  # key of the event's attributes in VisitorState.attrs
    event: str  # short hash of the event id (dedup within the state)
    depth: int = 0  # an engagement event's scroll depth, %

    @property
    def counts(self) -> bool:
        """Engagement events feed time on page only: never visits, events or uniques."""
        return self.kind != ENGAGEMENT_HIT


@dataclass(frozen=True)
class Session:
    hits: tuple[Hit, ...]  # sorted, non-engagement hits only
    engagement: tuple[Hit, ...]  # engagement hits that fall within the session

    @property
    def start(self) -> int:
        return self.hits[0].ts

    @property
    def end(self) -> int:
        return self.hits[-1].ts

    @property
    def pageviews(self) -> tuple[Hit, ...]:
        return tuple(h for h in self.hits if h.kind == PAGEVIEW_HIT)

    @property
    def is_bounce(self) -> bool:
        interactive = any(h.kind == INTERACTIVE_HIT for h in self.hits)
        return len(self.pageviews) == 1 and not interactive


@dataclass(frozen=True)
class VisitorState:
    hits: tuple[Hit, ...] = ()  # sorted by (ts, ...)
    attrs: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()  # ref → (dimension, value)s
    tz: str = "UTC"
    version: int = 0  # optimistic-concurrency version of the stored item
    segments: int = 1  # on a visitor's first item: how many items its day has (see processor)

    def attributes(self, ref: str) -> dict[str, str]:
        for key, pairs in self.attrs:
            if key == ref:
                return dict(pairs)
        return {}

    def has_event(self, event_id: str) -> bool:
        short = short_hash(event_id)
        return any(h.event == short for h in self.hits)

    def approx_bytes(self) -> int:
        """About how large the stored item is: long paths and props weigh more than 50 bytes."""
        hits = sum(40 + len(h.page) + len(h.name) for h in self.hits)
        attrs = sum(len(k) + len(v) + 6 for _, pairs in self.attrs for k, v in pairs)
        return hits + attrs

    def sessions(self) -> list[Session]:
        return list(_sessions(self.hits))

    def to_json(self) -> str:
        return json.dumps(
            {
                "h": [
                    [h.ts, h.kind, h.page, h.name, h.ref, h.event, *([h.depth] if h.depth else [])]
                    for h in self.hits
                ],
                "a": {ref: dict(pairs) for ref, pairs in self.attrs},
                "tz": self.tz,
                "s": self.segments,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str, version: int) -> VisitorState:
        data = json.loads(text)
        return cls(
            hits=tuple(Hit(*h) for h in data["h"]),
            attrs=tuple(sorted((ref, tuple(sorted(p.items()))) for ref, p in data["a"].items())),
            tz=data.get("tz", "UTC"),
            version=version,
            segments=data.get("s", 1),
        )


def short_hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def _sessions(hits: Iterable[Hit]) -> Iterator[Session]:
    counted = [h for h in hits if h.counts]
    engagement = [h for h in hits if not h.counts]
    groups: list[list[Hit]] = []
    for hit in counted:  # hits are sorted
        if groups and hit.ts - groups[-1][-1].ts <= SESSION_GAP_MS:
            groups[-1].append(hit)
        else:
            groups.append([hit])
    for group in groups:
        start, end = group[0].ts, group[-1].ts
        within = tuple(
            e for e in engagement if start <= e.ts <= end + SESSION_GAP_MS
        )  # an engagement event reports on the page before it
        yield Session(tuple(group), within)


# ---- event attributes ---------------------------------------------------------------------------


def event_attributes(event: RawEvent) -> tuple[tuple[str, str], ...]:
    """The session dimensions, hostname and props of an event (props as `prop:<key>`)."""
    values = {dim: getattr(event, dim) for dim in SESSION_DIMENSIONS}
    values[HOSTNAME] = event.hostname
    for key, value in event.props.items():
        values[PROP_PREFIX + key] = value
    return tuple(sorted((k, v) for k, v in values.items() if v))


def hit_of(event: RawEvent) -> tuple[Hit, tuple[tuple[str, str], ...]]:
    attrs = event_attributes(event)
    ref = short_hash(json.dumps(attrs))[:8]
    if event.is_pageview:
        kind = PAGEVIEW_HIT
    elif event.is_engagement:
        kind = ENGAGEMENT_HIT
    else:
        kind = INTERACTIVE_HIT if event.interactive else NON_INTERACTIVE_HIT
    name = "" if event.is_pageview or event.is_engagement else event.name
    depth = max(0, min(event.scroll_depth or 0, 100)) if kind == ENGAGEMENT_HIT else 0
    return Hit(event.ts, kind, event.page, name, ref, short_hash(event.event_id), depth), attrs


# ---- contributions ------------------------------------------------------------------------------


def empty_deltas() -> Deltas:
    return defaultdict(lambda: defaultdict(int))


def add_into(target: Deltas, source: Deltas, sign: int = 1) -> None:
    for cell, attrs in source.items():
        for attr, value in attrs.items():
            target[cell][attr] += sign * value


def prune(deltas: Deltas) -> dict[CellKey, dict[str, int]]:
    """Drop zero deltas and cells left empty."""
    out = {}
    for cell, attrs in deltas.items():
        kept = {a: v for a, v in attrs.items() if v != 0}
        if kept:
            out[cell] = kept
    return out


def contributions(state: VisitorState) -> Deltas:
    """Everything this visitor contributes to the counters, derived from its hits alone."""
    into = empty_deltas()
    tz = state.tz
    seen: set[CellKey] = set()  # (granularity, dimension|value, bucket) cells the visitor is in
    sessions = state.sessions()
    for session in sessions:
        session_attrs = state.attributes(session.hits[0].ref)
        bounce = int(session.is_bounce)
        duration = session.end - session.start
        pageviews = session.pageviews
        for gran in SESSION_GRANULARITIES:
            cell = into[(gran, TOTALS, bucket_label(gran, session.start, tz))]
            cell[VISITS] += 1
            cell[BOUNCES] += bounce
            cell[DURATION_MS] += duration
        session_values = [
            (d, v)
            for d, v in session_attrs.items()
            if d != HOSTNAME and not d.startswith(PROP_PREFIX)
        ]
        if pageviews:
            session_values += [(ENTRY_PAGE, pageviews[0].page), (EXIT_PAGE, pageviews[-1].page)]
        for gran in DIMENSION_GRANULARITIES:
            start_bucket = bucket_label(gran, session.start, tz)
            for dim, value in session_values:
                seen.add((gran, f"{dim}\x00{value}", start_bucket))
                cell = into[(gran, dim, start_bucket)]
                cell[counter_attr(VISITS, value)] += 1
                cell[counter_attr(BOUNCES, value)] += bounce
                cell[counter_attr(DURATION_MS, value)] += duration
        for hit in session.hits:
            _hit_contribution(state, hit, session_values, into, seen)
        _time_on_page(session, tz, into)
    _scroll_depth(sessions, tz, into)
    for gran, dim_value, bucket in seen:
        if dim_value == TOTALS:
            into[(gran, TOTALS, bucket)][VISITORS] += 1
        else:
            dim, _, value = dim_value.partition("\x00")
            into[(gran, dim, bucket)][counter_attr(VISITORS, value)] += 1
    return into


def _hit_contribution(
    state: VisitorState,
    hit: Hit,
    session_values: list[tuple[str, str]],
    into: Deltas,
    seen: set[CellKey],
) -> None:
    tz = state.tz
    for gran in TOTAL_GRANULARITIES:
        seen.add((gran, TOTALS, bucket_label(gran, hit.ts, tz)))
    attributes = state.attributes(hit.ref)
    hostname = attributes.get(HOSTNAME, "")
    event_values = [(HOSTNAME, hostname)] if hostname else []
    event_values += [(d, v) for d, v in attributes.items() if d.startswith(PROP_PREFIX)]
    if hit.kind == PAGEVIEW_HIT:
        event_values.append((PAGE, hit.page))
    elif hit.name:
        event_values.append((NAME, hit.name))
    for gran in DIMENSION_GRANULARITIES:
        bucket = bucket_label(gran, hit.ts, tz)
        for dim, value in event_values:  # event dimensions: a unique in the event's bucket
            seen.add((gran, f"{dim}\x00{value}", bucket))
        if hit.kind == PAGEVIEW_HIT:
            for dim, value in session_values:
                # pageviews by session dimension, in the bucket the pageview happened
                into[(gran, dim, bucket)][counter_attr(PAGEVIEWS, value)] += 1


def _scroll_depth(sessions: list[Session], tz: str, into: Deltas) -> None:
    """Per page and bucket, the visitor's deepest scroll among its visits' engagement events:
    summed over visitors, with their count, so a page's scroll depth is a mean over visitors."""
    deepest: dict[CellKey, int] = {}  # (granularity, page, bucket) → deepest scroll, %
    for session in sessions:
        for hit in session.engagement:
            for gran in DIMENSION_GRANULARITIES:
                key = (gran, hit.page, bucket_label(gran, hit.ts, tz))
                deepest[key] = max(deepest.get(key, 0), hit.depth)
    for (gran, page, bucket), depth in deepest.items():
        cell = into[(gran, PAGE, bucket)]
        cell[counter_attr(SCROLL_SUM, page)] += depth
        cell[counter_attr(SCROLL_N, page)] += 1


def _time_on_page(session: Session, tz: str, into: Deltas) -> None:
    """Time between each pageview and the visitor's next event (engagement included) in the visit."""
    timeline = sorted(session.hits + session.engagement)
    for index, hit in enumerate(timeline[:-1]):
        if hit.kind != PAGEVIEW_HIT:
            continue
        gap = timeline[index + 1].ts - hit.ts
        for gran in DIMENSION_GRANULARITIES:
            cell = into[(gran, PAGE, bucket_label(gran, hit.ts, tz))]
            cell[counter_attr(TIME_ON_PAGE_MS, hit.page)] += gap
            cell[counter_attr(TIME_ON_PAGE_N, hit.page)] += 1


def event_counts(event: RawEvent, into: Deltas) -> None:
    """Counts that need no history: events and pageviews by name, page, hostname and prop."""
    if event.is_engagement:
        return
    for gran in TOTAL_GRANULARITIES:
        bucket = bucket_label(gran, event.ts, event.tz)
        totals = into[(gran, TOTALS, bucket)]
        totals[EVENTS] += 1
        if event.is_pageview:
            totals[PAGEVIEWS] += 1
    for gran in DIMENSION_GRANULARITIES:
        bucket = bucket_label(gran, event.ts, event.tz)
        if event.is_pageview:
            into[(gran, PAGE, bucket)][counter_attr(PAGEVIEWS, event.page)] += 1
        else:
            into[(gran, NAME, bucket)][counter_attr(EVENTS, event.name)] += 1
        if event.hostname:
            cell = into[(gran, HOSTNAME, bucket)]
            cell[counter_attr(EVENTS, event.hostname)] += 1
            cell[counter_attr(PAGEVIEWS, event.hostname)] += int(event.is_pageview)
        for key, value in event.props.items():
            cell = into[(gran, PROP_PREFIX + key, bucket)]
            cell[counter_attr(EVENTS, value)] += 1
            cell[counter_attr(PAGEVIEWS, value)] += int(event.is_pageview)
            into[(gran, PROP_KEYS, bucket)][counter_attr(EVENTS, key)] += 1


def with_event(state: VisitorState, event: RawEvent) -> VisitorState:
    hit, attrs = hit_of(event)
    known = dict(state.attrs)
    if hit.ref not in known:
        known[hit.ref] = attrs
    return replace(
        state,
        hits=tuple(sorted((*state.hits, hit))),
        attrs=tuple(sorted(known.items())),
        tz=event.tz if not state.hits else state.tz,
    )


def apply_event(state: VisitorState, event: RawEvent, into: Deltas) -> VisitorState:
    """Fold one event into a visitor's state, adding the counter deltas it causes to `into`."""
    if state.has_event(event.event_id):
        return state  # already in this visitor's state: counted before
    new = with_event(state, event)
    add_into(into, contributions(new))
    add_into(into, contributions(state), sign=-1)
    event_counts(event, into)
    return new


def session_open_at(state: VisitorState | None, ts: int) -> bool:
    return state is not None and any(
        s.start - SESSION_GAP_MS <= ts <= s.end + SESSION_GAP_MS for s in state.sessions()
    )


def fold(state: VisitorState, events: Iterable[RawEvent]) -> tuple[VisitorState, Deltas]:
    """Fold many events of one visitor; a convenience for tests and rebuilds."""
    deltas = empty_deltas()
    for event in events:
        state = apply_event(state, event, deltas)
    return state, deltas
