"""The oracle itself (tests/oracle.py), pinned to hand-computed counters, so that the property
"the fold equals the oracle" does not rest on trust: visitor attribution over midnight, dedup,
several visitors and sites, and agreement with the fold on the cases test_fold.py pins by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.events import ENGAGEMENT, PAGEVIEW, RawEvent
from core.keys import TOTALS, Granularity
from tests import oracle
from tests.unit.fold_helpers import GAP_MS, MINUTE_MS, SITE, event, folded, ms, oracle_cells

DAY, MONTH = Granularity.DAY, Granularity.MONTH
BEFORE_MIDNIGHT = ms("2026-03-28T23:50:00+00:00")


def visitor(e: RawEvent, visitor_id: str, previous: str | None = None) -> RawEvent:
    return replace(e, visitor_id=visitor_id, previous_visitor_id=previous)


def day_totals(events: list[RawEvent], metric: str) -> dict[str, int]:
    return {
        bucket: attrs[metric]
        for (_, gran, dim, bucket), attrs in oracle.compute(events).items()
        if gran is DAY and dim == TOTALS and metric in attrs
    }


@pytest.mark.parametrize(
    ("after", "engagement_between", "visits"),
    [
        (20 * MINUTE_MS, False, 1),  # yesterday's session is open: it continues
        (GAP_MS, False, 1),
        (GAP_MS + 1, False, 2),  # closed: today's id is a new visitor
        (GAP_MS + 1, True, 2),  # an engagement event does not keep a session open
    ],
)
def test_an_event_after_midnight_continues_yesterdays_open_session(
    after: int, engagement_between: bool, visits: int
) -> None:
    yesterday = [visitor(event(BEFORE_MIDNIGHT, page="/a"), "v1")]
    if engagement_between:
        yesterday.append(visitor(event(BEFORE_MIDNIGHT + 5 * MINUTE_MS, ENGAGEMENT), "v1"))
    today = visitor(event(BEFORE_MIDNIGHT + after, page="/b"), "v2", previous="v1")

    assert oracle.attribute_visitors([*yesterday, today])[today.event_id] == (
        "v1" if visits == 1 else "v2"
    )
    assert sum(day_totals([*yesterday, today], "visits").values()) == visits
    assert sum(day_totals([*yesterday, today], "bounces").values()) == 2 * visits - 2


def test_each_event_id_counts_once() -> None:
    first = event(BEFORE_MIDNIGHT, page="/a", event_id="same")

    assert oracle.compute([first, first, first]) == oracle.compute([first])
    assert oracle.compute([first, first])[(SITE, DAY, TOTALS, "2026-03-28")]["pageviews"] == 1


def test_visitors_are_unique_per_bucket_across_visitors_and_sites() -> None:
    events = [
        visitor(event(BEFORE_MIDNIGHT, page="/a", event_id="1"), "v1"),
        visitor(event(BEFORE_MIDNIGHT + MINUTE_MS, page="/a", event_id="2"), "v1"),
        visitor(event(BEFORE_MIDNIGHT + 2 * MINUTE_MS, page="/a", event_id="3"), "v2"),
        replace(event(BEFORE_MIDNIGHT, page="/a", event_id="4"), site="other.org"),
    ]

    counters = oracle.compute(events)

    assert counters[(SITE, DAY, TOTALS, "2026-03-28")]["visitors"] == 2
    assert counters[(SITE, DAY, "page", "2026-03-28")]["visitors|/a"] == 2
    assert counters[(SITE, DAY, "page", "2026-03-28")]["pageviews|/a"] == 3
    assert counters[("other.org", DAY, TOTALS, "2026-03-28")]["visitors"] == 1


def test_counters_hold_no_zeros() -> None:
    counters = oracle.compute([event(BEFORE_MIDNIGHT), event(BEFORE_MIDNIGHT + 1, "Signup")])

    assert all(attrs and all(attrs.values()) for attrs in counters.values())


# The hand-pinned cases of test_fold.py, where the oracle and the fold must agree exactly.
PINNED: dict[str, list[RawEvent]] = {
    "time on page ended by engagement": [
        event(BEFORE_MIDNIGHT, page="/a"),
        event(BEFORE_MIDNIGHT + 20_000, ENGAGEMENT, page="/a"),
        event(BEFORE_MIDNIGHT + MINUTE_MS, page="/b"),
        event(BEFORE_MIDNIGHT + 2 * MINUTE_MS, "Signup"),
    ],
    "first event of the session arrives last": [
        event(BEFORE_MIDNIGHT + 5 * MINUTE_MS, page="/b", source="Twitter", utm_campaign="x"),
        event(BEFORE_MIDNIGHT + 10 * MINUTE_MS, page="/c", source="Twitter"),
        event(BEFORE_MIDNIGHT, page="/a", source="Google", country="DE"),
    ],
    "month boundary in Berlin": [
        event(ms("2026-04-01T00:10:00+02:00"), page="/b", tz="Europe/Berlin"),
        event(ms("2026-03-31T23:50:00+02:00"), page="/a", tz="Europe/Berlin", source="Google"),
    ],
    "hostname, name and props": [
        event(BEFORE_MIDNIGHT, page="/a", hostname="example.com"),
        event(BEFORE_MIDNIGHT + 1, "Signup", hostname="blog.example.com", props={"plan": "pro"}),
        event(BEFORE_MIDNIGHT + 2, "Scroll", interactive=False, props={"depth": "50"}),
        event(BEFORE_MIDNIGHT + 3, ENGAGEMENT, hostname="x.example.com", props={"plan": "x"}),
    ],
    "two visits over midnight": [
        event(BEFORE_MIDNIGHT, PAGEVIEW, page="/a"),
        event(BEFORE_MIDNIGHT + 20 * MINUTE_MS, PAGEVIEW, page="/b"),
        event(BEFORE_MIDNIGHT + 20 * MINUTE_MS + GAP_MS + 1, PAGEVIEW, page="/c"),
    ],
}


@pytest.mark.parametrize("events", PINNED.values(), ids=PINNED.keys())
def test_the_oracle_agrees_with_the_fold_on_the_pinned_cases(events: list[RawEvent]) -> None:
    assert oracle_cells(events) == folded(events)
