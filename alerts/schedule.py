"""Lambda entry point and logic: the alert rules no event can trigger, every minute (decision 0037).

EventBridge Scheduler invokes `handler` once a minute (terraform/alerts.tf; the local stack's
ticker does the same). A run reads the schedule's index (alerts/rules.py `ScheduleIndex`: one
GetItem) and, for each site listed there, its rules, then evaluates:
- drop rules: no pageviews for M minutes in an hour of the week that usually has traffic
  (alerts/numbers.py); the usual hours are kept by the warm instance for the hour;
- new_referrer rules, every REFERRER_EVERY_MINUTES: today's top referrer (site time) is not in
  the previous 28 days' top 10 sources (kept by the warm instance for the day);
- spike and goal rules that fire (or hold a message not queued): the stream's numbers, so a
  spike resolves when traffic stops entirely, and a recorded message is queued again.
A site left with nothing to look at is taken off the index (conditioned on its token).

Exactly one alert per crossing: each move is the conditional write on the rule's version that
the stream's evaluation uses (alerts/detect.py `Alerts.step`). The same minute run twice (a
retried or duplicated invocation) or two runs at once compute the same move from the same
version, and only the first write succeeds. Nothing here depends on the wall clock but `clock`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from alerts.detect import Alerts, Numbers, Observation, Report, observed, read_numbers
from alerts.numbers import (
    local_day,
    pageviews_lately,
    source_visitors,
    top_referrer,
    top_sources,
    usual_hour,
)
from alerts.rules import DROP, REFERRER, STREAMED, Rule, ScheduleIndex, StateMoved
from core import settings
from core.aws import make_client
from core.observability import logger
from core.sites import SiteStore

log = logger("alert_schedule")

# The rollup tier writes the days' sources at most every 300 s (its batching window): looking
# more often than every 5 minutes would read the same numbers.
REFERRER_EVERY_MINUTES = 5
PREVIOUS_DAYS = 28
SITE_CACHE_SECONDS = 600.0  # a site's time zone, as the realtime tier's site cache keeps it
MAX_KEPT = 1000  # usual hours and previous top sources a warm instance keeps


@dataclass
class ScheduleReport(Report):
    sites_listed: int = 0
    unlisted: list[str] = field(default_factory=list)  # sites taken off the index


class Schedule:
    def __init__(
        self,
        meta: Any,
        meta_table: str,
        aggregates: Any,
        aggregates_table: str,
        sqs: Any,
        queue_url: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.alerts = Alerts(
            meta, meta_table, aggregates, aggregates_table, sqs, queue_url, clock, cache_seconds=0
        )
        self.index = ScheduleIndex(meta, meta_table)
        self.sites = SiteStore(meta, meta_table, cache_seconds=SITE_CACHE_SECONDS)
        self._aggregates, self._aggregates_table = aggregates, aggregates_table
        self.clock = clock
        self._usual: dict[tuple[str, str, str], bool] = {}
        self._previous: dict[tuple[str, str], tuple[str, ...]] = {}

    def run(self) -> ScheduleReport:
        report = ScheduleReport()
        listed = self.index.sites()
        report.sites_listed = len(listed)
        for site, token in sorted(listed.items()):
            try:
                self._site(site, token, report)
            except Exception as exc:  # one site's failure does not hold the others back
                report.errors.append(f"{site}: {exc!r}"[:300])
                log.warning("scheduled alert evaluation failed", extra={"site": site})
        return report

    def _site(self, site: str, token: str, report: ScheduleReport) -> None:
        every = self.alerts.rules.list(site)
        rules = [r for r in every if r.scheduled]
        found = self.sites.get(site) if rules else None
        if found is None:  # nothing to look at (or the site is gone, its rules with it)
            if self.index.unmark(site, token):
                report.unlisted.append(site)
            return
        report.sites_with_rules += 1
        now_s = self.clock()
        now = datetime.fromtimestamp(now_s, UTC)
        streamed = [r for r in every if r.kind in STREAMED]
        numbers: list[Numbers] = []  # read once, for the first firing spike or goal
        for rule in rules:
            seen = self._observe(rule, found.tz, now, streamed, numbers)
            if seen is None:
                continue
            report.evaluated += 1
            # another run (or the stream) moved it first: theirs stands
            with contextlib.suppress(StateMoved):
                self.alerts.step(rule, seen, int(now_s), report)

    def _observe(
        self, rule: Rule, tz: str, now: datetime, streamed: list[Rule], numbers: list[Numbers]
    ) -> Observation | None:
        """What the rule looks like now, or None when there is nothing to read this minute."""
        quiet = Observation(rule.state.value, crossed=False, calm=False)
        if rule.state.pending:
            return quiet  # only queue what was recorded (Alerts.step)
        if rule.kind in STREAMED:
            if not numbers:
                numbers.append(
                    read_numbers(self._aggregates, self._aggregates_table, rule.site, streamed, now)
                )
            return observed(rule, numbers[0].value(rule))
        if rule.kind == DROP:
            return self._drop(rule, tz, now)
        if rule.kind == REFERRER and now.minute % REFERRER_EVERY_MINUTES == 0:
            return self._referrer(rule, tz, now)
        return None

    def _drop(self, rule: Rule, tz: str, now: datetime) -> Observation | None:
        usual = self.usual(rule.site, tz, now)
        if not usual and not rule.state.firing:
            return None  # no read at all in an hour that is not usually busy
        pageviews = pageviews_lately(
            self._aggregates, self._aggregates_table, rule.site, rule.window_minutes, now
        )
        return Observation(pageviews, crossed=usual and pageviews == 0, calm=pageviews > 0)

    def usual(self, site: str, tz: str, now: datetime) -> bool:
        hour = now.replace(minute=0, second=0, microsecond=0).isoformat()
        key = (site, tz, hour)
        if key not in self._usual:
            got = usual_hour(self._aggregates, self._aggregates_table, site, tz, now)
            _keep(self._usual, key, got)
        return self._usual[key]

    def _referrer(self, rule: Rule, tz: str, now: datetime) -> Observation:
        today = local_day(tz, now)
        previous = self.previous_top(rule.site, tz, now)
        visitors = source_visitors(
            self._aggregates, self._aggregates_table, rule.site, today, today
        )
        top = top_referrer(visitors)
        if top is None:
            return Observation(0, crossed=False, calm=True)
        source, count = top
        # A site without a source in the previous days has nothing to be new against.
        new = bool(previous) and source not in previous and count >= rule.threshold
        return Observation(count, crossed=new, calm=not new, detail=source)

    def previous_top(self, site: str, tz: str, now: datetime) -> tuple[str, ...]:
        today = local_day(tz, now)
        key = (site, today.isoformat())
        if key not in self._previous:
            first, last = today - timedelta(days=PREVIOUS_DAYS), today - timedelta(days=1)
            visitors = source_visitors(self._aggregates, self._aggregates_table, site, first, last)
            _keep(self._previous, key, top_sources(visitors))
        return self._previous[key]


def _keep(cache: dict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    while len(cache) > MAX_KEPT:
        cache.pop(next(iter(cache)))


# ---- the Lambda adapter -----------------------------------------------------------------------


@lru_cache(maxsize=1)
def get_schedule() -> Schedule:
    return build_schedule()


def build_schedule(clock: Callable[[], float] = time.time) -> Schedule:
    """A schedule on the clients and tables the settings name (the handler's; tests add a clock)."""
    config = settings.load(settings.AlertSettings)
    if not config.aggregates_table:
        raise settings.SettingsError("LIVEINSIGHT_AGGREGATES_TABLE is required by the schedule")
    ddb = make_client("dynamodb")
    return Schedule(
        ddb,
        config.meta_table,
        ddb,
        config.aggregates_table,
        make_client("sqs"),
        config.alerts_queue_url,
        clock,
    )


@log.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A scheduled event (its time is not used: a late or repeated run looks at now)."""
    report = get_schedule().run()
    if report.recorded or report.errors:
        log.info(
            "alert schedule",
            extra={"recorded": report.recorded, "queued": report.queued, "errors": report.errors},
        )
    return {
        "sites": report.sites_listed,
        "evaluated": report.evaluated,
        "recorded": report.recorded,
        "queued": report.queued,
        "unlisted": report.unlisted,
        "errors": len(report.errors),
    }
