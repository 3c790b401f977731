"""The fold of one visitor's events into counter deltas: sessionization, bounces, duration,
uniques and current visitors, as METRICS.md defines them. Cases are tables; times are pinned."""

from __future__ import annotations

from dataclasses import replace

import pytest

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
    apply_event,
    empty_deltas,
    fold,
    prune,
    session_open_at,
)
from core.events import ENGAGEMENT, PAGEVIEW, RawEvent
from core.keys import Granularity, counter_attr
from tests.unit.fold_helpers import GAP_MS, MINUTE_MS, event, folded, ms, totals

MINUTE, HOUR, DAY = Granularity.MINUTE, Granularity.HOUR, Granularity.DAY
T0 = ms("2026-03-29T10:00:00+00:00")


def at(hhmm: str, name: str = PAGEVIEW, page: str = "/", tz: str = "UTC") -> RawEvent:
    """A pageview (or `name`) at hh:mm UTC on 2026-03-29."""
    return event(ms(f"2026-03-29T{hhmm}:00+00:00"), name=name, page=page, tz=tz)


# ---- sessions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gap", "visits", "bounces", "duration"),
    [
        (0, 1, 0, 0),
        (1, 1, 0, 1),
        (GAP_MS - 1, 1, 0, GAP_MS - 1),
        (GAP_MS, 1, 0, GAP_MS),  # exactly 30 minutes: the same session
        (GAP_MS + 1, 2, 2, 0),  # 30 minutes and 1 ms: a new session
        (2 * GAP_MS, 2, 2, 0),
    ],
)
@pytest.mark.parametrize("arrival", ["in order", "reversed"])
def test_gap_longer_than_30_minutes_starts_a_new_session(
    gap: int, visits: int, bounces: int, duration: int, arrival: str
) -> None:
    # Given two pageviews `gap` ms apart
    events = [event(T0, page="/a"), event(T0 + gap, page="/b")]
    if arrival == "reversed":
        events.reverse()

    # When they are folded
    deltas = folded(events)

    # Then the visits, bounces and duration follow the 30-minute rule
    for gran in (MINUTE, HOUR, DAY):
        assert sum(totals(deltas, gran, VISITS).values()) == visits
        assert sum(totals(deltas, gran, BOUNCES).values()) == bounces
        assert sum(totals(deltas, gran, DURATION_MS).values()) == duration


@pytest.mark.parametrize(
    ("tz", "first", "last", "start_day", "next_day"),
    [
        (
            "UTC",
            "2026-03-28T23:50:00+00:00",
            "2026-03-29T00:10:00+00:00",
            "2026-03-28",
            "2026-03-29",
        ),
        # 23:50 and 00:10 in Berlin, the night it moves to summer time
        (
            "Europe/Berlin",
            "2026-03-28T22:50:00+00:00",
            "2026-03-28T23:10:00+00:00",
            "2026-03-28",
            "2026-03-29",
        ),
        # 23:50 and 00:10 in New York (summer time)
        (
            "America/New_York",
            "2026-03-29T03:50:00+00:00",
            "2026-03-29T04:10:00+00:00",
            "2026-03-28",
            "2026-03-29",
        ),
    ],
)
def test_session_crossing_midnight_is_one_visit_in_the_day_it_starts(
    tz: str, first: str, last: str, start_day: str, next_day: str
) -> None:
    # Given a 20-minute session that crosses the site's local midnight
    events = [event(ms(first), tz=tz, page="/a"), event(ms(last), tz=tz, page="/b")]

    # When it is folded
    deltas = folded(events)

    # Then the visit and its duration belong to the day it started, the views to their own days
    assert totals(deltas, DAY, VISITS) == {start_day: 1}
    assert totals(deltas, DAY, DURATION_MS) == {start_day: 20 * MINUTE_MS}
    assert totals(deltas, DAY, PAGEVIEWS) == {start_day: 1, next_day: 1}
    assert totals(deltas, DAY, VISITORS) == {start_day: 1, next_day: 1}
    assert sum(totals(deltas, HOUR, VISITS).values()) == 1


