# ruff: noqa: F811  (the fixtures of test_alerts.py, imported by name, are parameters here)
"""The minute schedule's rules (decision 0037) and custom-event goals, end to end: the real ingest
and aggregator handlers write the counters (history included, sent at past moments), the real
schedule handler evaluates at an injected clock, the delivery function posts to a capture server.
Every moment is relative to T0, a fixed Monday: nothing depends on today's date."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest

from alerts.rules import ScheduleIndex
from tests.conftest import _clear_composition_roots
from tests.integration.test_alerts import (  # noqa: F401  (fixtures)
    SECRET,
    SITE,
    Capture,
    World,
    capture,
    world,
)

T0 = datetime(2031, 3, 3, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now.timestamp()


@pytest.fixture()
def clock(world: World) -> Clock:
    """One clock for ingest (event times), the stream's alert hook and the schedule."""
    from aggregator.handler import get_alerts
    from alerts import schedule

    moment = Clock(T0)
    alerts = get_alerts()
    assert alerts is not None
    alerts.clock = moment
    schedule.get_schedule.cache_clear()
    schedule.get_schedule().clock = moment
    schedule.get_schedule().alerts.clock = moment
    return moment


def send(world: World, at: datetime, body: dict[str, Any], ip: str) -> None:
    with mock.patch("ingest.handler.now", return_value=at):
        assert world.pipeline.send(body, ip=ip).status == 202
    world.pipeline.pump()


def pageview(world: World, at: datetime, n: int = 1, referrer: str = "", first: int = 0) -> None:
    for i in range(first, first + n):
        body = {"n": "pageview", "u": f"https://{SITE}/", "d": SITE}
        if referrer:
            body["r"] = f"https://{referrer}/"
        send(world, at, body, ip=f"198.51.100.{i % 250 + 1}")


def run_schedule(world: World, clock: Clock, at: datetime) -> dict[str, Any]:
    """One scheduled invocation at `at`, as EventBridge Scheduler makes it, then delivery."""
    from alerts.schedule import handler
    from local.runtime import LocalFunction

    clock.now = at
    event = {"source": "aws.scheduler", "detail-type": "Scheduled Event", "time": at.isoformat()}
    result: dict[str, Any] = LocalFunction("alert_schedule", handler).invoke(event)
    world.deliver()
    return result


def types(capture: Capture) -> list[str]:
    return [b["type"] for b in capture.bodies()]


def history(world: World, weeks: list[int], minute: int = 5) -> None:
    """Pageviews in this hour of the week (10:xx on Mondays) `weeks` weeks before T0."""
    for week in weeks:
        pageview(world, T0 - timedelta(weeks=week) + timedelta(minutes=minute), first=week)


# ---- drop ----------------------------------------------------------------------------------------


def test_a_drop_fires_once_in_a_usual_hour_and_resolves_once_when_traffic_returns(
    world: World, capture: Capture, clock: Clock
) -> None:
    # Given a site with pageviews at 10:xx on 3 of the last 4 Mondays, and a drop rule (15 min)
    history(world, [1, 2, 4])
    rule = world.rules.add(SITE, "drop", None, capture.url, SECRET, window_minutes=15)
    pageview(world, T0 + timedelta(minutes=5))
    # When the schedule runs while pageviews come, nothing
    run_schedule(world, clock, T0 + timedelta(minutes=10))
    assert capture.received == []
    # Then after 15 minutes without a pageview: one alert, signed, whatever the runs
    result = run_schedule(world, clock, T0 + timedelta(minutes=21))
    assert result["recorded"] == [f"{rule.id}.1.alert"]
    run_schedule(world, clock, T0 + timedelta(minutes=21))  # the same minute again (a retry)
    run_schedule(world, clock, T0 + timedelta(minutes=22))
    assert types(capture) == ["alert"] and capture.received[0]["valid"]
    body = capture.bodies()[0]
    assert body["value"] == 0 and "no pageviews for 15 minutes" in body["text"]
    # When pageviews return: resolved, once
    pageview(world, T0 + timedelta(minutes=30), first=40)
    run_schedule(world, clock, T0 + timedelta(minutes=31))
    run_schedule(world, clock, T0 + timedelta(minutes=32))
    assert types(capture) == ["alert", "resolved"]
    # And a second silence in the same usual hour, within the 6 h cool-down: nothing
    run_schedule(world, clock, T0 + timedelta(minutes=50))
    assert types(capture) == ["alert", "resolved"]


