"""Properties of the fold, checked on random traffic of one visitor (hypothesis):

- order independence: folding the same events in any order, in one batch or two with the state
  stored as JSON in between, gives the same summed deltas (zeros dropped);
- correctness: those deltas equal an obviously-correct recount straight from the events (sessions
  found by sorting the timestamps and splitting on gaps over 30 minutes, METRICS.md).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from itertools import accumulate
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.fold import (
    BOUNCES,
    CURRENT,
    DURATION_MS,
    EVENTS,
    PAGEVIEWS,
    VISITORS,
    VISITS,
    VisitorState,
    add_into,
    fold,
    prune,
)
from core.events import ENGAGEMENT, PAGEVIEW, RawEvent
from core.keys import Granularity
from tests.unit.fold_helpers import GAP_MS, MINUTE_MS, event, folded, ms

Cells = dict[tuple[Granularity, str, str], dict[str, int]]

# ---- the oracle ----------------------------------------------------------------------------------


def bucket(gran: Granularity, ts: int, tz: str) -> str:
    if gran is Granularity.MINUTE:
        return datetime.fromtimestamp(ts / 1000, ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M")
    if gran is Granularity.HOUR:
        return datetime.fromtimestamp(ts / 1000, ZoneInfo("UTC")).strftime("%Y-%m-%dT%H")
    return datetime.fromtimestamp(ts / 1000, ZoneInfo(tz)).strftime("%Y-%m-%d")


def split_sessions(events: list[RawEvent]) -> list[list[RawEvent]]:
    """Sort by time; a gap over 30 minutes starts a new session."""
    sessions: list[list[RawEvent]] = []
    for e in sorted(events, key=lambda e: e.ts):
        if sessions and e.ts - sessions[-1][-1].ts <= GAP_MS:
            sessions[-1].append(e)
        else:
            sessions.append([e])
    return sessions


def recount(events: list[RawEvent]) -> Cells:
    counted = [e for e in events if e.name != ENGAGEMENT]
    cells: dict[tuple[Granularity, str, str], Counter[str]] = defaultdict(Counter)
    for gran in Granularity:
        for e in counted:
            b = bucket(gran, e.ts, e.tz)
            cells[(gran, "_", b)][EVENTS] += 1
            if e.name == PAGEVIEW:
                cells[(gran, "_", b)][PAGEVIEWS] += 1
                cells[(gran, "page", b)][f"pageviews|{e.page}"] += 1
        for b in {bucket(gran, e.ts, e.tz) for e in counted}:
            cells[(gran, "_", b)][VISITORS] += 1
        for session in split_sessions(counted):
            first, last = session[0], session[-1]
            pageviews = sum(e.name == PAGEVIEW for e in session)
            interactive = any(e.name != PAGEVIEW and e.interactive for e in session)
            start = cells[(gran, "_", bucket(gran, first.ts, first.tz))]
            start[VISITS] += 1
            start[BOUNCES] += int(pageviews == 1 and not interactive)
            start[DURATION_MS] += last.ts - first.ts
    if counted:
        latest = max(e.ts for e in counted)
        cells[(Granularity.MINUTE, "_", bucket(Granularity.MINUTE, latest, "UTC"))][CURRENT] += 1
    out = {cell: {k: v for k, v in attrs.items() if v} for cell, attrs in cells.items()}
    return {cell: attrs for cell, attrs in out.items() if attrs}


# ---- random traffic of one visitor ---------------------------------------------------------------

# Gaps cluster on the 30-minute edge so that sessions split, join and bridge often.
GAPS = st.one_of(
    st.sampled_from([0, 1, GAP_MS - 1, GAP_MS, GAP_MS + 1, 2 * GAP_MS]),
    st.integers(min_value=0, max_value=3 * 60 * MINUTE_MS),
)
KINDS = st.sampled_from(
    [(PAGEVIEW, True), (PAGEVIEW, True), ("Signup", True), ("Scroll", False), (ENGAGEMENT, True)]
)


@st.composite
def visitor_events(draw: st.DrawFn) -> list[RawEvent]:
    # Around Berlin's midnight (23:00Z) and its DST change (01:00Z), and New York's midnight.
    tz = draw(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]))
    start = draw(st.integers(ms("2026-03-28T21:00:00+00:00"), ms("2026-03-29T04:00:00+00:00")))
    gaps = draw(st.lists(GAPS, min_size=1, max_size=12))
    events = []
    for i, ts in enumerate(accumulate(gaps, initial=start)):
        name, interactive = draw(KINDS)
        page = draw(st.sampled_from(["/", "/a", "/b"]))
        events.append(event(ts, name, page, interactive, tz, event_id=f"e{i}"))
    return events


# ---- properties ----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=st.data(), events=visitor_events())
def test_folding_in_any_order_gives_the_same_deltas_as_a_recount(
    data: st.DataObject, events: list[RawEvent]
) -> None:
    # Given one visitor's events, delivered in a random order
    shuffled = data.draw(st.permutations(events), label="arrival order")

    # When they are folded
    deltas = folded(shuffled)

    # Then the summed deltas are those of a straightforward recount, whatever the order
    assert deltas == recount(events)
    assert deltas == folded(events)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), events=visitor_events())
def test_folding_in_two_batches_with_stored_state_gives_the_same_deltas(
    data: st.DataObject, events: list[RawEvent]
) -> None:
    # Given the events split over two stream batches, in random orders
    shuffled = data.draw(st.permutations(events), label="arrival order")
    cut = data.draw(st.integers(0, len(shuffled)), label="batch boundary")

    # When the state is stored as JSON between the batches
    state, total = fold(VisitorState(), shuffled[:cut])
    restored = VisitorState.from_json(state.to_json(), version=1)
    _, second = fold(restored, shuffled[cut:])
    add_into(total, second)

    # Then the summed deltas equal the recount
    assert prune(total) == recount(events)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), events=visitor_events())
def test_final_sessions_do_not_depend_on_arrival_order(
    data: st.DataObject, events: list[RawEvent]
) -> None:
    shuffled = data.draw(st.permutations(events), label="arrival order")

    state, _ = fold(VisitorState(), shuffled)

    counted = [e for e in events if e.name != ENGAGEMENT]
    expected = [
        (s[0].ts, s[-1].ts, sum(e.name == PAGEVIEW for e in s)) for s in split_sessions(counted)
    ]
    assert [(s.start, s.end, s.pageviews) for s in state.sessions] == expected