@pytest.mark.parametrize(
    ("first", "late", "gran", "before", "after"),
    [
        ("03-29T10:20", "03-29T10:05", MINUTE, "2026-03-29T10:20", "2026-03-29T10:05"),
        ("03-29T11:10", "03-29T10:50", HOUR, "2026-03-29T11", "2026-03-29T10"),
        ("03-29T00:10", "03-28T23:50", DAY, "2026-03-29", "2026-03-28"),
    ],
)
def test_earlier_event_arriving_later_moves_the_visit_to_the_new_start_bucket(
    first: str, late: str, gran: Granularity, before: str, after: str
) -> None:
    first_ts, late_ts = ms(f"2026-{first}:00+00:00"), ms(f"2026-{late}:00+00:00")

    # Given a one-pageview session (a bounce)
    state, deltas = fold(VisitorState(), [event(first_ts, page="/b")])
    assert totals(deltas, gran, VISITS) == {before: 1}
    assert totals(deltas, gran, BOUNCES) == {before: 1}

    # When an earlier pageview of the same session arrives late
    late_deltas = empty_deltas()
    apply_event(state, event(late_ts, page="/a"), late_deltas)

    # Then the visit moves out of the old start bucket into the new one, no longer a bounce
    assert late_deltas[(gran, "_", before)][VISITS] == -1
    assert late_deltas[(gran, "_", before)][BOUNCES] == -1
    assert late_deltas[(gran, "_", after)][VISITS] == 1
    assert late_deltas[(gran, "_", after)][BOUNCES] == 0
    assert late_deltas[(gran, "_", after)][DURATION_MS] == first_ts - late_ts


def test_out_of_order_events_keep_the_totals_of_in_order_events() -> None:
    # Given three pageviews of one session, the earliest arriving last
    in_order = [at("10:05", page="/a"), at("10:20", page="/b"), at("10:40", page="/c")]
    late = [in_order[1], in_order[2], in_order[0]]

    # When both orders are folded
    expected, actual = folded(in_order), folded(late)

    # Then the results are the same: one visit at 10:05 lasting 35 minutes
    assert actual == expected
    assert totals(actual, MINUTE, VISITS) == {"2026-03-29T10:05": 1}
    assert totals(actual, MINUTE, DURATION_MS) == {"2026-03-29T10:05": 35 * MINUTE_MS}
    assert totals(actual, DAY, PAGEVIEWS) == {"2026-03-29": 3}


def test_event_bridging_two_sessions_merges_them_into_one_visit() -> None:
    # Given two bounced visits an hour apart
    state, deltas = fold(VisitorState(), [at("10:00"), at("11:00", page="/b")])
    assert totals(deltas, DAY, VISITS) == {"2026-03-29": 2}
    assert totals(deltas, DAY, BOUNCES) == {"2026-03-29": 2}

    # When a pageview arrives between them, within 30 minutes of both
    state, bridge = fold(state, [at("10:30", page="/c")])
    add_into(deltas, bridge)
    deltas = prune(deltas)

    # Then there is one visit of an hour, starting at 10:00, and no bounce
    assert totals(deltas, MINUTE, VISITS) == {"2026-03-29T10:00": 1}
    assert totals(deltas, DAY, BOUNCES) == {}
    assert totals(deltas, DAY, DURATION_MS) == {"2026-03-29": 60 * MINUTE_MS}
    assert len(state.sessions) == 1