def test_a_drop_does_not_fire_in_an_hour_that_was_busy_in_only_2_of_4_weeks(
    world: World, capture: Capture, clock: Clock
) -> None:
    # Given pageviews at 10:xx on only 2 of the last 4 Mondays
    history(world, [1, 3])
    world.rules.add(SITE, "drop", None, capture.url, SECRET, window_minutes=15)
    # When an hour passes without a pageview
    for minute in (20, 40, 59):
        result = run_schedule(world, clock, T0 + timedelta(minutes=minute))
        # Then nothing fires, and nothing is read but the index, the rules and the usual hours
        assert result["recorded"] == [] and result["evaluated"] == 0
    assert capture.received == []


def test_two_schedule_runs_of_the_same_minute_at_once_send_one_alert(
    world: World, capture: Capture, clock: Clock
) -> None:
    from alerts.schedule import build_schedule

    # Given a silent usual hour and a drop rule, and two instances of the schedule
    history(world, [1, 2, 3, 4])
    world.rules.add(SITE, "drop", None, capture.url, SECRET, window_minutes=15)
    first, second = build_schedule(clock), build_schedule(clock)
    clock.now = T0 + timedelta(minutes=20)
    # When both read the rule in the same state before either writes (started together)
    reads = threading.Barrier(2)
    original = first.alerts.rules.list

    def together(store: Any) -> Callable[..., Any]:
        def listed(*args: Any, **kwargs: Any) -> Any:
            rules = original(*args, **kwargs)
            reads.wait(timeout=10)
            return rules

        return listed

    reports: list[Any] = []
    with (
        mock.patch.object(first.alerts.rules, "list", together(first)),
        mock.patch.object(second.alerts.rules, "list", together(second)),
    ):
        threads = [
            threading.Thread(target=lambda s=s: reports.append(s.run())) for s in (first, second)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    world.deliver()
    # Then one recorded the crossing and queued it; the other's write was refused
    assert sorted(len(r.recorded) for r in reports) == [0, 1]
    assert sum(len(r.queued) for r in reports) == 1
    assert types(capture) == ["alert"]


# ---- spikes and goals that the stream fired, resolved by the schedule ---------------------------


def test_the_schedule_resolves_a_spike_when_traffic_stops_entirely(
    world: World, capture: Capture, clock: Clock
) -> None:
    # Given a spike rule that fired on 3 current visitors
    world.rules.add(SITE, "spike", 2, capture.url, SECRET)
    pageview(world, T0, n=3)
    world.deliver()
    assert types(capture) == ["alert"]
    assert SITE in ScheduleIndex(world.pipeline.ddb, world.pipeline.names["meta"]).sites()
    # When no event comes at all (so no batch), the schedule sees 0 current visitors
    run_schedule(world, clock, T0 + timedelta(minutes=10))
    result = run_schedule(world, clock, T0 + timedelta(minutes=11))
    # Then resolved, once; and the next run takes the site off the index, its spike calm
    assert types(capture) == ["alert", "resolved"]
    assert result["unlisted"] == [SITE]
    assert ScheduleIndex(world.pipeline.ddb, world.pipeline.names["meta"]).sites() == {}


def test_a_custom_event_goal_fires_once_at_k_and_its_cool_down_holds(
    world: World, capture: Capture, clock: Clock
) -> None:
    # Given a goal rule: 3 "Signup" events within 5 minutes
    rule = world.rules.add(SITE, "goal", 3, capture.url, SECRET, goal="Signup", window_minutes=5)

    def signups(at: datetime, n: int, first: int) -> None:
        clock.now = at  # the stream's evaluation looks at its clock's minutes
        for i in range(first, first + n):
            body = {"n": "Signup", "u": f"https://{SITE}/join", "d": SITE}
            send(world, at, body, ip=f"203.0.113.{i + 1}")
        world.deliver()

    # When 2 come, then a pageview and other events (not counted), then a third Signup
    signups(T0, 2, 0)
    send(world, T0, {"n": "Download", "u": f"https://{SITE}/", "d": SITE}, ip="203.0.113.99")
    pageview(world, T0, first=60)
    world.deliver()
    assert capture.received == []
    signups(T0 + timedelta(minutes=1), 1, 2)
    # Then one alert at K = 3; a fourth adds nothing
    assert types(capture) == ["alert"] and capture.bodies()[0]["value"] == 3
    assert capture.bodies()[0]["id"] == f"{rule.id}.1.alert"
    signups(T0 + timedelta(minutes=2), 1, 3)
    assert types(capture) == ["alert"]
    # And when Signups stop, the schedule resolves it once the window has passed
    run_schedule(world, clock, T0 + timedelta(minutes=10))
    assert types(capture) == ["alert", "resolved"]
    # And 3 more within 6 hours cross again but are held back by the cool-down
    signups(T0 + timedelta(minutes=30), 3, 10)
    assert types(capture) == ["alert", "resolved"]


# ---- new top referrer ----------------------------------------------------------------------------


def known_sources(world: World) -> None:
    """The previous 28 days' sources: 10 of them, on days within the last 28."""
    for i in range(10):
        pageview(world, T0 - timedelta(days=2 + i), n=2, referrer=f"known{i}.example", first=i * 2)


def test_a_new_top_referrer_fires_once_and_a_known_one_does_not(
    world: World, capture: Capture, clock: Clock
) -> None:
    # Given 28 days of known sources and a new_referrer rule
    known_sources(world)
    rule = world.rules.add(SITE, "new_referrer", None, capture.url, SECRET)
    # When today's top referrer is a source of the previous 28 days' top 10: nothing
    pageview(world, T0 + timedelta(minutes=1), n=3, referrer="known3.example", first=100)
    run_schedule(world, clock, T0 + timedelta(minutes=5))
    assert capture.received == []
    # When a new source overtakes it
    pageview(world, T0 + timedelta(minutes=6), n=5, referrer="news.example", first=120)
    result = run_schedule(world, clock, T0 + timedelta(minutes=9))  # not a referrer minute
    assert result["evaluated"] == 0
    run_schedule(world, clock, T0 + timedelta(minutes=10))
    run_schedule(world, clock, T0 + timedelta(minutes=10))  # the same minute again
    run_schedule(world, clock, T0 + timedelta(minutes=15))
    # Then one alert naming it
    assert types(capture) == ["alert"]
    body = capture.bodies()[0]
    assert body["id"] == f"{rule.id}.1.alert" and body["value"] == 5
    assert "news.example" in body["text"]
    # When a known source takes the lead again: resolved; a second new one within 6 h: held back
    pageview(world, T0 + timedelta(minutes=16), n=4, referrer="known3.example", first=140)
    run_schedule(world, clock, T0 + timedelta(minutes=20))
    assert types(capture) == ["alert", "resolved"]
    pageview(world, T0 + timedelta(minutes=21), n=12, referrer="other.example", first=160)
    run_schedule(world, clock, T0 + timedelta(minutes=25))
    assert types(capture) == ["alert", "resolved"]


def test_a_site_without_scheduled_rules_costs_one_read_a_minute(
    world: World, capture: Capture, clock: Clock
) -> None:
    from alerts.schedule import get_schedule

    # Given a site with only a spike rule that is not firing
    world.rules.add(SITE, "spike", 50, capture.url, SECRET)
    schedule = get_schedule()
    calls: list[str] = []
    for client in {id(schedule.index._client): schedule.index._client}.values():
        for name in ("get_item", "query", "update_item", "batch_get_item"):
            original = getattr(client, name)

            def counted(*args: Any, _n: str = name, _o: Any = original, **kw: Any) -> Any:
                calls.append(_n)
                return _o(*args, **kw)

            mock.patch.object(client, name, counted).start()
    try:
        # When the schedule runs three minutes
        for minute in (1, 2, 3):
            run_schedule(world, clock, T0 + timedelta(minutes=minute))
    finally:
        mock.patch.stopall()
    # Then each run read the index once and nothing else
    assert calls == ["get_item"] * 3
    _clear_composition_roots()


# ---- the local stack runs it every minute ------------------------------------------------------


def test_the_local_stack_runs_the_schedule_on_its_own_ticker_without_retries(
    world: World, tmp_path: Any
) -> None:
    import time

    from alerts.schedule import get_schedule, handler
    from local.runtime import LocalFunction
    from local.stack import LocalStack, StackConfig

    get_schedule.cache_clear()  # built from this test's environment
    # Given a site listed on the schedule's index with no rule left (it is taken off at a run)
    index = ScheduleIndex(world.pipeline.ddb, world.pipeline.names["meta"])
    index.mark(SITE)
    config = StackConfig(data_dir=tmp_path / "stack", persist=False, alert_schedule_every=0.05)
    stack = LocalStack(config)
    stack.functions = {"alert_schedule": LocalFunction("alert_schedule", handler)}
    # When the stack's ticker runs
    ticker = threading.Thread(target=stack._alert_ticks, daemon=True)
    ticker.start()
    try:
        deadline = time.monotonic() + 10
        while index.sites() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stack._ticker_stop.set()
        ticker.join(timeout=10)
    # Then a run took the site off
    assert index.sites() == {}
    # And a failing run is tried once (the next minute's run looks again), and reports None
    calls: list[int] = []

    def failing(event: dict[str, Any], context: Any) -> Any:
        calls.append(1)
        raise RuntimeError("boom")

    stack.functions = {"alert_schedule": LocalFunction("alert_schedule", failing)}
    assert stack.run_alert_schedule(T0) is None and calls == [1]
