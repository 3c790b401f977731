"""Generated traffic and Lambda-style fault schedules, shared by the property tests and the bench.

Traffic goes through the real ingest handler (with a controlled clock), the stream records through
the real aggregator handler, under a schedule of what Lambda may do: retry a batch, bisect it,
invoke twice, crash before or after a commit, throttle a transaction, reorder records across
shards, or carry a malformed record. Afterwards the aggregates table must equal the oracle.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from aggregator.minutes import MinuteStore, WriteOutcome
from aggregator.store import AggregateStore, CommitOutcome
from core.events import RawEvent
from core.keys import (
    EVENT_IDS,
    PENDING,
    TOTALS,
    VISITOR_IDS,
    Granularity,
    full_attr,
    item_counters,
    packed_cells,
    parse_counter_pk,
    parse_counter_sk,
)
from local import tables
from tests import oracle

UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
PAGES = ("/", "/pricing", "/blog", "/blog/a")
REFERRERS = (None, "https://www.google.com/", "https://news.ycombinator.com/item")
GAPS_S = (1, 20, 300, 1799, 1801, 3600, 7200)
FAULTS = (
    "none",
    "retry",
    "bisect",
    "duplicate",
    "crash_after",
    "crash_before",
    "throttle",
    "reorder",
    "malformed",
)


@dataclass(frozen=True)
class Step:
    visitor: int
    gap_s: int
    kind: str  # pageview | custom | quiet (non-interactive custom) | engagement | bot
    page: str
    referrer: str | None = None
    utm: bool = False
    prop: str | None = None


@dataclass
class Traffic:
    start: datetime
    steps: list[Step]
    site: str = "prop.example"
    tz: str = "UTC"

    @classmethod
    def random(
        cls, rnd: random.Random, events: int, visitors: int, start: datetime, tz: str = "UTC"
    ) -> Traffic:
        steps = [
            Step(
                visitor=rnd.randrange(visitors),
                gap_s=rnd.choice(GAPS_S),
                kind=rnd.choices(
                    ("pageview", "custom", "quiet", "engagement", "bot"), (10, 2, 1, 2, 1)
                )[0],
                page=rnd.choice(PAGES),
                referrer=rnd.choice(REFERRERS),
                utm=rnd.random() < 0.2,
                prop=rnd.choice((None, "free", "pro")),
            )
            for _ in range(events)
        ]
        return cls(start, steps, tz=tz)

    def payloads(self) -> Iterator[tuple[datetime, dict[str, Any], str, str]]:
        """(receive time, body, ip, user agent) per request; times strictly increase."""
        clocks: dict[int, datetime] = {}
        now = self.start
        for step in self.steps:
            # Each visitor has its own timeline; the global clock only moves forward.
            seen = step.visitor in clocks
            visitor_time = clocks.get(step.visitor, self.start) + timedelta(seconds=step.gap_s)
            now = max(now + timedelta(milliseconds=1), visitor_time)
            clocks[step.visitor] = now
            query = "?utm_source=news&utm_campaign=launch" if step.utm else ""
            body: dict[str, Any] = {
                "u": f"https://{self.site}{step.page}{query}",
                "d": self.site,
                # no referrer on a later step: a link within the site (no arrival, no source)
                "r": step.referrer or (f"https://{self.site}/" if seen else None),
            }
            if step.kind in ("pageview", "bot"):
                body["n"] = "pageview"
            elif step.kind == "engagement":
                body.update(
                    n="engagement", sd=(step.visitor * 37 + len(step.page) * 13) % 101, e=3000
                )
            else:
                body.update(n="Signup", i=step.kind == "custom")
                if step.prop:
                    body["p"] = {"plan": step.prop}
            ua = BOT_UA if step.kind == "bot" else UAS[step.visitor % len(UAS)]
            yield now, body, f"198.51.100.{step.visitor + 1}", ua


@dataclass
class Schedule:
    """How the stream is delivered: batch sizes and one fault per batch."""

    batches: list[tuple[int, str]]
    seed: int = 0

    @classmethod
    def random(cls, rnd: random.Random, records: int) -> Schedule:
        batches = []
        left = records
        while left > 0:
            size = min(left, rnd.choice((1, 2, 3, 5, 8, 13, 40)))
            batches.append((size, rnd.choice(FAULTS)))
            left -= size
        return cls(batches, seed=rnd.randrange(1 << 30))


@dataclass
class FaultyStore:
    """Wraps AggregateStore.commit and MinuteStore.write to crash or throttle on demand."""

    crash_after: int = 0
    crash_before: int = 0
    throttle: int = 0
    log: list[str] = field(default_factory=list)

    @contextmanager
    def installed(self) -> Iterator[None]:
        """The fold's transactions and the minutes' writes fail alike: the next write crashes
        before it, is throttled, or crashes after it succeeded."""
        commit, write = AggregateStore.commit, MinuteStore.write
        AggregateStore.commit = self._faulty(  # type: ignore[method-assign]
            commit,
            CommitOutcome(False, retryable=True, reason="ThrottlingError"),
            lambda outcome: outcome.committed,
        )
        MinuteStore.write = self._faulty(  # type: ignore[method-assign]
            write,
            WriteOutcome(False, retryable=True, reason="ThrottlingError"),
            lambda outcome: outcome.written,
        )
        try:
            yield
        finally:
            AggregateStore.commit = commit  # type: ignore[method-assign]
            MinuteStore.write = write  # type: ignore[method-assign]

    def _faulty(self, original: Any, throttled: Any, succeeded: Any) -> Any:
        def write(store: Any, *args: Any) -> Any:
            if self.crash_before:
                self.crash_before -= 1
                raise Crash("crashed before a write")
            if self.throttle:
                self.throttle -= 1
                return throttled
            outcome = original(store, *args)
            if self.crash_after and succeeded(outcome):
                self.crash_after -= 1
                raise Crash("crashed after a write")
            return outcome

        return write


class Crash(RuntimeError):
    """The invocation died (timeout, out of memory)."""


def malformed_record(template: dict[str, Any]) -> dict[str, Any]:
    record = json.loads(json.dumps(template))
    record["dynamodb"]["NewImage"] = {"pk": {"S": "EV#broken"}, "ts": {"S": "not-a-number"}}
    record["dynamodb"]["SequenceNumber"] = "0" + record["dynamodb"]["SequenceNumber"]
    return record


def arm(
    fault: str, batch: list[dict[str, Any]], faults: FaultyStore, rnd: random.Random
) -> list[dict[str, Any]]:
    """Set up one batch's fault; returns the batch as Lambda will deliver it."""
    if fault == "reorder":
        batch = batch[:]
        rnd.shuffle(batch)  # records of different shards arrive in any order
    elif fault == "malformed":
        middle = len(batch) // 2
        batch = [*batch[:middle], malformed_record(batch[0]), *batch[middle:]]
    elif fault == "crash_after":
        faults.crash_after = 1
    elif fault == "crash_before":
        faults.crash_before = 1
    elif fault == "throttle":
        faults.throttle = rnd.choice((1, 3, 8))
    return batch


