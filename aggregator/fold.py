"""The pure fold of raw events into visitor state and counter deltas.

Every counter is a *contribution*: a visitor's sessions contribute visits, bounces and duration to
the bucket where each session starts; a visitor contributes one unique to each bucket it was seen
in, and one "current" to the minute of its latest event. Applying an event replaces the visitor's
old contributions with new ones, so the delta is `contrib(new) - contrib(old)`. That makes late and
out-of-order events (a session whose start moves earlier, two sessions bridged into one) exact
without special cases, and it keeps the whole fold a function of (state, events).

Sessions follow METRICS.md: a visitor's events with no gap longer than 30 minutes. A visitor id is
per day (daily salt); an event whose previous-day id still has a session open continues it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from core.events import RawEvent
from core.keys import TOTALS, Granularity, bucket_label, counter_attr

SESSION_GAP_MS = 30 * 60 * 1000
GRANULARITIES = (Granularity.MINUTE, Granularity.HOUR, Granularity.DAY)

# metric names, stored as counter attributes
PAGEVIEWS = "pageviews"
EVENTS = "events"
VISITORS = "visitors"
VISITS = "visits"
BOUNCES = "bounces"
DURATION_MS = "duration_ms"
CURRENT = "current"  # visitors whose latest event falls in this minute


@dataclass(frozen=True)
class Session:
    start: int
    end: int
    pageviews: int = 0
    interactive_events: int = 0
    entry_page: str = ""
    entry_ts: int = 0
    exit_page: str = ""
    exit_ts: int = 0
    tz: str = "UTC"

    @property
    def is_bounce(self) -> bool:
        return self.pageviews == 1 and self.interactive_events == 0

    def touches(self, ts: int) -> bool:
        return self.start - SESSION_GAP_MS <= ts <= self.end + SESSION_GAP_MS

    def merge(self, other: Session) -> Session:
        first = (
            self
            if (self.entry_page and (not other.entry_page or self.entry_ts <= other.entry_ts))
            else other
        )
        last = (
            self
            if (self.exit_page and (not other.exit_page or self.exit_ts >= other.exit_ts))
            else other
        )
        return Session(
            start=min(self.start, other.start),
            end=max(self.end, other.end),
            pageviews=self.pageviews + other.pageviews,
            interactive_events=self.interactive_events + other.interactive_events,
            entry_page=first.entry_page,
            entry_ts=first.entry_ts,
            exit_page=last.exit_page,
            exit_ts=last.exit_ts,
            tz=self.tz if self.start <= other.start else other.tz,
        )

    @classmethod
    def of(cls, event: RawEvent) -> Session:
        pageview = event.is_pageview
        return cls(
            start=event.ts,
            end=event.ts,
            pageviews=1 if pageview else 0,
            interactive_events=1 if (not pageview and event.interactive) else 0,
            entry_page=event.page if pageview else "",
            entry_ts=event.ts if pageview else 0,
            exit_page=event.page if pageview else "",
            exit_ts=event.ts if pageview else 0,
            tz=event.tz,
        )


@dataclass(frozen=True)
class VisitorState:
    sessions: tuple[Session, ...] = ()
    seen: frozenset[str] = frozenset()  # unique-counter cells this visitor is counted in
    last_seen: int | None = None
    version: int = 0  # optimistic-concurrency version of the stored item

    def to_json(self) -> str:
        return json.dumps(
            {
                "sessions": [asdict(s) for s in self.sessions],
                "seen": sorted(self.seen),
                "last_seen": self.last_seen,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str, version: int) -> VisitorState:
        data = json.loads(text)
        return cls(
            sessions=tuple(Session(**s) for s in data["sessions"]),
            seen=frozenset(data["seen"]),
            last_seen=data["last_seen"],
            version=version,
        )


# A counter cell: (granularity, dimension, bucket label) → {attribute: delta}
CellKey = tuple[Granularity, str, str]
Deltas = dict[CellKey, dict[str, int]]


def empty_deltas() -> Deltas:
    return defaultdict(lambda: defaultdict(int))


def add_into(target: Deltas, source: Deltas) -> None:
    for cell, attrs in source.items():
        for attr, value in attrs.items():
            target[cell][attr] += value


def prune(deltas: Deltas) -> dict[CellKey, dict[str, int]]:
    """Drop zero deltas and cells left empty."""
    out = {}
    for cell, attrs in deltas.items():
        kept = {a: v for a, v in attrs.items() if v != 0}
        if kept:
            out[cell] = kept
    return out


def session_contribution(session: Session, sign: int, into: Deltas) -> None:
    for gran in GRANULARITIES:
        bucket = bucket_label(gran, session.start, session.tz)
        cell = into[(gran, TOTALS, bucket)]
        cell[VISITS] += sign
        cell[BOUNCES] += sign * int(session.is_bounce)
        cell[DURATION_MS] += sign * (session.end - session.start)


def apply_event(state: VisitorState, event: RawEvent, into: Deltas) -> VisitorState:
    """Fold one event into a visitor's state, adding the counter deltas it causes to `into`."""
    if event.is_engagement:
        return state  # engagement events feed time-on-page, never visits or counts
    # Event counts: independent of the visitor's history.
    for gran in GRANULARITIES:
        bucket = bucket_label(gran, event.ts, event.tz)
        totals = into[(gran, TOTALS, bucket)]
        totals[EVENTS] += 1
        if event.is_pageview:
            totals[PAGEVIEWS] += 1
            into[(gran, "page", bucket)][counter_attr(PAGEVIEWS, event.page)] += 1

    # Uniques: the first time this visitor is seen in a bucket.
    seen = set(state.seen)
    for gran in GRANULARITIES:
        bucket = bucket_label(gran, event.ts, event.tz)
        mark = f"{gran.value}:{bucket}"
        if mark not in seen:
            seen.add(mark)
            into[(gran, TOTALS, bucket)][VISITORS] += 1

    # Current visitors: one per visitor, in the minute of its latest event.
    last_seen = state.last_seen
    if last_seen is None or event.ts > last_seen:
        if last_seen is not None:
            into[(Granularity.MINUTE, TOTALS, bucket_label(Granularity.MINUTE, last_seen, "UTC"))][
                CURRENT
            ] -= 1
        into[(Granularity.MINUTE, TOTALS, bucket_label(Granularity.MINUTE, event.ts, "UTC"))][
            CURRENT
        ] += 1
        last_seen = event.ts

    # Sessions: the event joins (and may bridge) every session within the gap.
    joined = [s for s in state.sessions if s.touches(event.ts)]
    kept = [s for s in state.sessions if not s.touches(event.ts)]
    merged = Session.of(event)
    for session in joined:
        merged = session.merge(merged)
        session_contribution(session, -1, into)
    session_contribution(merged, +1, into)
    sessions = tuple(sorted([*kept, merged], key=lambda s: s.start))
    return replace(state, sessions=sessions, seen=frozenset(seen), last_seen=last_seen)


def session_open_at(state: VisitorState | None, ts: int) -> bool:
    return state is not None and any(s.touches(ts) for s in state.sessions)


def fold(state: VisitorState, events: Iterable[RawEvent]) -> tuple[VisitorState, Deltas]:
    """Fold many events of one visitor; a convenience for tests and rebuilds."""
    deltas = empty_deltas()
    for event in events:
        state = apply_event(state, event, deltas)
    return state, deltas
