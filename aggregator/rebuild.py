"""Recompute a site's aggregates for a time range from raw events: the events table's (the last
7 days) or the event archive's (any range it keeps, decision 0027).

A safety net (after a bug, or records that could not be replayed) and a way to add a dimension
to history. It reads the site's raw events from a day before the range (sessions that started
earlier) up to now (so session ends are right; from the archive, up to a day after the range, as
a session open at its end goes on at most that long in practice), folds them with the same code
as the aggregator (minutes: the same walk over parts, aggregator/minutes.py), and *overwrites*
every counter item whose bucket lies wholly inside the range. Running it twice writes the same
items: it is idempotent. Raw events expire after 7 days, so older ranges need the archive. From
the archive, minutes older than their TTL are neither written nor deleted (they expired), and
the last rollup window's events are not archived yet: rebuild ranges that ended minutes ago.
Visitor states are left as they are.

Prop keys follow the days' and months' key lists (decision 0017): a key a list holds counts under
its own name, a new one is admitted in time order while the list has room, and the lists of the
rebuilt buckets gain the keys admitted (never lose one, so instances that read them stay right).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aws_lambda_powertools.shared.dynamodb_deserializer import TypeDeserializer

from aggregator import prop_keys
from aggregator.bounded import fold_into
from aggregator.fold import (
    TOTAL_GRANULARITIES,
    Deltas,
    VisitorState,
    add_into,
    apply_event,
    empty_deltas,
    prune,
)
from aggregator.minutes import recounted_parts
from aggregator.processor import next_segment, visitor_key_for
from aggregator.prop_keys import OTHER_DIMENSION, KeyList, route
from aggregator.store import (
    SLOT_GRANULARITIES,
    Bucket,
    VisitorKey,
    key_list_update,
    read_key_lists,
)
from core import keys
from core.aws import paged
from core.events import RawEvent
from core.keys import Granularity
from core.vocabulary import PROP_PREFIX, SESSION_DIMENSIONS

FIXED_DIMENSIONS = (
    keys.TOTALS,
    "page",
    "entry_page",
    "exit_page",
    "hostname",
    "name",
    *SESSION_DIMENSIONS,
)
LOOKBACK = timedelta(days=1)

if TYPE_CHECKING:
    from archive.store import ArchiveStore


@dataclass
class RebuildReport:
    events_read: int = 0
    items_written: int = 0
    items_deleted: int = 0
    poison: list[str] = field(default_factory=list)


def bucket_span(gran: Granularity, label: str, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of a bucket label, as aware datetimes."""
    if gran is Granularity.MINUTE:
        start = datetime.strptime(label, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
        return start, start + timedelta(minutes=1)
    if gran is Granularity.HOUR:
        start = datetime.strptime(label, "%Y-%m-%dT%H").replace(tzinfo=UTC)
        return start, start + timedelta(hours=1)
    zone = ZoneInfo(tz)
    if gran is Granularity.DAY:
        day = datetime.strptime(label, "%Y-%m-%d")
        following = day + timedelta(days=1)
        return day.replace(tzinfo=zone), following.replace(tzinfo=zone)
    month = datetime.strptime(label, "%Y-%m")
    following = (month + timedelta(days=32)).replace(day=1)
    return month.replace(tzinfo=zone), following.replace(tzinfo=zone)


def read_events(
    client: Any, events_table: str, site: str, start: datetime, end: datetime
) -> Iterator[RawEvent]:
    """The site's raw events received in [start, end): a Scan of the events table (decision 0008:
    an index for this rare operation would cost a write unit on every event)."""
    deserializer = TypeDeserializer()
    items = paged(
        client.scan,
        TableName=events_table,
        FilterExpression="begins_with(pk, :site) AND #ts >= :start AND #ts < :end",
        ExpressionAttributeNames={"#ts": "ts"},
        ExpressionAttributeValues={
            ":site": {"S": keys.site_events_prefix(site)},
            ":start": {"N": str(int(start.timestamp() * 1000))},
            ":end": {"N": str(int(end.timestamp() * 1000))},
        },
    )
    for item in items:
        yield RawEvent.from_image({k: deserializer.deserialize(v) for k, v in item.items()})


def archived_events(
    store: ArchiveStore, site: str, start: datetime, end: datetime
) -> list[RawEvent]:
    """The site's archived events received in [start, end), each once. An object's day is the
    event's site-local day at ingest: a day on each side covers any time zone it was in."""
    from archive.parquet import read_events as read_parquet

    first = (start - timedelta(days=1)).astimezone(UTC).date().isoformat()
    last = (end + timedelta(days=1)).astimezone(UTC).date().isoformat()
    low, high = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    events = read_parquet(store.local_files(site, first, last))
    return [e for e in events if low <= e.ts < high]


def source_events(
    client: Any,
    events_table: str,
    archive: ArchiveStore | None,
    site: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[RawEvent]:
    """What a rebuild of [start, end) folds: from a day before it, to now (the table) or to a
    day after it (the archive)."""
    until = now + timedelta(hours=1)
    if archive is None:
        return list(read_events(client, events_table, site, start - LOOKBACK, until))
    return archived_events(archive, site, start - LOOKBACK, min(end + LOOKBACK, until))


def recount(
    events: list[RawEvent], key_list: Callable[[Bucket], KeyList] = lambda _: KeyList()
) -> tuple[Deltas, list[str], dict[Bucket, set[str]]]:
    """Fold events in time order, as the aggregator would have: absolute counters, the ids of
    poison events that cannot be folded (the aggregator never counted them either), and the prop
    keys admitted beyond `key_list`'s lists."""
    states: dict[VisitorKey, VisitorState] = {}
    deltas = empty_deltas()
    poison: list[str] = []
    chosen: dict[Bucket, set[str]] = {}
    for event in sorted(events, key=lambda e: (e.ts, e.event_id)):
        key = visitor_key_for(event, states)
        grown = next_segment(event, key, states)
        if grown is not None:  # the same item split as the aggregator's (a huge visitor-day)
            key, base_key, states[base_key] = grown
        event_deltas = empty_deltas()
        try:
            states[key] = apply_event(states.get(key, VisitorState()), event, event_deltas)
        except Exception:  # same rule as the aggregator: a poison record is never counted
            poison.append(event.event_id)
            continue
        event_deltas, admitted = route(event.site, prune(event_deltas), key_list, chosen)
        for bucket, new in admitted.items():
            chosen.setdefault(bucket, set()).update(new)
        add_into(deltas, event_deltas)
    return deltas, poison, chosen


class _StoredKeyLists:
    """The key lists a rebuild reads, each once, and the keys it adds to them."""

    def __init__(self, client: Any, table: str) -> None:
        self._client, self._table = client, table
        self._read: dict[Bucket, KeyList] = {}

    def get(self, bucket: Bucket) -> KeyList:
        if bucket not in self._read:
            limit = prop_keys.MAX_PROP_KEYS
            self._read.update(read_key_lists(self._client, self._table, {bucket}, limit))
        return self._read[bucket]

    def add(self, admitted: dict[Bucket, set[str]]) -> int:
        """Write the admitted keys, each list conditioned on the version read (a racing chunk
        fails the rebuild, to be run again); returns the items written."""
        for bucket, new in sorted(admitted.items()):
            update = key_list_update(self._table, bucket, self.get(bucket), frozenset(new))
            self._client.update_item(**update)
        return len(admitted)


def rebuild(
    client: Any,
    events_table: str,
    aggregates_table: str,
    site: str,
    tz: str,
    start: datetime,
    end: datetime,
    now: datetime,
    minute_ttl_seconds: int,
    archive: ArchiveStore | None = None,
) -> RebuildReport:
    """Rebuild from the events table, or from `archive` when one is given."""
    report = RebuildReport()
    events = source_events(client, events_table, archive, site, start, end, now)
    # From the archive, minutes older than their TTL are left alone: they expired.
    minutes_from = None if archive is None else now - timedelta(seconds=minute_ttl_seconds)
    report.events_read = len(events)
    lists = _StoredKeyLists(client, aggregates_table)
    deltas, report.poison, admitted = recount(events, lists.get)
    cells = prune(deltas)

    def inside(gran: Granularity, label: str) -> bool:
        first, last = bucket_span(gran, label, tz)
        expired = gran is Granularity.MINUTE and minutes_from is not None and first < minutes_from
        return not expired and start <= first and last <= end

    report.items_written += lists.add(
        {bucket: new for bucket, new in admitted.items() if inside(bucket[1], bucket[2])}
    )
    wanted: dict[tuple[str, str], dict[str, Any]] = {}
    for (gran, dimension, label), attrs in cells.items():
        if not inside(gran, label):
            continue
        pk = keys.counter_pk(site, gran, dimension)
        if gran in SLOT_GRANULARITIES:  # a base as a fold writes it: bounded, packed (0015)
            counters = {name: n for name, n in fold_into({}, attrs).items() if n}
            wanted[(pk, label)] = {keys.PACKED: {"B": keys.pack({dimension: counters})}}
        else:
            wanted[(pk, label)] = {
                keys.stored_attr(name): {"N": str(value)} for name, value in attrs.items()
            }
    expires = {"N": str(int(now.timestamp()) + minute_ttl_seconds)}
    for (pk, sk), attrs in recounted_parts(events).items():  # minutes: items of their own kind
        if inside(Granularity.MINUTE, keys.parse_counter_sk(sk)):
            wanted[(pk, sk)] = {**attrs, "ttl": expires}
    for (pk, sk), attrs in sorted(wanted.items()):
        client.put_item(
            TableName=aggregates_table, Item={"pk": {"S": pk}, "sk": {"S": sk}, **attrs}
        )
        report.items_written += 1
    # Items in the range that the raw events do not justify any more (a bug's leftovers, and the
    # other shards of a rebuilt bucket) go. Prop dimensions are known only from the raw events.
    # So do the slots no fold took yet (decision 0015): the rebuilt bases hold their counts, and
    # the items of keys the bound now refuses (written before it, decision 0017).
    sent = {PROP_PREFIX + key for event in events for key in event.props} | {OTHER_DIMENSION}
    dimensions = (
        set(FIXED_DIMENSIONS) | {keys.PENDING} | {dimension for _, dimension, _ in cells} | sent
    )
    for gran in (Granularity.MINUTE, *TOTAL_GRANULARITIES):  # minutes: the old layouts' items too
        for pk in _counter_pks(site, gran, dimensions):
            for existing in _existing(client, aggregates_table, pk):
                sk = existing["sk"]["S"]
                # Other shards of a rebuilt bucket go too: shard 0 now holds the whole count.
                if inside(gran, keys.parse_counter_sk(sk)) and (pk, sk) not in wanted:
                    client.delete_item(
                        TableName=aggregates_table, Key={"pk": {"S": pk}, "sk": {"S": sk}}
                    )
                    report.items_deleted += 1
    return report


def _counter_pks(site: str, gran: Granularity, dimensions: set[str]) -> list[str]:
    pks = [keys.counter_pk(site, gran, dimension) for dimension in sorted(dimensions)]
    if gran is Granularity.MINUTE:  # the parts' spread keys (0018; the legacy key is above)
        pks += [keys.minute_pk(site, k) for k in range(keys.MINUTE_PARTITIONS)]
    if gran in SLOT_GRANULARITIES:  # slots under every slot key (0018; key 0 is PENDING's)
        pks += [pk for pk in keys.slot_pks(site, gran) if pk not in pks]
    return pks


def _existing(client: Any, table: str, pk: str) -> Iterator[dict[str, Any]]:
    return paged(
        client.query,
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
        ProjectionExpression="pk, sk",
    )
