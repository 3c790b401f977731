"""Realtime's minute counters, counted exactly once without visitor state (decision 0012).

A minute item is its own record of what it counted: beside its counters it holds 6-byte hashes
of the ids of the events folded into it. A batch reads the items its events go to, skips the
events found there, and writes each item once with a plain conditional update (one write unit
per KB, not a transaction's two per item), conditioned on the version it read. A redelivered
event is found in its item; a racing writer or a stale read fails the condition, and the item is
read again. Nothing here depends on a visitor's history, so no visitor state is kept.

What a minute item (pk `C#<site>#m#_#<part % 4>`, sk `<minute>[#<part>]`) holds:
    pageviews, events          counts
    pageviews|<page>           pageviews by page
    events|<name>              custom events by name (stored `e|<name>`: goal alerts, 0036)
    vids                       8-byte hashes of the visitors with an event in the minute:
                               visitors per minute, and current visitors as a union of five
    arrivals|<source>          the visitors who arrived from the source in the minute (a pageview
                               that is not a self-referral)
    eids                       6-byte hashes of the events counted here
    ver, n, b, ttl             version, bounded values (aggregator/bounded.py), expiry

Parts: an event's first part is a hash of its id modulo 4 (concurrent writers spread over four
items). A part takes at most MAX_EVENTS_PER_PART events; an event that finds its part full and
without it goes on to part + 4, + 8, … and takes the first part with room. Parts only fill, so a
redelivered event walks the same way and meets its hash before it meets room. Pages, sources and
event names share a part's 300 places; the rest count under "(other)", totals exact.

Hot partitions (decision 0018): a part's partition key is its number modulo 4, so a minute's four
walks write four partition keys, and a part holds at most 250 events (was 2,000 in one key): each
batch rewrites the parts it touches whole, and smaller parts are cheaper to rewrite. Parts written
before 0018 (the legacy key `C#<site>#m#_`, 2,000 events a part) are only read: an event walks its
legacy parts first (the same numbers) until one that is not full, so an event they counted is
still found there when it is redelivered. They are read from DynamoDB until they expire with the
minute TTL; a warm instance keeps what it read of them once no instance of the old code can still
be writing them, and does not read them at all for minutes that began after that (none exists).
"""

from __future__ import annotations

import hashlib
import threading
import time
import zlib
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from aggregator.bounded import KnownValues, admit
from aggregator.processor import MAX_ATTRIBUTES_PER_UPDATE, BatchResult, StreamItem
from aggregator.store import (
    batch_get,
    item_version,
    transient_errors,
    version_condition,
)
from core import keys
from core.events import RawEvent
from core.keys import BYTES_ATTR, COUNT_ATTR, OTHER, VERSION
from core.vocabulary import EVENTS, PAGEVIEWS

PARTS = keys.COUNTER_SHARDS
# 250 events: 1.5 KB of event hashes, at most 2 KB of visitor hashes and as much of arrivals, and
# up to 16 KB of page and source names (a flood of paths): a part stays far below 100 KB. Each batch
# rewrites the parts it touches whole, so a part's size is what an event's write costs (0018).
MAX_EVENTS_PER_PART = 250
LEGACY_MAX_EVENTS_PER_PART = 2000  # parts in the legacy key, written before decision 0018
FULL_PARTS_KEPT = 512  # ~10 MB of a warm instance's memory; a 100,000-event minute fills 400 parts
# Lambda's longest timeout: an instance this much younger than now runs the new code only, so the
# legacy parts it reads can no longer change (until then they are read again each time).
LEGACY_SETTLED_SECONDS = 900
# Ingest's clock (an event's minute) against this function's, with room to spare.
CLOCK_SKEW_SECONDS = 60

VISITOR_IDS, ARRIVALS, EVENT_IDS = keys.VISITOR_IDS, keys.ARRIVALS, keys.EVENT_IDS

PartKey = tuple[str, str]  # (pk, sk)


def event_hash(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=6).digest()


def visitor_hash(visitor_id: str) -> bytes:
    return hashlib.blake2b(visitor_id.encode(), digest_size=8).digest()