# ---- bounces and duration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("session", "bounces"),
    [
        ([(PAGEVIEW, True)], 1),
        ([(PAGEVIEW, True), (PAGEVIEW, True)], 0),  # a repeat view counts
        ([(PAGEVIEW, True), ("Signup", True)], 0),
        ([(PAGEVIEW, True), ("Signup", False)], 1),  # non-interactive events don't un-bounce
        ([(PAGEVIEW, True), ("Signup", False), ("Outbound Link: Click", False)], 1),
        ([(PAGEVIEW, True), (ENGAGEMENT, True)], 1),
        ([("Signup", True), (PAGEVIEW, True)], 0),
        ([("Signup", True)], 0),  # no pageview: not a bounce
        ([("Signup", False)], 0),
    ],
)
def test_bounce_is_exactly_one_pageview_and_no_interactive_custom_event(
    session: list[tuple[str, bool]], bounces: int
) -> None:
    events = [
        event(T0 + i * MINUTE_MS, name=name, interactive=interactive)
        for i, (name, interactive) in enumerate(session)
    ]

    deltas = folded(events)

    assert totals(deltas, DAY, VISITS) == {"2026-03-29": 1}
    assert sum(totals(deltas, DAY, BOUNCES).values()) == bounces


@pytest.mark.parametrize(
    ("offsets", "duration"),
    [
        ([0], 0),
        ([0, 1_234], 1_234),
        ([0, 1_234, 65_432], 65_432),
        ([0, GAP_MS, 2 * GAP_MS, 3 * GAP_MS], 3 * GAP_MS),  # chained, never a gap over 30 min
        ([500, 0, 250], 500),
    ],
)
def test_duration_is_last_minus_first_event_in_milliseconds(
    offsets: list[int], duration: int
) -> None:
    deltas = folded([event(T0 + offset, page=f"/{offset}") for offset in offsets])

    assert sum(totals(deltas, DAY, DURATION_MS).values()) == duration


def test_engagement_after_the_last_pageview_does_not_extend_the_visit() -> None:
    deltas = folded([event(T0), event(T0 + 10 * MINUTE_MS, name=ENGAGEMENT)])

    assert totals(deltas, DAY, DURATION_MS) == {}
    assert totals(deltas, DAY, BOUNCES) == {"2026-03-29": 1}


@pytest.mark.parametrize("offset", [-GAP_MS, -1, 0, 1, 5 * MINUTE_MS, 3 * GAP_MS])
def test_engagement_events_change_nothing(offset: int) -> None:
    # Given a visitor with a session
    state, _ = fold(VisitorState(), [event(T0), event(T0 + MINUTE_MS, name="Signup")])

    # When an engagement event arrives
    deltas = empty_deltas()
    after = apply_event(state, event(T0 + offset, name=ENGAGEMENT), deltas)

    # Then neither the state nor any counter moves
    assert after == state
    assert prune(deltas) == {}


# ---- counts, uniques and current -----------------------------------------------------------------


def test_events_count_every_name_but_engagement_and_pageviews_count_per_page() -> None:
    events = [
        at("10:00", page="/a"),
        at("10:01", page="/b"),
        at("10:02", page="/a"),
        at("10:03", name="Signup"),
        at("10:04", name=ENGAGEMENT),
    ]

    deltas = folded(events)

    assert totals(deltas, DAY, EVENTS) == {"2026-03-29": 4}
    assert totals(deltas, DAY, PAGEVIEWS) == {"2026-03-29": 3}
    assert deltas[(DAY, "page", "2026-03-29")] == {
        counter_attr(PAGEVIEWS, "/a"): 2,
        counter_attr(PAGEVIEWS, "/b"): 1,
    }


@pytest.mark.parametrize(
    ("times", "minutes", "hours", "days"),
    [
        (["10:00", "10:00", "10:00"], 1, 1, 1),
        (["10:00", "10:01", "10:59"], 3, 1, 1),
        (["10:00", "10:01", "11:30"], 3, 2, 1),
        (["10:00", "14:00", "10:00", "14:00"], 2, 2, 1),  # two sessions, still one visitor a day
    ],
)
def test_visitor_is_counted_once_per_minute_hour_and_day_bucket(
    times: list[str], minutes: int, hours: int, days: int
) -> None:
    deltas = folded([at(t) for t in times])

    for gran, buckets in ((MINUTE, minutes), (HOUR, hours), (DAY, days)):
        counted = totals(deltas, gran, VISITORS)
        assert len(counted) == buckets
        assert set(counted.values()) == {1}


