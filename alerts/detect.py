"""Alerts decided from the stream: after a realtime batch has written its minute counters, each
site of the batch that has rules compares the fresh numbers with them (decision 0036).

- A site's rules are read once and kept for CACHE_SECONDS by the warm instance, sites without
  rules too: a site without rules costs one Query per instance per CACHE_SECONDS, nothing per
  batch. Their state in the cache may be stale; a stale state only fails the conditional write,
  which reads the rules again.
- A site with rules costs one Query per minute partition (4) over the minutes its rules watch
  (the last 5 for a spike, a goal's window): eventually consistent, at least 0.5 read units each.
- A crossing is recorded with one conditional write on the rule's version (alerts/rules.py)
  before its message is queued; of the batches that see the same crossing (a redelivery, a
  retry, another shard's batch) exactly one records it. A recorded message that was not queued
  (the instance died in between, or SQS failed) stays `pending` on the rule, and the next
  evaluation after RESEND_SECONDS queues it again under the same key.
- Nothing here fails the batch: the counts are committed before it runs; an error is logged and
  the next batch of the site evaluates again.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.rules import (
    FIRED,
    RESOLVED,
    SPIKE,
    STREAMED,
    Rule,
    RuleStore,
    ScheduleIndex,
    State,
    StateMoved,
    message_key,
)
from alerts.text import describe
from core import keys
from core.aws import query_between
from core.observability import logger

log = logger("alerts")

CACHE_SECONDS = 60.0
MAX_CACHED_SITES = 1000
CURRENT_MINUTES = 5  # current visitors: the last 5 minutes, as the realtime view counts them
# A message recorded this long ago and still pending was not queued by whoever recorded it.
RESEND_SECONDS = 10


@dataclass(frozen=True)
class Numbers:
    current_visitors: int
    # goal rules' conversions over their windows, keyed "<minutes>|<counter>" (Rule.goal_counter)
    conversions: dict[str, int]

    def value(self, rule: Rule) -> int:
        if rule.kind == SPIKE:
            return self.current_visitors
        return self.conversions.get(f"{rule.window_minutes}|{rule.goal_counter}", 0)


@dataclass(frozen=True)
class Observation:
    """What an evaluation saw of a rule: its number, whether that is a crossing, and whether a
    firing rule is calm again. A spike or a goal is calm when not crossed; a drop only when
    pageviews come back (an hour that stops being usual does not resolve it)."""

    value: int
    crossed: bool
    calm: bool
    detail: str = ""


def observed(rule: Rule, value: int) -> Observation:
    crossed = rule.crossed(value)
    return Observation(value, crossed, not crossed)


def decide(rule: Rule, seen: int | Observation, now: int) -> State | None:
    """The state a rule moves to with this value (or observation), or None. Pure."""
    s = rule.state
    seen = seen if isinstance(seen, Observation) else observed(rule, seen)
    value = seen.value
    if s.pending:
        return None  # queue what was recorded first (resend)
    if seen.crossed:
        cooled = not s.last_alert_at or now >= s.last_alert_at + rule.cooldown_seconds
        if s.firing or not cooled:
            return None
        n = s.crossing + 1
        return replace(
            s,
            firing=True,
            crossing=n,
            last_alert_at=now,
            pending=message_key(rule.id, n, FIRED),
            pending_since=now,
            value=value,
            detail=seen.detail,
        )
    if s.firing and seen.calm:
        return replace(
            s,
            firing=False,
            pending=message_key(rule.id, s.crossing, RESOLVED),
            pending_since=now,
            value=value,
            detail=seen.detail,
        )
    return None


def message(rule: Rule, now_ms: int) -> dict[str, Any]:
    """What goes on the queue for a rule's pending key: no secret, no URL (the delivery function
    reads the rule's target, so a removed rule's messages go nowhere)."""
    kind = rule.state.pending.rsplit(".", 1)[-1]
    body: dict[str, Any] = {
        "key": rule.state.pending,
        "site": rule.site,
        "rule_id": rule.id,
        "type": kind,
        "value": rule.state.value,
        "detail": rule.state.detail or None,
        "detected_at": rule.state.pending_since,
        "queued_at_ms": now_ms,
        "rule": {
            "kind": rule.kind,
            "threshold": rule.threshold,
            "goal": rule.goal or None,
            "window_minutes": rule.window_minutes,
        },
    }
    body["text"] = describe(body)
    return body


def read_numbers(client: Any, table: str, site: str, rules: list[Rule], now: datetime) -> Numbers:
    """Current visitors and each goal rule's conversions (pageviews of a page, or custom events
    of a name), from the minute parts: one Query per minute partition over the minutes the rules
    watch. The legacy partition (before decision 0018) is not read: its parts left realtime's
    window long ago."""
    rules = [r for r in rules if r.kind in STREAMED]
    span = max([CURRENT_MINUTES] + [r.window_minutes for r in rules if r.kind != SPIKE])
    labels = keys.minute_labels_between(now - timedelta(minutes=span - 1), now)
    low, high = keys.counter_range(labels[0], labels[-1])
    visitors: set[bytes] = set()
    current = set(labels[-CURRENT_MINUTES:])
    wanted = {(r.window_minutes, r.goal_counter) for r in rules if r.kind != SPIKE}
    conversions: dict[str, int] = {}
    for pk in (keys.minute_pk(site, k) for k in range(keys.MINUTE_PARTITIONS)):
        for item in query_between(client, table, pk, low, high):
            label = keys.parse_counter_sk(item["sk"]["S"])
            if label in current:
                visitors.update(bytes(v) for v in item.get(keys.VISITOR_IDS, {}).get("BS", []))
            if not wanted:
                continue
            counters = keys.item_counters(item)
            for minutes, counter in wanted:
                if label in labels[-minutes:]:
                    name = f"{minutes}|{counter}"
                    conversions[name] = conversions.get(name, 0) + counters.get(counter, 0)
    return Numbers(len(visitors), conversions)


@dataclass
class Report:
    sites_with_rules: int = 0
    rules_read: int = 0  # Queries of rules (cache misses)
    evaluated: int = 0
    recorded: list[str] = field(default_factory=list)  # keys recorded by this instance
    queued: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Alerts:
    """The aggregator's hook. Thread-safe: the local stack's shard instances share one."""

    def __init__(
        self,
        meta: Any,
        meta_table: str,
        aggregates: Any,
        aggregates_table: str,
        sqs: Any,
        queue_url: str,
        clock: Callable[[], float] = time.time,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self.rules = RuleStore(meta, meta_table)
        self._aggregates, self._aggregates_table = aggregates, aggregates_table
        self._sqs, self._queue_url = sqs, queue_url
        self.clock = clock
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, list[Rule]]] = {}
        self._lock = threading.Lock()

    def _cached(self, site: str, report: Report) -> list[Rule]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(site)
            if hit and hit[0] > now:
                return hit[1]
        rules = self.rules.list(site)
        report.rules_read += 1
        self._keep(site, rules, now)
        return rules

    def _keep(self, site: str, rules: list[Rule], now: float | None = None) -> None:
        expires = (time.monotonic() if now is None else now) + self._cache_seconds
        with self._lock:
            self._cache.pop(site, None)
            self._cache[site] = (expires, rules)
            while len(self._cache) > MAX_CACHED_SITES:
                self._cache.pop(next(iter(self._cache)))

    def after_batch(self, sites: Iterable[str]) -> Report:
        report = Report()
        for site in sorted(set(sites)):
            try:
                rules = self._cached(site, report)
                if rules:
                    report.sites_with_rules += 1
                    self._evaluate(site, rules, report)
            except Exception as exc:  # alerts never fail a batch whose counts are committed
                report.errors.append(f"{site}: {exc!r}"[:300])
                log.warning("alert evaluation failed", extra={"site": site, "error": repr(exc)})
        return report

    def _evaluate(self, site: str, rules: list[Rule], report: Report) -> None:
        now_s = self.clock()
        now = int(now_s)
        numbers = read_numbers(
            self._aggregates,
            self._aggregates_table,
            site,
            rules,
            datetime.fromtimestamp(now_s, UTC),
        )
        kept: list[Rule] = []
        moved = False
        for rule in rules:
            if rule.kind not in STREAMED:  # the minute schedule's (alerts/schedule.py)
                kept.append(rule)
                continue
            report.evaluated += 1
            try:
                rule = self.step(rule, numbers.value(rule), now, report)
            except StateMoved:
                moved = True
            kept.append(rule)
        # A moved state: someone else recorded it; read the rules afresh next time.
        self._keep(site, self.rules.list(site, consistent=True) if moved else kept)

    def step(self, rule: Rule, seen: int | Observation, now: int, report: Report) -> Rule:
        """Record the move the rule makes (one conditional write), queue its message, clear it;
        StateMoved when another writer moved it first."""
        if rule.state.pending and now - rule.state.pending_since < RESEND_SECONDS:
            return rule  # its recorder is queueing it
        if not rule.state.pending:
            state = decide(rule, seen, now)
            if state is None:
                return rule
            rule = self.rules.record(rule, state)
            report.recorded.append(rule.state.pending)
            if state.firing and rule.kind in STREAMED:
                self._mark(rule)
            log.info(
                "alert recorded",
                extra={
                    "site": rule.site,
                    "rule": rule.id,
                    "key": rule.state.pending,
                    "value": rule.state.value,
                },
            )
        body = message(rule, int(self.clock() * 1000))
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps(body, separators=(",", ":")),
        )
        report.queued.append(rule.state.pending)
        return self.rules.record(rule, replace(rule.state, pending="", pending_since=0))

    def _mark(self, rule: Rule) -> None:
        """A firing spike or goal goes on the schedule's list, which resolves it if traffic
        stops entirely (no batch would come to do it). One write per crossing; a failure only
        leaves the resolving to the site's next batch."""
        try:
            ScheduleIndex(*self.rules.meta).mark(rule.site)
        except Exception as exc:
            log.warning("schedule index not marked", extra={"site": rule.site, "error": repr(exc)})
