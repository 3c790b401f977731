"""The fold of one visitor's events into counter deltas: sessionization, bounces, duration,
uniques, time on page and the dimensions, as docs/metrics.md defines them.
Cases are tables; times are pinned."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from aggregator.fold import (
    BOUNCES,
    DURATION_MS,
    ENTRY_PAGE,
    EVENTS,
    EXIT_PAGE,
    HOSTNAME,
    NAME,
    PAGE,
    PAGEVIEWS,
    SESSION_DIMENSIONS,
    TIME_ON_PAGE_MS,
    TIME_ON_PAGE_N,
    TOTAL_GRANULARITIES,
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
from core.keys import TOTALS, Granularity
from tests.unit.fold_helpers import GAP_MS, MINUTE_MS, by_value, event, folded, ms, totals

MINUTE, HOUR, DAY, MONTH = Granularity.MINUTE, Granularity.HOUR, Granularity.DAY, Granularity.MONTH
T0 = ms("2026-03-29T10:00:00+00:00")
TODAY = "2026-03-29"


def at(
    hhmm: str, name: str = PAGEVIEW, page: str = "/", tz: str = "UTC", **attributes: Any
) -> RawEvent:
    """A pageview (or `name`) at hh:mm UTC on 2026-03-29."""
    return event(ms(f"2026-03-29T{hhmm}:00+00:00"), name=name, page=page, tz=tz, **attributes)


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

    # Then the visits, bounces and duration follow the 30-minute rule, at every granularity that
    # keeps them (minutes do not: realtime reads no visits)
    for gran in (HOUR, DAY, MONTH):
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
    assert totals(deltas, MONTH, VISITS) == {"2026-03": 1}


@pytest.mark.parametrize(
    ("first", "late", "gran", "before", "after"),
    [
        ("03-29T11:10", "03-29T10:50", HOUR, "2026-03-29T11", "2026-03-29T10"),
        ("03-29T00:10", "03-28T23:50", DAY, "2026-03-29", "2026-03-28"),
        ("04-01T00:10", "03-31T23:50", MONTH, "2026-04", "2026-03"),
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
    assert late_deltas[(gran, TOTALS, before)][VISITS] == -1
    assert late_deltas[(gran, TOTALS, before)][BOUNCES] == -1
    assert late_deltas[(gran, TOTALS, after)][VISITS] == 1
    assert late_deltas[(gran, TOTALS, after)][BOUNCES] == 0
    assert late_deltas[(gran, TOTALS, after)][DURATION_MS] == first_ts - late_ts


def test_out_of_order_events_keep_the_totals_of_in_order_events() -> None:
    # Given three pageviews of one session, the earliest arriving last
    in_order = [at("10:05", page="/a"), at("10:20", page="/b"), at("10:40", page="/c")]
    late = [in_order[1], in_order[2], in_order[0]]

    # When both orders are folded
    expected, actual = folded(in_order), folded(late)

    # Then the results are the same: one visit at 10:05 lasting 35 minutes
    assert actual == expected
    assert totals(actual, HOUR, VISITS) == {"2026-03-29T10": 1}
    assert totals(actual, HOUR, DURATION_MS) == {"2026-03-29T10": 35 * MINUTE_MS}
    assert totals(actual, MINUTE, VISITS) == {}  # minutes keep no visits
    assert totals(actual, DAY, PAGEVIEWS) == {TODAY: 3}


def test_event_bridging_two_sessions_merges_them_into_one_visit() -> None:
    # Given two bounced visits an hour apart
    state, deltas = fold(VisitorState(), [at("10:00"), at("11:00", page="/b")])
    assert totals(deltas, DAY, VISITS) == {TODAY: 2}
    assert totals(deltas, DAY, BOUNCES) == {TODAY: 2}
    assert len(state.sessions()) == 2

    # When a pageview arrives between them, within 30 minutes of both
    state, bridge = fold(state, [at("10:30", page="/c")])
    add_into(deltas, bridge)
    deltas = prune(deltas)

    # Then there is one visit of an hour, starting at 10:00, and no bounce
    assert totals(deltas, HOUR, VISITS) == {"2026-03-29T10": 1}
    assert totals(deltas, DAY, BOUNCES) == {}
    assert totals(deltas, DAY, DURATION_MS) == {TODAY: 60 * MINUTE_MS}
    assert len(state.sessions()) == 1
    assert by_value(deltas, DAY, ENTRY_PAGE, TODAY, VISITS) == {"/": 1}
    assert by_value(deltas, DAY, EXIT_PAGE, TODAY, VISITS) == {"/b": 1}


def test_sessions_are_derived_from_the_hits() -> None:
    # Given counted events and engagement events before, inside and after two sessions
    state, _ = fold(
        VisitorState(),
        [
            at("09:59", name=ENGAGEMENT),  # before any session: in none
            at("10:00", page="/a"),
            at("10:05", name=ENGAGEMENT, page="/a"),
            at("10:10", name="Signup"),
            at("11:00", page="/b"),  # 50 minutes later: a new session
            at("11:20", name=ENGAGEMENT, page="/b"),
            at("12:00", name=ENGAGEMENT, page="/b"),  # 60 minutes after its last event: in none
        ],
    )

    # When the sessions are derived
    first, second = state.sessions()

    # Then each holds its counted hits and the engagement hits within its span plus 30 minutes
    assert len(state.hits) == 7
    assert (first.start, first.end) == (T0, T0 + 10 * MINUTE_MS)
    assert [h.page for h in first.pageviews] == ["/a"]
    assert [h.ts for h in first.engagement] == [T0 + 5 * MINUTE_MS]
    assert first.is_bounce is False  # an interactive custom event
    assert (second.start, second.end) == (T0 + 60 * MINUTE_MS, T0 + 60 * MINUTE_MS)
    assert [h.ts for h in second.engagement] == [T0 + 80 * MINUTE_MS]
    assert second.is_bounce is True


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

    assert totals(deltas, DAY, VISITS) == {TODAY: 1}
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


# ---- engagement ----------------------------------------------------------------------------------


def test_engagement_after_the_last_pageview_does_not_extend_the_visit() -> None:
    deltas = folded([event(T0), event(T0 + 10 * MINUTE_MS, name=ENGAGEMENT)])

    assert totals(deltas, DAY, DURATION_MS) == {}
    assert totals(deltas, DAY, BOUNCES) == {TODAY: 1}


def test_engagement_alone_counts_nothing_but_is_kept() -> None:
    # When a visitor's only events are engagement events
    state, deltas = fold(VisitorState(), [at("10:00", name=ENGAGEMENT), at("10:05", ENGAGEMENT)])

    # Then nothing is counted, and both are kept as hits for pageviews that may arrive late
    assert prune(deltas) == {}
    assert len(state.hits) == 2
    assert state.sessions() == []


def test_engagement_in_a_later_bucket_adds_no_event_or_visitor_there() -> None:
    # A pageview at 23:50 and its engagement event at 00:10 the next day (UTC)
    deltas = folded(
        [
            event(ms("2026-03-28T23:50:00+00:00"), page="/a"),
            event(ms("2026-03-29T00:10:00+00:00"), name=ENGAGEMENT, page="/a"),
        ]
    )

    for gran in TOTAL_GRANULARITIES:
        for metric in (EVENTS, PAGEVIEWS, VISITORS, VISITS):
            assert len(totals(deltas, gran, metric)) == 1
    assert totals(deltas, DAY, VISITORS) == {"2026-03-28": 1}
    # ... but it ends the time on page of the pageview before it, in the pageview's day
    assert by_value(deltas, DAY, PAGE, "2026-03-28", TIME_ON_PAGE_MS) == {"/a": 20 * MINUTE_MS}
    # and its scroll depth counts in its own day, as a visitor's deepest scroll there
    assert prune(deltas)[(DAY, PAGE, TODAY)] == {"sd_n|/a": 1}


@pytest.mark.parametrize(
    ("offset", "moved"),
    [
        (-GAP_MS, {}),  # before the visit: in no session
        (-1, {}),
        # ends /a's interval early (and /b has a visitor's scroll depth: 0 here)
        (30_000, {TIME_ON_PAGE_MS + "|/a": -30_000, "sd_n|/b": 1}),
        (
            5 * MINUTE_MS,
            {TIME_ON_PAGE_MS + "|/b": 4 * MINUTE_MS, TIME_ON_PAGE_N + "|/b": 1, "sd_n|/b": 1},
        ),
        (
            MINUTE_MS + GAP_MS,
            {TIME_ON_PAGE_MS + "|/b": GAP_MS, TIME_ON_PAGE_N + "|/b": 1, "sd_n|/b": 1},
        ),
        (MINUTE_MS + GAP_MS + 1, {}),  # over 30 minutes after the visit's last event
        (3 * GAP_MS, {}),
    ],
)
def test_engagement_event_is_stored_and_moves_only_time_on_page_and_scroll_depth(
    offset: int, moved: dict[str, int]
) -> None:
    # Given a visit of two pageviews a minute apart (/a has a minute on page, /b none yet)
    state, _ = fold(VisitorState(), [event(T0, page="/a"), event(T0 + MINUTE_MS, page="/b")])

    # When an engagement event arrives
    deltas = empty_deltas()
    after = apply_event(state, event(T0 + offset, name=ENGAGEMENT, page="/b"), deltas)

    # Then it is kept as a hit, the sessions' counted hits are unchanged, and only the time on
    # page of the pageview it follows moves
    assert len(after.hits) == len(state.hits) + 1
    assert [s.hits for s in after.sessions()] == [s.hits for s in state.sessions()]
    expected = {(DAY, PAGE, TODAY): moved, (MONTH, PAGE, "2026-03"): moved} if moved else {}
    assert prune(deltas) == expected


# ---- time on page --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "time_on_page"),
    [
        ([(0, PAGEVIEW, "/a")], {}),  # the last pageview of a visit contributes nothing
        ([(0, PAGEVIEW, "/a"), (MINUTE_MS, PAGEVIEW, "/b")], {"/a": (MINUTE_MS, 1)}),
        ([(0, PAGEVIEW, "/a"), (20_000, ENGAGEMENT, "/a")], {"/a": (20_000, 1)}),
        (
            [(0, PAGEVIEW, "/a"), (20_000, ENGAGEMENT, "/a"), (MINUTE_MS, PAGEVIEW, "/b")],
            {"/a": (20_000, 1)},
        ),
        (
            [(0, PAGEVIEW, "/a"), (10_000, "Signup", "/a"), (MINUTE_MS, PAGEVIEW, "/b")],
            {"/a": (10_000, 1)},  # ended by the next event of any kind
        ),
        (
            [(0, PAGEVIEW, "/a"), (MINUTE_MS, PAGEVIEW, "/a"), (3 * MINUTE_MS, PAGEVIEW, "/b")],
            {"/a": (3 * MINUTE_MS, 2)},  # summed over repeat views
        ),
        (
            [
                (0, PAGEVIEW, "/a"),
                (MINUTE_MS, PAGEVIEW, "/b"),
                (2 * MINUTE_MS, "Signup", "/b"),
                (3 * MINUTE_MS, ENGAGEMENT, "/b"),
            ],
            {"/a": (MINUTE_MS, 1), "/b": (MINUTE_MS, 1)},
        ),
        ([(0, PAGEVIEW, "/a"), (GAP_MS + 1, PAGEVIEW, "/b")], {}),  # two visits
        ([(0, PAGEVIEW, "/a"), (GAP_MS, ENGAGEMENT, "/a")], {"/a": (GAP_MS, 1)}),
        ([(0, PAGEVIEW, "/a"), (GAP_MS + 1, ENGAGEMENT, "/a")], {}),
    ],
)
@pytest.mark.parametrize("arrival", ["in order", "reversed"])
def test_time_on_page_runs_from_a_pageview_to_the_next_event_of_the_visit(
    events: list[tuple[int, str, str]], time_on_page: dict[str, tuple[int, int]], arrival: str
) -> None:
    ordered = [event(T0 + offset, name=name, page=page) for offset, name, page in events]

    deltas = folded(ordered if arrival == "in order" else ordered[::-1])

    for gran, bucket in ((DAY, TODAY), (MONTH, "2026-03")):
        summed = by_value(deltas, gran, PAGE, bucket, TIME_ON_PAGE_MS)
        counted = by_value(deltas, gran, PAGE, bucket, TIME_ON_PAGE_N)
        assert {page: (summed[page], counted[page]) for page in counted} == time_on_page
        assert summed.keys() <= counted.keys()


def test_time_on_page_counts_in_the_day_of_the_pageview() -> None:
    deltas = folded(
        [
            event(ms("2026-03-28T23:59:00+00:00"), page="/a"),
            event(ms("2026-03-29T00:01:00+00:00"), page="/b"),
        ]
    )

    assert by_value(deltas, DAY, PAGE, "2026-03-28", TIME_ON_PAGE_MS) == {"/a": 2 * MINUTE_MS}
    assert by_value(deltas, DAY, PAGE, TODAY, TIME_ON_PAGE_MS) == {}


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

    assert totals(deltas, DAY, EVENTS) == {TODAY: 4}
    assert totals(deltas, DAY, PAGEVIEWS) == {TODAY: 3}
    for gran, bucket in ((DAY, TODAY), (MONTH, "2026-03")):
        assert by_value(deltas, gran, PAGE, bucket, PAGEVIEWS) == {"/a": 2, "/b": 1}
        assert by_value(deltas, gran, PAGE, bucket, VISITORS) == {"/a": 1, "/b": 1}
        assert by_value(deltas, gran, NAME, bucket, EVENTS) == {"Signup": 1}
        assert by_value(deltas, gran, NAME, bucket, VISITORS) == {"Signup": 1}


def test_hostname_name_and_prop_counts() -> None:
    events = [
        at("10:00", page="/a", hostname="example.com"),
        at("10:01", page="/b", hostname="blog.example.com"),
        at("10:02", name="Signup", hostname="example.com", props={"plan": "pro"}),
        at("10:03", name="Signup", hostname="example.com", props={"plan": "free", "trial": "y"}),
        at("10:04", name="Outbound Link: Click", interactive=False, props={"url": "https://x.org"}),
        # engagement counts in no dimension, whatever it carries
        at("10:05", name=ENGAGEMENT, hostname="other.example.com", props={"plan": "x"}),
    ]

    deltas = folded(events)

    for gran, bucket in ((DAY, TODAY), (MONTH, "2026-03")):
        assert deltas[(gran, HOSTNAME, bucket)] == {
            "events|example.com": 3,
            "pageviews|example.com": 1,
            "visitors|example.com": 1,
            "events|blog.example.com": 1,
            "pageviews|blog.example.com": 1,
            "visitors|blog.example.com": 1,
        }
        assert deltas[(gran, NAME, bucket)] == {
            "events|Signup": 2,
            "visitors|Signup": 1,
            "events|Outbound Link: Click": 1,
            "visitors|Outbound Link: Click": 1,
        }
        # a prop value has its events and exact unique visitors; pageview props their pageviews
        assert deltas[(gran, "prop:plan", bucket)] == {
            "events|pro": 1,
            "visitors|pro": 1,
            "events|free": 1,
            "visitors|free": 1,
        }
        assert deltas[(gran, "prop:trial", bucket)] == {"events|y": 1, "visitors|y": 1}
        assert deltas[(gran, "prop_keys", bucket)] == {
            "events|plan": 2,
            "events|trial": 1,
            "events|url": 1,
        }
        assert deltas[(gran, "prop:url", bucket)] == {
            "events|https://x.org": 1,
            "visitors|https://x.org": 1,
        }


def test_pageview_props_count_pageviews_and_do_not_become_session_dimensions() -> None:
    events = [
        at("10:00", page="/a", props={"author": "ann"}),
        at("10:01", page="/b", props={"author": "ann"}),
        at("10:02", page="/c", props={"author": "bob"}),
    ]

    deltas = folded(events)

    assert deltas[(DAY, "prop:author", TODAY)] == {
        "events|ann": 2,
        "pageviews|ann": 2,
        "visitors|ann": 1,
        "events|bob": 1,
        "pageviews|bob": 1,
        "visitors|bob": 1,
    }
    assert (DAY, "author", TODAY) not in deltas
    assert not any("ann" in attr for attr in deltas[(DAY, "source", TODAY)])


def test_each_granularity_carries_its_dimensions() -> None:
    events = [
        at("10:00", page="/a", hostname="example.com", utm_campaign="spring"),
        at("10:01", name="Signup", props={"plan": "pro"}),
        at("10:02", page="/b"),
    ]

    deltas = folded(events)

    dimensions = {gran: {dim for g, dim, _ in deltas if g is gran} for gran in Granularity}
    assert dimensions[MINUTE] == set()  # realtime's minutes: aggregator/minutes.py, no fold
    assert dimensions[HOUR] == {TOTALS}
    assert (
        dimensions[DAY]
        == dimensions[MONTH]
        == {
            TOTALS,
            PAGE,
            HOSTNAME,
            NAME,
            "prop:plan",
            "prop_keys",
            ENTRY_PAGE,
            EXIT_PAGE,
            "source",
            "utm_campaign",
        }
    )


@pytest.mark.parametrize(
    ("times", "hours", "days"),
    [
        (["10:00", "10:00", "10:00"], 1, 1),
        (["10:00", "10:01", "10:59"], 1, 1),
        (["10:00", "10:01", "11:30"], 2, 1),
        (["10:00", "14:00", "10:00", "14:00"], 2, 1),  # two sessions, still one visitor a day
    ],
)
def test_visitor_is_counted_once_per_hour_day_and_month_bucket(
    times: list[str], hours: int, days: int
) -> None:
    deltas = folded([at(t, event_id=f"e{i}") for i, t in enumerate(times)])

    for gran, buckets in ((HOUR, hours), (DAY, days), (MONTH, 1)):
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

    assert totals(deltas, DAY, VISITORS) == {"2026-03-28": 1, TODAY: 1}
    assert totals(deltas, HOUR, VISITORS) == {"2026-03-28T22": 1, "2026-03-28T23": 1}
    assert totals(deltas, MONTH, VISITORS) == {"2026-03": 1}


# ---- session dimensions --------------------------------------------------------------------------


@pytest.mark.parametrize("dimension", SESSION_DIMENSIONS)
def test_every_session_dimension_counts_visits_bounces_duration_pageviews_and_visitors(
    dimension: str,
) -> None:
    # A bounced visit: one pageview, then a non-interactive event carrying another value
    events = [
        at("10:00", page="/a", **{dimension: "x"}),
        at("10:01", name="Scroll", interactive=False, **{dimension: "y"}),
    ]

    deltas = folded(events)

    for gran, bucket in ((DAY, TODAY), (MONTH, "2026-03")):
        assert deltas[(gran, dimension, bucket)] == {
            "visits|x": 1,
            "bounces|x": 1,
            "duration_ms|x": MINUTE_MS,
            "pageviews|x": 1,
            "visitors|x": 1,
        }


def test_session_dimensions_come_from_the_first_event_even_when_it_arrives_last() -> None:
    # Given a visit seen so far from Twitter, with a campaign
    state, deltas = fold(
        VisitorState(),
        [
            at("10:05", page="/b", source="Twitter", utm_campaign="spring"),
            at("10:10", page="/c", source="Twitter"),
        ],
    )
    assert by_value(deltas, DAY, "source", TODAY, VISITS) == {"Twitter": 1}

    # When its real first event, from Google, arrives last
    step = empty_deltas()
    apply_event(state, at("10:00", page="/a", source="Google", country="DE"), step)
    add_into(deltas, step)

    # Then the visit, its duration, pageviews and visitor move from Twitter to Google
    assert prune(step)[(DAY, "source", TODAY)] == {
        "visits|Twitter": -1,
        "duration_ms|Twitter": -5 * MINUTE_MS,
        "pageviews|Twitter": -2,
        "visitors|Twitter": -1,
        "visits|Google": 1,
        "duration_ms|Google": 10 * MINUTE_MS,
        "pageviews|Google": 3,
        "visitors|Google": 1,
    }
    # And the campaign of the second event is no longer the visit's; the first event's country is
    final = prune(deltas)
    assert not any(dim == "utm_campaign" for _, dim, _ in final)
    for gran, bucket in ((DAY, TODAY), (MONTH, "2026-03")):
        assert final[(gran, "source", bucket)] == {
            "visits|Google": 1,
            "duration_ms|Google": 10 * MINUTE_MS,
            "pageviews|Google": 3,
            "visitors|Google": 1,
        }
        assert by_value(final, gran, "country", bucket, VISITS) == {"DE": 1}
        assert by_value(final, gran, "country", bucket, PAGEVIEWS) == {"DE": 3}


def test_session_dimension_visit_counts_in_its_start_day_and_pageviews_in_their_own() -> None:
    # A visit from Google crossing UTC midnight; its second event says Twitter
    deltas = folded(
        [
            event(ms("2026-03-28T23:50:00+00:00"), page="/a", source="Google"),
            event(ms("2026-03-29T00:10:00+00:00"), page="/b", source="Twitter"),
        ]
    )

    assert deltas[(DAY, "source", "2026-03-28")] == {
        "visits|Google": 1,
        "duration_ms|Google": 20 * MINUTE_MS,
        "pageviews|Google": 1,
        "visitors|Google": 1,
    }
    assert deltas[(DAY, "source", TODAY)] == {"pageviews|Google": 1}


# ---- entry and exit pages ------------------------------------------------------------------------


def test_entry_and_exit_pages_follow_event_time_not_arrival() -> None:
    state, deltas = fold(
        VisitorState(),
        [at("10:10", page="/middle"), at("10:20", page="/last"), at("10:00", page="/first")],
    )

    (session,) = state.sessions()
    assert [h.page for h in session.pageviews] == ["/first", "/middle", "/last"]
    assert (session.start, session.end) == (T0, T0 + 20 * MINUTE_MS)
    visit = {"visits": 1, "duration_ms": 20 * MINUTE_MS, "pageviews": 3, "visitors": 1}
    assert prune(deltas)[(DAY, ENTRY_PAGE, TODAY)] == {f"{k}|/first": v for k, v in visit.items()}
    assert prune(deltas)[(DAY, EXIT_PAGE, TODAY)] == {f"{k}|/last": v for k, v in visit.items()}


@pytest.mark.parametrize(
    ("events", "entries", "exits"),
    [
        (  # the first and last *pageview*, not the first and last event
            [
                at("10:00", name="Signup"),
                at("10:01", page="/a"),
                at("10:02", page="/b"),
                at("10:03", name="Signup"),
            ],
            {"/a": 1},
            {"/b": 1},
        ),
        ([at("10:00", name="Signup")], {}, {}),  # a visit without pageviews has neither
        ([at("10:00", page="/a"), at("11:00", page="/b")], {"/a": 1, "/b": 1}, {"/a": 1, "/b": 1}),
        (
            [at("10:00", page="/a"), at("10:10", page="/b"), at("10:20", page="/a")],
            {"/a": 1},
            {"/a": 1},
        ),
    ],
)
def test_entry_and_exit_page_of_each_visit(
    events: list[RawEvent], entries: dict[str, int], exits: dict[str, int]
) -> None:
    deltas = folded(events[::-1])

    assert by_value(deltas, DAY, ENTRY_PAGE, TODAY, VISITS) == entries
    assert by_value(deltas, DAY, EXIT_PAGE, TODAY, VISITS) == exits
    assert by_value(deltas, MONTH, ENTRY_PAGE, "2026-03", VISITS) == entries


# ---- month buckets -------------------------------------------------------------------------------


def test_session_crossing_a_month_boundary_in_berlin_is_a_visit_of_the_month_it_starts() -> None:
    # 23:50 on 31 March and 00:10 on 1 April in Berlin: both still 31 March in UTC
    first = event(ms("2026-03-31T23:50:00+02:00"), page="/a", tz="Europe/Berlin", source="Google")
    last = event(ms("2026-04-01T00:10:00+02:00"), page="/b", tz="Europe/Berlin")

    deltas = folded([last, first])

    # the visit and its duration in March, the views and visitors in their own local months
    assert totals(deltas, MONTH, VISITS) == {"2026-03": 1}
    assert totals(deltas, MONTH, DURATION_MS) == {"2026-03": 20 * MINUTE_MS}
    assert totals(deltas, MONTH, PAGEVIEWS) == {"2026-03": 1, "2026-04": 1}
    assert totals(deltas, MONTH, VISITORS) == {"2026-03": 1, "2026-04": 1}
    assert totals(deltas, DAY, PAGEVIEWS) == {"2026-03-31": 1, "2026-04-01": 1}
    assert totals(deltas, HOUR, PAGEVIEWS) == {"2026-03-31T21": 1, "2026-03-31T22": 1}  # UTC
    # dimensions by month
    assert deltas[(MONTH, PAGE, "2026-03")] == {
        "pageviews|/a": 1,
        "visitors|/a": 1,
        "top_ms|/a": 20 * MINUTE_MS,
        "top_n|/a": 1,
    }
    assert deltas[(MONTH, PAGE, "2026-04")] == {"pageviews|/b": 1, "visitors|/b": 1}
    assert by_value(deltas, MONTH, "source", "2026-03", VISITS) == {"Google": 1}
    assert deltas[(MONTH, "source", "2026-04")] == {"pageviews|Google": 1}
    assert by_value(deltas, MONTH, EXIT_PAGE, "2026-03", VISITS) == {"/b": 1}
    assert deltas[(MONTH, EXIT_PAGE, "2026-04")] == {"pageviews|/b": 1}

    # The same instants for a UTC site are one month
    utc = folded([replace(last, tz="UTC"), replace(first, tz="UTC")])
    assert totals(utc, MONTH, PAGEVIEWS) == {"2026-03": 2}


# ---- dedup ---------------------------------------------------------------------------------------


def test_an_event_already_in_the_state_is_skipped() -> None:
    # Given a visitor state holding two events
    first = at("10:00", page="/a", event_id="ev-1")
    state, _ = fold(VisitorState(), [first, at("10:01", name="Signup", event_id="ev-2")])
    assert state.has_event("ev-1") and state.has_event("ev-2")
    assert not state.has_event("ev-3")

    # When one is delivered again, as is or changed, and after a JSON round trip of the state
    restored = VisitorState.from_json(state.to_json(), version=3)
    for again, into in (
        (first, state),
        (replace(first, ts=first.ts + MINUTE_MS, page="/z"), state),
        (first, restored),
    ):
        deltas = empty_deltas()
        after = apply_event(into, again, deltas)

        # Then neither the state nor any counter moves
        assert after is into
        assert prune(deltas) == {}


def test_a_repeated_event_in_a_batch_counts_once() -> None:
    events = [at("10:00", page="/a"), at("10:01", name="Signup"), at("10:02", ENGAGEMENT)]

    assert folded([*events, *events[::-1], events[0]]) == folded(events)


# ---- open sessions -------------------------------------------------------------------------------


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
        [at("10:00", name=ENGAGEMENT)],
        [
            at("10:00", page="/a", hostname="example.com", source="Google", country="DE"),
            at("10:05", name=ENGAGEMENT, page="/a"),
            at("10:10", name="Signup", props={"plan": "pro"}, utm_campaign="spring"),
        ],
    ],
)
def test_visitor_state_survives_a_json_round_trip(events: list[RawEvent]) -> None:
    # Given a visitor state after some events
    state, _ = fold(VisitorState(), events)

    # When it is stored and read back
    restored = VisitorState.from_json(state.to_json(), version=7)

    # Then it is the same state, at the stored version, and folds on identically
    assert restored == replace(state, version=7)
    assert restored.sessions() == state.sessions()
    more = [at("10:20", page="/z", source="Twitter"), at("11:50"), at("11:55", ENGAGEMENT)]
    assert prune(fold(restored, more)[1]) == prune(fold(state, more)[1])
    assert fold(restored, more)[0] == replace(fold(state, more)[0], version=7)


def test_scroll_depth_is_each_visitors_deepest_scroll_per_page() -> None:
    events = [
        at("10:00", page="/a"),
        at("10:01", name=ENGAGEMENT, page="/a", scroll_depth=40),
        at("10:02", page="/a"),
        at("10:03", name=ENGAGEMENT, page="/a", scroll_depth=90),
        at("10:04", name=ENGAGEMENT, page="/a", scroll_depth=60),
        at("10:05", page="/b"),
        at("10:06", name=ENGAGEMENT, page="/b", scroll_depth=250),  # clamped to 100
    ]

    deltas = folded(events)

    cell = deltas[(DAY, PAGE, TODAY)]
    assert {k: v for k, v in cell.items() if k.startswith("sd_")} == {
        "sd_sum|/a": 90,
        "sd_n|/a": 1,
        "sd_sum|/b": 100,
        "sd_n|/b": 1,
    }
