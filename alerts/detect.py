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

from alerts.rules import FIRED, RESOLVED, SPIKE, Rule, RuleStore, State, StateMoved, message_key
from core import keys
from core.aws import query_between
from core.observability import logger
from core.vocabulary import PAGEVIEWS

log = logger("alerts")

CACHE_SECONDS = 60.0
MAX_CACHED_SITES = 1000
CURRENT_MINUTES = 5  # current visitors: the last 5 minutes, as the realtime view counts them
# A message recorded this long ago and still pending was not queued by whoever recorded it.
RESEND_SECONDS = 10


@dataclass(frozen=True)
class Numbers:
    current_visitors: int
    pageviews: dict[str, int]  # by page, over each goal rule's window (keyed "<minutes>|<page>")

    def value(self, rule: Rule) -> int:
        if rule.kind == SPIKE:
            return self.current_visitors
        return self.pageviews.get(f"{rule.window_minutes}|{rule.goal_page}", 0)


def decide(rule: Rule, value: int, now: int) -> State | None:
    """The state a rule moves to with this value, or None. Pure."""
    s = rule.state
    if s.pending:
        return None  # queue what was recorded first (resend)
    if rule.crossed(value):
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
        )
    if s.firing:
        return replace(
            s,
            firing=False,
            pending=message_key(rule.id, s.crossing, RESOLVED),
            pending_since=now,
            value=value,
        )
    return None


def message(rule: Rule, now_ms: int) -> dict[str, Any]:
    """What goes on the queue for a rule's pending key: no secret, no URL (the delivery function
    reads the rule's target, so a removed rule's messages go nowhere)."""
    kind = rule.state.pending.rsplit(".", 1)[-1]
    return {
        "key": rule.state.pending,
        "site": rule.site,
        "rule_id": rule.id,
        "type": kind,
        "value": rule.state.value,
        "detected_at": rule.state.pending_since,
        "queued_at_ms": now_ms,
        "rule": {
            "kind": rule.kind,
            "threshold": rule.threshold,
            "goal": rule.goal or None,
            "window_minutes": rule.window_minutes,
        },
    }


def read_numbers(client: Any, table: str, site: str, rules: list[Rule], now: datetime) -> Numbers:
    """Current visitors and each goal rule's pageviews, from the minute parts: one Query per
    minute partition over the minutes the rules watch. The legacy partition (before decision
    0018) is not read: its parts left realtime's window long ago."""
    span = max([CURRENT_MINUTES] + [r.window_minutes for r in rules if r.kind != SPIKE])
    labels = keys.minute_labels_between(now - timedelta(minutes=span - 1), now)
    low, high = keys.counter_range(labels[0], labels[-1])
    visitors: set[bytes] = set()
    current = set(labels[-CURRENT_MINUTES:])
    wanted = {(r.window_minutes, r.goal_page) for r in rules if r.kind != SPIKE}
    pageviews: dict[str, int] = {}
    for pk in (keys.minute_pk(site, k) for k in range(keys.MINUTE_PARTITIONS)):
        for item in query_between(client, table, pk, low, high):
            label = keys.parse_counter_sk(item["sk"]["S"])
            if label in current:
                visitors.update(bytes(v) for v in item.get(keys.VISITOR_IDS, {}).get("BS", []))
            if not wanted:
                continue
            counters = keys.item_counters(item)
            for minutes, page in wanted:
                if label in labels[-minutes:]:
                    name = f"{minutes}|{page}"
                    got = counters.get(keys.counter_attr(PAGEVIEWS, page), 0)
                    pageviews[name] = pageviews.get(name, 0) + got
    return Numbers(len(visitors), pageviews)


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
            report.evaluated += 1
            try:
                rule = self._step(rule, numbers.value(rule), now, report)
            except StateMoved:
                moved = True
            kept.append(rule)
        # A moved state: someone else recorded it; read the rules afresh next time.
        self._keep(site, self.rules.list(site, consistent=True) if moved else kept)

    def _step(self, rule: Rule, value: int, now: int, report: Report) -> Rule:
        if rule.state.pending and now - rule.state.pending_since < RESEND_SECONDS:
            return rule  # its recorder is queueing it
        if not rule.state.pending:
            state = decide(rule, value, now)
            if state is None:
                return rule
            rule = self.rules.record(rule, state)
            report.recorded.append(rule.state.pending)
            log.info(
                "alert recorded",
                extra={
                    "site": rule.site,
                    "rule": rule.id,
                    "key": rule.state.pending,
                    "value": value,
                },
            )
        body = message(rule, int(self.clock() * 1000))
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps(body, separators=(",", ":")),
        )
        report.queued.append(rule.state.pending)
        return self.rules.record(rule, replace(rule.state, pending="", pending_since=0))