def deliver(
    invoke: Any, records: list[dict[str, Any]], schedule: Schedule, faults: FaultyStore
) -> int:
    """Deliver every record at least once under the schedule; returns the number of invocations."""
    rnd = random.Random(schedule.seed)
    invocations = 0

    def until_done(batch: list[dict[str, Any]]) -> None:
        nonlocal invocations
        pending = batch
        for _ in range(50):
            invocations += 1
            try:
                response = invoke({"Records": pending})
            except Crash:
                continue  # Lambda retries the whole batch
            failures = response.get("batchItemFailures") or []
            if not failures:
                return
            sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in pending]
            pending = pending[sequence_numbers.index(failures[0]["itemIdentifier"]) :]
        raise AssertionError("batch never completed")

    position = 0
    delivered: list[list[dict[str, Any]]] = []
    for size, fault in schedule.batches:
        batch = arm(fault, records[position : position + size], faults, rnd)
        position += size
        if fault == "bisect":
            half = len(batch) // 2
            until_done(batch[:half] or batch)
            until_done(batch[half:] or batch)
        until_done(batch)
        if fault in ("retry", "duplicate"):
            until_done(batch)
        delivered.append(batch)
        faults.crash_after = faults.crash_before = faults.throttle = 0
    if delivered and rnd.random() < 0.5:
        until_done(rnd.choice(delivered))  # a late redelivery of an old batch
    return invocations


