"""What the scheduled rules look at (decision 0037), read from the counters the aggregator keeps:
every read is a bounded Query over one partition, none scans.

- **Pageviews lately** (drop): the minute parts of the last M minutes, newest first, one item a
  page, per minute partition; it stops at the first part with a pageview. A busy site answers
  after one small Query; a silent one costs one empty Query per partition (4 of 0.5 read units).
- **A usual hour** (drop): this hour of the week, in the site's time zone, had pageviews in at
  least USUAL_WEEKS of the last WEEKS weeks. Each week's local hour is turned into UTC on its own
  date (a DST change between the weeks moves it), and read from the hour items (UTC hours, kept
  for ever): one Query per week. A local hour of a zone whose offset is not whole hours (India,
  +5:30) covers two UTC hours; either having pageviews counts.
- **Sources of days** (new_referrer): visitors per source of the site's local days, from the day
  items of the `source` dimension and the slots no fold has taken yet (decision 0015), as the
  stats API adds them: per-day uniques summed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core import keys
from core.aws import query_between
from core.keys import OTHER, Granularity
from core.vocabulary import PAGEVIEWS, VISITORS

WEEKS, USUAL_WEEKS = 4, 3
DIRECT = "Direct / None"  # core/events.py's source of a visit without a referrer
SOURCE = "source"
TOP_SOURCES = 10  # "absent from the previous days' top 10"


def _newest_first(
    client: Any, table: str, pk: str, low: str, high: str
) -> Iterator[dict[str, Any]]:
    """The partition's items with low <= sk <= high, newest first, one per page: a reader that
    stops early pays for what it read only."""
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
        "ExpressionAttributeValues": {
            ":pk": {"S": pk},
            ":low": {"S": low},
            ":high": {"S": high},
        },
        "ScanIndexForward": False,
        "Limit": 1,
    }
    while True:
        page = client.query(**request)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def pageviews_lately(client: Any, table: str, site: str, minutes: int, now: datetime) -> int:
    """Pageviews of the newest minute part with any in the current minute and the `minutes`
    before it (so at least `minutes` whole minutes): 0 when there were none."""
    labels = keys.minute_labels_between(now - timedelta(minutes=minutes), now)
    low, high = keys.counter_range(labels[0], labels[-1])
    for pk in (keys.minute_pk(site, k) for k in range(keys.MINUTE_PARTITIONS)):
        for item in _newest_first(client, table, pk, low, high):
            found = int(item.get(PAGEVIEWS, {}).get("N", "0"))
            if found:
                return found
    return 0


def week_hours(tz: str, now: datetime, weeks: int = WEEKS) -> list[list[str]]:
    """For each of the last `weeks` weeks, the UTC hour labels its local hour (this hour of the
    week, in `tz`) overlaps. Pure."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    out = []
    for week in range(1, weeks + 1):
        start = (local - timedelta(weeks=week)).replace(tzinfo=zone).astimezone(UTC)
        end = start + timedelta(hours=1)
        labels, cursor = [], start.replace(minute=0)
        while cursor < end:
            labels.append(cursor.strftime("%Y-%m-%dT%H"))
            cursor += timedelta(hours=1)
        out.append(labels)
    return out


def usual_hour(client: Any, table: str, site: str, tz: str, now: datetime) -> bool:
    """This hour of the week had pageviews in USUAL_WEEKS of the last WEEKS weeks."""
    pk = keys.counter_pk(site, Granularity.HOUR)
    busy = 0
    for labels in week_hours(tz, now):
        low, high = keys.counter_range(labels[0], labels[-1])
        items = query_between(client, table, pk, low, high)
        if any(keys.item_counters(item).get(PAGEVIEWS, 0) for item in items):
            busy += 1
    return busy >= USUAL_WEEKS


def source_visitors(client: Any, table: str, site: str, first: date, last: date) -> dict[str, int]:
    """{source: visitors} over the site's local days first..last: the day items (every shard)
    and the slots not folded yet. One Query for the items, one per slot partition."""
    a, b = first.isoformat(), last.isoformat()
    totals: dict[str, int] = {}

    def add(counters: dict[str, int]) -> None:
        for name, count in counters.items():
            metric, value = keys.parse_counter_attr(name)
            if metric == VISITORS and value is not None:
                totals[value] = totals.get(value, 0) + count

    pk = keys.counter_pk(site, Granularity.DAY, SOURCE)
    for item in query_between(client, table, pk, *keys.counter_range(a, b)):
        add(keys.item_counters(item))
    low, high = keys.slot_range(a, b)
    for slot_pk in keys.slot_pks(site, Granularity.DAY):
        for item in query_between(client, table, slot_pk, low, high):
            add(keys.packed_cells(item).get(SOURCE, {}))
    return totals


def top_referrer(visitors: dict[str, int]) -> tuple[str, int] | None:
    """The source with the most visitors (ties: by name), not direct traffic nor "(other)"."""
    ranked = ranked_sources(visitors)
    return ranked[0] if ranked else None


def ranked_sources(visitors: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(
        ((s, n) for s, n in visitors.items() if n > 0 and s not in (DIRECT, OTHER)),
        key=lambda sn: (-sn[1], sn[0]),
    )


def top_sources(visitors: dict[str, int], n: int = TOP_SOURCES) -> tuple[str, ...]:
    """The n sources with the most visitors, direct traffic included (it is a source)."""
    ranked = sorted(
        ((s, c) for s, c in visitors.items() if c > 0 and s != OTHER),
        key=lambda sc: (-sc[1], sc[0]),
    )
    return tuple(s for s, _ in ranked[:n])


def local_day(tz: str, now: datetime) -> date:
    return now.astimezone(ZoneInfo(tz)).date()