@dataclass(frozen=True)
class Contribution:
    """What one event adds to its minute."""

    item: StreamItem
    site: str
    minute: str
    first_part: int
    event: bytes
    visitor: bytes
    page: str | None  # pageviews only
    arrival: str | None  # the source of a pageview that is not a self-referral
    name: str | None = None  # a custom event's name (not pageviews)

    def key(self, level: int) -> PartKey:
        part = self.first_part + PARTS * level
        return keys.minute_pk(self.site, part), keys.counter_sk(self.minute, part)

    def legacy_key(self, level: int) -> PartKey:
        """The part of this walk's level in the layout before decision 0018 (read only)."""
        part = self.first_part + PARTS * level
        return keys.legacy_minute_pk(self.site), keys.counter_sk(self.minute, part)

    @property
    def value_names(self) -> list[str]:
        names = [keys.counter_attr(PAGEVIEWS, self.page)] if self.page is not None else []
        if self.arrival is not None:
            names.append(keys.counter_attr(ARRIVALS, self.arrival))
        if self.name is not None:
            names.append(keys.counter_attr(EVENTS, self.name))
        return names


def contribution(item: StreamItem) -> Contribution:
    """Raises for a record no tier can count (the rollup tier could not place it in its site's
    day either): it goes to the dead-letter queue in both."""
    event: RawEvent = item.event
    ZoneInfo(event.tz)
    pageview = event.is_pageview
    return Contribution(
        item=item,
        site=event.site,
        minute=keys.minute_label(event.ts),
        first_part=zlib.crc32(event.event_id.encode()) % PARTS,
        event=event_hash(event.event_id),
        visitor=visitor_hash(event.visitor_id),
        page=event.page if pageview else None,
        arrival=event.source if pageview and not event.internal else None,
        name=None if pageview else event.name,
    )


@dataclass
class Part:
    """A part item as last read or written."""

    version: int = 0
    events: set[bytes] = field(default_factory=set)
    known: KnownValues = field(default_factory=KnownValues)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Part:
        return cls(
            version=item_version(item),
            events=set(item.get(EVENT_IDS, {}).get("BS", [])),
            known=KnownValues.from_item(item),
        )

    def room(self) -> int:
        return MAX_EVENTS_PER_PART - len(self.events)


@dataclass(frozen=True)
class PartUpdate:
    counts: dict[str, int]
    sets: dict[str, frozenset[bytes]]
    admitted: tuple[str, ...]

    @property
    def added_bytes(self) -> int:
        return sum(len(v.encode()) for v in self.admitted)

    def applied_to(self, part: Part) -> Part:
        known = KnownValues(
            part.known.values | set(self.admitted),
            part.known.count + len(self.admitted),
            part.known.size + self.added_bytes,
        )
        return Part(part.version + 1, part.events | self.sets[EVENT_IDS], known)


def plan_update(part: Part, contributions: Iterable[Contribution]) -> PartUpdate:
    """The counters and sets that these events add to a part, values routed by the part's room."""
    contributions = list(contributions)
    names = sorted({name for c in contributions for name in c.value_names})
    admission = admit(part.known, dict.fromkeys(names, 1))
    fits = part.known.values | set(admission.admitted)

    def routed(name: str) -> str:
        metric, value = keys.parse_counter_attr(name)
        return name if value in fits else keys.counter_attr(metric, OTHER)

    counts: dict[str, int] = defaultdict(int)
    sets: dict[str, set[bytes]] = defaultdict(set)
    for c in contributions:
        counts[EVENTS] += 1
        sets[EVENT_IDS].add(c.event)
        sets[VISITOR_IDS].add(c.visitor)
        if c.page is not None:
            counts[PAGEVIEWS] += 1
            counts[routed(keys.counter_attr(PAGEVIEWS, c.page))] += 1
        if c.arrival is not None:
            sets[routed(keys.counter_attr(ARRIVALS, c.arrival))].add(c.visitor)
        if c.name is not None:
            counts[routed(keys.counter_attr(EVENTS, c.name))] += 1
    return PartUpdate(
        dict(counts), {k: frozenset(v) for k, v in sets.items()}, tuple(admission.admitted)
    )


@dataclass(frozen=True)
class WriteOutcome:
    written: bool
    retryable: bool = False  # throttled: back off; otherwise the item moved: read it again
    reason: str = ""