def stored_events(client: Any, names: dict[str, str]) -> list[RawEvent]:
    events = []
    for item in tables.scan_all(client, names["events"]):
        record = DynamoDBRecord({"dynamodb": {"NewImage": item}})
        assert record.dynamodb is not None and record.dynamodb.new_image is not None
        events.append(RawEvent.from_image(record.dynamodb.new_image))
    return events


def _counts(item: dict[str, Any]) -> dict[str, int]:
    """An item's non-zero counters under their full names (stored with a code, or before 0013
    in full)."""
    return {name: count for name, count in item_counters(item).items() if count}


def _add(counters: oracle.Counters, cell: oracle.Cell, attrs: dict[str, int]) -> None:
    if attrs:
        summed = counters.setdefault(cell, {})
        for name, value in attrs.items():
            summed[name] = summed.get(name, 0) + value


def stored_counters(client: Any, names: dict[str, str]) -> oracle.Counters:
    """The aggregates table as oracle cells: shards summed, as readers do; a minute's visitor
    sets as counts (`visitors`, `arrivals|<source>`), and `current` in the minute where each
    visitor was seen last."""
    counters: oracle.Counters = {}
    sets: dict[tuple[oracle.Cell, str], set[bytes]] = {}
    for item in tables.scan_all(client, names["aggregates"]):
        if not item["pk"]["S"].startswith("C#"):
            continue
        site, gran, dim = parse_counter_pk(item["pk"]["S"])
        bucket = parse_counter_sk(item["sk"]["S"])
        if dim == PENDING:  # a slot no fold took yet: every dimension's counts at once
            for dimension, packed in packed_cells(item).items():
                _add(counters, (site, gran, dimension, bucket), packed)
            continue
        cell = (site, gran, dim, bucket)
        for name, value in item.items():
            if "BS" in value and name != EVENT_IDS:
                sets.setdefault((cell, full_attr(name)), set()).update(
                    bytes(m) for m in value["BS"]
                )
        _add(counters, cell, _counts(item))
    last_seen: dict[tuple[str, bytes], str] = {}
    for (cell, name), members in sets.items():
        counters.setdefault(cell, {})["visitors" if name == VISITOR_IDS else name] = len(members)
        if name == VISITOR_IDS:
            for member in members:
                key = (cell[0], member)
                last_seen[key] = max(last_seen.get(key, cell[3]), cell[3])
    for (site, _), minute in last_seen.items():
        cell = (site, Granularity.MINUTE, TOTALS, minute)
        counters[cell]["current"] = counters[cell].get("current", 0) + 1
    return counters


def mismatches(expected: oracle.Counters, actual: oracle.Counters) -> list[str]:
    actual = {cell: {a: v for a, v in attrs.items() if v} for cell, attrs in actual.items()}
    problems = []
    for cell in sorted(set(expected) | set(actual), key=str):
        want, got = expected.get(cell, {}), actual.get(cell, {})
        for attr in sorted(set(want) | set(got)):
            if want.get(attr, 0) != got.get(attr, 0):
                problems.append(
                    f"{cell} {attr}: oracle {want.get(attr, 0)}, store {got.get(attr, 0)}"
                )
    return problems