def test_visitor_is_unique_per_local_day_of_the_site() -> None:
    # 23:59 and 00:01 in Berlin: two local days, one UTC day
    events = [
        event(ms("2026-03-28T22:59:00+00:00"), tz="Europe/Berlin"),
        event(ms("2026-03-28T23:01:00+00:00"), tz="Europe/Berlin"),
    ]

    deltas = folded(events)

    assert totals(deltas, DAY, VISITORS) == {"2026-03-28": 1, "2026-03-29": 1}
    assert totals(deltas, HOUR, VISITORS) == {"2026-03-28T22": 1, "2026-03-28T23": 1}


def test_current_counter_moves_to_the_minute_of_the_latest_event() -> None:
    # Given a visitor seen at 10:00
    state, _ = fold(VisitorState(), [at("10:00")])

    # When it is seen again at 10:03
    step = empty_deltas()
    state = apply_event(state, at("10:03", name="Signup"), step)

    # Then "current" leaves 10:00 and arrives at 10:03
    assert totals(step, MINUTE, CURRENT) == {"2026-03-29T10:00": -1, "2026-03-29T10:03": 1}

    # And an older event arriving late does not move it back
    late = empty_deltas()
    apply_event(state, at("10:01"), late)
    assert totals(late, MINUTE, CURRENT) == {}


@pytest.mark.parametrize(
    "times",
    [["10:00"], ["10:00", "10:03", "10:01"], ["10:03", "10:00"], ["09:00", "12:00", "10:30"]],
)
def test_current_counter_nets_to_one_per_visitor_at_its_latest_minute(times: list[str]) -> None:
    deltas = folded([at(t) for t in times])

    latest = max(times)
    assert totals(deltas, MINUTE, CURRENT) == {f"2026-03-29T{latest}": 1}
    assert totals(deltas, HOUR, CURRENT) == totals(deltas, DAY, CURRENT) == {}


def test_engagement_does_not_make_a_visitor_current() -> None:
    deltas = folded([at("10:00"), at("10:04", name=ENGAGEMENT)])

    assert totals(deltas, MINUTE, CURRENT) == {"2026-03-29T10:00": 1}


# ---- entry and exit pages, open sessions ---------------------------------------------------------


def test_entry_and_exit_pages_follow_event_time_not_arrival() -> None:
    state, _ = fold(
        VisitorState(),
        [at("10:10", page="/middle"), at("10:20", page="/last"), at("10:00", page="/first")],
    )

    (session,) = state.sessions
    assert (session.entry_page, session.exit_page) == ("/first", "/last")
    assert (session.start, session.end, session.pageviews) == (T0, T0 + 20 * MINUTE_MS, 3)


@pytest.mark.parametrize(
    ("offset", "open_"),
    [(-GAP_MS - 1, False), (-GAP_MS, True), (0, True), (GAP_MS, True), (GAP_MS + 1, False)],
)
def test_session_is_open_within_30_minutes_either_side(offset: int, open_: bool) -> None:
    state, _ = fold(VisitorState(), [event(T0)])

    assert session_open_at(state, T0 + offset) is open_


def test_unknown_visitor_has_no_open_session() -> None:
    assert session_open_at(None, T0) is False


# ---- state round trip ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "events",
    [
        [],
        [at("10:00")],
        [at("10:00", page="/a"), at("10:10", name="Signup"), at("12:00", tz="Europe/Berlin")],
    ],
)
def test_visitor_state_survives_a_json_round_trip(events: list[RawEvent]) -> None:
    # Given a visitor state after some events
    state, _ = fold(VisitorState(), events)

    # When it is stored and read back
    restored = VisitorState.from_json(state.to_json(), version=7)

    # Then it is the same state, at the stored version, and folds on identically
    assert restored == replace(state, version=7)
    more = [at("10:20", page="/z"), at("11:50")]
    assert prune(fold(restored, more)[1]) == prune(fold(state, more)[1])
    assert fold(restored, more)[0] == replace(fold(state, more)[0], version=7)
