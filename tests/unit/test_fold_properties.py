"""Properties of the fold, checked on random traffic of one visitor (hypothesis):

- correctness: folding a visitor's events, in any arrival order, in one batch or in two with the
  state stored as JSON in between, and with some events delivered twice, gives summed deltas
  (zeros dropped) equal to the counters `tests/oracle.py` computes straight from the events;
- the sessions the state derives are the oracle's, whatever the arrival order;
- with timestamps that tie (which the fold and the oracle may break differently), the fold still
  does not depend on arrival order.

The events of one example have distinct timestamps: the order of events at the same millisecond
is broken by a hash in the fold and by the event id in the oracle, and that order decides the
session's first event (its source, entry page) and time on page.
"""

from __future__ import annotations

from itertools import accumulate

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.fold import PAGEVIEW_HIT, VisitorState, add_into, fold, prune
from core.events import ENGAGEMENT, PAGEVIEW, RawEvent
from tests import oracle
from tests.unit.fold_helpers import GAP_MS, MINUTE_MS, event, folded, ms, oracle_cells

# ---- random traffic of one visitor ---------------------------------------------------------------

# Gaps cluster on the 30-minute edge so that sessions split, join and bridge often.
GAPS = st.one_of(
    st.sampled_from([1, GAP_MS - 1, GAP_MS, GAP_MS + 1, 2 * GAP_MS]),
    st.integers(min_value=1, max_value=3 * 60 * MINUTE_MS),
)
KINDS = st.sampled_from(
    [(PAGEVIEW, True), (PAGEVIEW, True), ("Signup", True), ("Scroll", False), (ENGAGEMENT, True)]
)
# Around Berlin's midnight (23:00Z) and DST change (01:00Z) and New York's midnight; and around
# the end of March in Berlin (22:00Z) and New York (04:00Z): day and month boundaries.
STARTS = st.one_of(
    st.integers(ms("2026-03-28T21:00:00+00:00"), ms("2026-03-29T04:00:00+00:00")),
    st.integers(ms("2026-03-31T20:00:00+00:00"), ms("2026-04-01T05:00:00+00:00")),
)
ATTRIBUTES = st.fixed_dictionaries(
    {
        "hostname": st.sampled_from(["", "example.com", "blog.example.com"]),
        "source": st.sampled_from(["Direct / None", "Google", "Twitter"]),
        "utm_campaign": st.sampled_from(["", "spring"]),
        "country": st.sampled_from(["", "DE", "US"]),
        "device": st.sampled_from(["", "mobile", "desktop"]),
        "props": st.sampled_from([{}, {"plan": "pro"}, {"plan": "free", "trial": "yes"}]),
    }
)


@st.composite
def visitor_events(draw: st.DrawFn, ties: bool = False) -> list[RawEvent]:
    tz = draw(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]))
    start = draw(STARTS)
    gaps = draw(st.lists(st.just(0) | GAPS if ties else GAPS, min_size=1, max_size=10))
    events = []
    for i, ts in enumerate(accumulate(gaps, initial=start)):
        name, interactive = draw(KINDS)
        page = draw(st.sampled_from(["/", "/a", "/b"]))
        attributes = draw(ATTRIBUTES)
        events.append(event(ts, name, page, interactive, tz, event_id=f"e{i}", **attributes))
    return events


def arrivals(data: st.DataObject, events: list[RawEvent]) -> list[RawEvent]:
    """The events in a random order, some of them delivered again (at-least-once delivery)."""
    shuffled = data.draw(st.permutations(events), label="arrival order")
    again = data.draw(st.lists(st.sampled_from(events), max_size=3), label="redelivered")
    for repeat in again:
        at = data.draw(st.integers(0, len(shuffled)), label="redelivered at")
        shuffled.insert(at, repeat)
    return shuffled


# ---- properties ----------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(data=st.data(), events=visitor_events())
def test_folding_in_any_order_gives_the_oracles_counters(
    data: st.DataObject, events: list[RawEvent]
) -> None:
    # Given one visitor's events, delivered in a random order, some twice
    delivered = arrivals(data, events)

    # When they are folded
    deltas = folded(delivered)

    # Then the summed deltas are the oracle's counters, whatever the order
    assert deltas == oracle_cells(events)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), events=visitor_events())
def test_folding_in_two_batches_with_stored_state_gives_the_oracles_counters(
    data: st.DataObject, events: list[RawEvent]
) -> None:
    # Given the events split over two stream batches, in random orders, some delivered twice
    delivered = arrivals(data, events)
    cut = data.draw(st.integers(0, len(delivered)), label="batch boundary")

    # When the state is stored as JSON between the batches
    state, total = fold(VisitorState(), delivered[:cut])
    restored = VisitorState.from_json(state.to_json(), version=1)
    _, second = fold(restored, delivered[cut:])
    add_into(total, second)

    # Then the summed deltas equal the oracle's counters
    assert prune(total) == oracle_cells(events)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), events=visitor_events())
def test_final_sessions_are_the_oracles_whatever_the_arrival_order(
    data: st.DataObject, events: list[RawEvent]
) -> None:
    state, _ = fold(VisitorState(), arrivals(data, events))

    expected = [
        (
            [e.ts for e in counted],
            [e.ts for e in engagement],
            [e.page for e in counted if e.is_pageview],
        )
        for counted, engagement in oracle.sessions_of(events)
    ]
    assert [
        (
            [h.ts for h in s.hits],
            [h.ts for h in s.engagement],
            [h.page for h in s.hits if h.kind == PAGEVIEW_HIT],
        )
        for s in state.sessions()
    ] == expected


@settings(max_examples=60, deadline=None)
@given(data=st.data(), events=visitor_events(ties=True))
def test_with_tied_timestamps_the_fold_still_does_not_depend_on_arrival_order(
    data: st.DataObject, events: list[RawEvent]
) -> None:
    # Given events some of which share a millisecond, in two random orders
    one, other = arrivals(data, events), arrivals(data, events)

    # When both are folded, the second in two batches with the state stored between
    _, deltas = fold(VisitorState(), one)
    cut = data.draw(st.integers(0, len(other)), label="batch boundary")
    state, total = fold(VisitorState(), other[:cut])
    _, second = fold(VisitorState.from_json(state.to_json(), version=1), other[cut:])
    add_into(total, second)

    # Then the deltas are the same (the oracle may break the ties otherwise)
    assert prune(total) == prune(deltas)