class MinuteStore:
    def __init__(
        self, client: Any, table: str, ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._clock = clock  # epoch seconds: the parts' TTL
        self._table = table
        self._ttl = ttl_seconds
        # Parts only fill, so a full part never changes: a warm instance keeps the last ones it
        # read, and a flood's later batches walk past them without reading them again.
        self._full: OrderedDict[PartKey, Part] = OrderedDict()
        # The local stack's instances of a tier are threads sharing this store (one per shard).
        self._lock = threading.Lock()
        self._settled_at = self._clock() + LEGACY_SETTLED_SECONDS
        # A minute that begins after that has no legacy part at all: old code wrote only the
        # minutes of events it processed, all received before it stopped, and it stopped by the
        # settling time (this instance starts after the deploy). Its legacy keys are not read.
        self._no_legacy_from = keys.minute_label(
            int((self._settled_at + CLOCK_SKEW_SECONDS) * 1000)
        )

    def read(self, wanted: Iterable[PartKey], consistent: bool) -> dict[PartKey, Part]:
        """The parts as stored (absent ones empty). Eventually consistent reads are enough at
        first: a stale read only fails the conditional write, and the retry reads consistently."""
        found: dict[PartKey, Part] = {}
        unread: list[PartKey] = []
        with self._lock:
            for key in wanted:
                if key in self._full:
                    self._full.move_to_end(key)
                    found[key] = self._full[key]
                else:
                    found[key] = Part()
                    if not self._never_written(key):
                        unread.append(key)
        for item in batch_get(self._client, self._table, unread, consistent):
            key = (item["pk"]["S"], item["sk"]["S"])
            found[key] = Part.from_item(item)
            if found[key].room() <= 0 and not _legacy(key):
                self._keep(key, found[key])
        if self._clock() >= self._settled_at:  # legacy parts, absent ones too, are final now
            for key in unread:
                if _legacy(key):
                    self._keep(key, found[key])
        return found

    def _never_written(self, key: PartKey) -> bool:
        """A legacy part of a minute that began after the old code stopped: none exists."""
        return _legacy(key) and keys.parse_counter_sk(key[1]) >= self._no_legacy_from

    def _keep(self, key: PartKey, part: Part) -> None:
        with self._lock:
            self._full[key] = part
            if len(self._full) > FULL_PARTS_KEPT:
                self._full.popitem(last=False)

    def write(
        self, key: PartKey, part: Part, update: PartUpdate, now: float | None = None
    ) -> WriteOutcome:
        now = self._clock() if now is None else now
        names: dict[str, str] = {"#ver": VERSION, "#ttl": "ttl"}
        values: dict[str, Any] = {
            ":one": {"N": "1"},
            ":ttl": {"N": str(int(now) + self._ttl)},
        }
        adds = ["#ver :one"]
        for i, (name, delta) in enumerate(sorted(update.counts.items())):
            names[f"#c{i}"], values[f":c{i}"] = keys.stored_attr(name), {"N": str(delta)}
            adds.append(f"#c{i} :c{i}")
        for i, (name, members) in enumerate(sorted(update.sets.items())):
            names[f"#s{i}"], values[f":s{i}"] = keys.stored_attr(name), {"BS": sorted(members)}
            adds.append(f"#s{i} :s{i}")
        if update.admitted:
            names["#n"], names["#b"] = COUNT_ATTR, BYTES_ATTR
            values[":n"] = {"N": str(len(update.admitted))}
            values[":b"] = {"N": str(update.added_bytes)}
            adds += ["#n :n", "#b :b"]
        condition = version_condition(part.version, values)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
                UpdateExpression="ADD " + ", ".join(adds) + " SET #ttl = if_not_exists(#ttl, :ttl)",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return WriteOutcome(False, reason="ConditionalCheckFailed")
        except transient_errors(self._client) as exc:
            return WriteOutcome(False, retryable=True, reason=type(exc).__name__)
        return WriteOutcome(True)


def _legacy(key: PartKey) -> bool:
    return keys.minute_partition(key[0]) is None


def route(
    pending: list[Contribution], parts: dict[PartKey, Part], read: Callable[[set[PartKey]], None]
) -> tuple[dict[PartKey, list[Contribution]], list[Contribution]]:
    """Each event's part: the first on its walk that holds it (a duplicate) or has room.
    The walk begins with the legacy parts (before decision 0018), which it only looks in: they
    end at the first that is not full, as the old walk stopped there. `read` loads parts not in
    `parts` yet. Returns (events by part, duplicates)."""
    routes: dict[PartKey, list[Contribution]] = defaultdict(list)
    duplicates: list[Contribution] = []
    seen: set[bytes] = set()

    def at(c: Contribution, legacy: bool, level: int) -> PartKey:
        return c.legacy_key(level) if legacy else c.key(level)

    walk = [(c, True, 0) for c in pending]
    while walk:
        missing = {at(c, legacy, level) for c, legacy, level in walk} - parts.keys()
        if missing:
            read(missing)
        further = []
        for c, legacy, level in walk:
            key = at(c, legacy, level)
            part = parts[key]
            if c.event in part.events or c.event in seen:
                duplicates.append(c)
            elif legacy:
                full = len(part.events) >= LEGACY_MAX_EVENTS_PER_PART
                further.append((c, True, level + 1) if full else (c, False, 0))
            elif part.room() > len(routes.get(key, ())):
                routes[key].append(c)
                seen.add(c.event)
            else:
                further.append((c, False, level + 1))
        walk = further
    return dict(routes), duplicates


def _fits_one_update(
    contributions: list[Contribution],
) -> tuple[list[Contribution], list[Contribution]]:
    """As many events as one update expression can carry (DynamoDB's 4 KB limit); the rest wait."""
    names: set[str] = set()
    for index, c in enumerate(contributions):
        grown = names | set(c.value_names)
        if index and len(grown) > MAX_ATTRIBUTES_PER_UPDATE - 8:
            return contributions[:index], contributions[index:]
        names = grown
    return contributions, []


def count_minutes(
    items: list[StreamItem],
    store: MinuteStore,
    max_attempts: int = 4,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchResult:
    """Count the batch into its minutes; on failure report the earliest record not counted."""
    result = BatchResult()
    kept = [item for item in items if not item.event.is_engagement]
    result.ignored = len(items) - len(kept)
    left_over: list[StreamItem] = []
    pending: list[Contribution] = []
    for item in sorted(kept, key=lambda i: (i.event.ts, i.event.event_id)):
        try:
            pending.append(contribution(item))
        except Exception as exc:  # a poison record: the rest still counts, it is reported
            result.errors.append(f"poison record {item.sequence_number}: {exc!r}")
            left_over.append(item)
    parts: dict[PartKey, Part] = {}
    consistent = False
    failures = 0

    def read(wanted: set[PartKey]) -> None:
        parts.update(store.read(wanted, consistent))

    while pending:
        if failures > max_attempts:
            result.errors.append(f"{len(pending)} events did not commit")
            left_over.extend(c.item for c in pending)
            break
        routes, duplicates = route(pending, parts, read)
        result.duplicates += len(duplicates)
        pending, progress, throttled = [], False, False
        for key, contributions in routes.items():
            now, later = _fits_one_update(contributions)
            pending.extend(later)
            update = plan_update(parts[key], now)
            outcome = store.write(key, parts[key], update)
            result.transactions += 1
            if outcome.written:
                parts[key] = update.applied_to(parts[key])
                result.counted += len(now)
                progress = True
                continue
            result.retries += 1
            pending.extend(now)
            parts.pop(key, None)  # read it again, consistently
            throttled |= outcome.retryable
        pending.sort(key=lambda c: (c.item.event.ts, c.item.event.event_id))
        if not progress and pending:
            failures += 1
            consistent = True
            if throttled:
                sleep(min(0.05 * 2**failures, 1.0))
        elif pending:
            consistent = True
    if left_over:
        earliest = min(left_over, key=lambda item: int(item.sequence_number))
        result.failed_sequence_number = earliest.sequence_number
    return result


def recounted_parts(events: Iterable[RawEvent]) -> dict[PartKey, dict[str, Any]]:
    """Minute part items recounted from raw events, filled in time order by the same walk (for
    `liveinsight rebuild`): whole items in DynamoDB's format, without key and expiry. Poison events
    are left out, as the aggregator leaves them."""
    contributions = []
    for event in sorted(events, key=lambda e: (e.ts, e.event_id)):
        if event.is_engagement:
            continue
        try:
            contributions.append(contribution(StreamItem("0", event)))
        except Exception:  # never counted by the aggregator either
            continue
    parts: dict[PartKey, Part] = {}
    routes, _ = route(
        contributions, parts, lambda wanted: parts.update({k: Part() for k in wanted})
    )
    items: dict[PartKey, dict[str, Any]] = {}
    for key, routed in routes.items():
        update = plan_update(Part(), routed)
        item: dict[str, Any] = {VERSION: {"N": "1"}}
        item.update({keys.stored_attr(name): {"N": str(n)} for name, n in update.counts.items()})
        item.update({keys.stored_attr(name): {"BS": sorted(m)} for name, m in update.sets.items()})
        item[COUNT_ATTR] = {"N": str(len(update.admitted))}
        item[BYTES_ATTR] = {"N": str(update.added_bytes)}
        items[key] = item
    return items
