"""Reads of pre-aggregated counters. Every read is a bounded Query over one partition."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core import keys
from core.aws import query_between
from core.keys import ARRIVALS, VISITOR_IDS, Granularity

REALTIME_MINUTES = 30
Pending = dict[str, dict[str, dict[str, int]]]  # bucket label → dimension → counters
CURRENT_MINUTES = 5
TOP_PAGES = 10
# The Queries of a read spread over several partition keys (a minute's parts, a day's slots:
# decision 0018) are sent at once: the realtime card's five took five round trips one after the
# other, and the query function is billed for waiting on them at 2,048 MB (decision 0020, last
# amendment). A boto3 client is thread-safe and keeps 10 connections.
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="counter-read")


@dataclass(frozen=True)
class MinutePoint:
    minute: str  # UTC minute label, e.g. 2026-11-26T10:05
    pageviews: int
    visitors: int


@dataclass(frozen=True)
class Realtime:
    site: str
    as_of: datetime
    current_visitors: int
    per_minute: list[MinutePoint]
    top_pages: list[tuple[str, int]]
    top_sources: list[tuple[str, int]] = field(default_factory=list)

    @property
    def pageviews(self) -> int:
        return sum(p.pageviews for p in self.per_minute)


class CounterReader:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table
        self.items_read = 0  # for `make bench`: items per refresh, whatever the traffic

    def _range(self, pk: str, low: str, high: str) -> list[dict[str, Any]]:
        """Every item of the partition with low <= sk <= high, in one Query (paged)."""
        items = list(query_between(self._client, self._table, pk, low, high))
        self.items_read += len(items)
        return items

    def _ranges(self, pks: list[str], low: str, high: str) -> list[dict[str, Any]]:
        """`_range` of each partition, the Queries at once; items in the order of `pks`."""
        pages = list(
            _POOL.map(lambda pk: list(query_between(self._client, self._table, pk, low, high)), pks)
        )
        items = [item for page in pages for item in page]
        self.items_read += len(items)
        return items

    def buckets(
        self,
        site: str,
        granularity: Granularity,
        dimension: str,
        first: str,
        last: str,
        pending: Pending | None = None,
    ) -> dict[str, dict[str, int]]:
        """{bucket label: {attribute: total over shards and slots}} for the buckets first..last.
        `pending`: the same buckets' slots, if already read (`pending`) for another dimension."""
        pk = keys.counter_pk(site, granularity, dimension)
        out = summed(self._range(pk, *keys.counter_range(first, last)))
        if pending is None:
            pending = self.pending(site, granularity, first, last)
        for label, cells in pending.items():
            if dimension in cells:
                cell = out.setdefault(label, {})
                for name, count in cells[dimension].items():
                    cell[name] = cell.get(name, 0) + count
        return out

    def prop_key_lists(
        self, site: str, granularity: Granularity, first: str, last: str
    ) -> dict[str, frozenset[str]]:
        """{bucket label: the prop keys its list admitted} for the buckets first..last that have
        a list (decision 0017), in one Query: a site's days (or months) share one partition."""
        pk = keys.prop_key_list_pk(site, granularity)
        return {
            keys.parse_counter_sk(item["sk"]["S"]): frozenset(
                item.get(keys.KEY_SET, {}).get("SS", [])
            )
            for item in self._range(pk, first, last)
        }

    def pending(self, site: str, granularity: Granularity, first: str, last: str) -> Pending:
        """{bucket label: {dimension: counters}} of the slots that no fold has taken yet: the
        latest minutes of days and months, every dimension at once (decision 0015), with one
        Query per key the slots are spread over (0018). Key 0 is the one every slot had before
        0018, so slots written before the upgrade are read too."""
        if granularity not in (Granularity.DAY, Granularity.MONTH):
            return {}
        low, high = keys.slot_range(first, last)
        out: Pending = {}
        slots = self._ranges(keys.slot_pks(site, granularity), low, high)
        for item in slots:
            by_dimension = out.setdefault(keys.parse_counter_sk(item["sk"]["S"]), {})
            for dimension, counters in keys.packed_cells(item).items():
                cell = by_dimension.setdefault(dimension, {})
                for name, count in counters.items():
                    cell[name] = cell.get(name, 0) + count
        return out

    def _minutes(self, site: str, first: str, last: str) -> list[dict[str, Any]]:
        """The minute parts of minutes first..last: one Query per partition key they are spread
        over (decision 0018). The legacy key's Query is for the transition: parts written before
        0018 are in realtime's 30 minutes only just after the upgrade, then it reads nothing."""
        low, high = keys.counter_range(first, last)
        return self._ranges(keys.minute_pks(site), low, high)

    def current_visitors(self, site: str, now: datetime) -> int:
        """Visitors with an event in the last 5 minutes: one small Query per minute key."""
        labels = keys.minute_labels_between(now - timedelta(minutes=CURRENT_MINUTES - 1), now)
        return len(_members(self._minutes(site, labels[0], labels[-1]), VISITOR_IDS))

    def realtime(self, site: str, now: datetime) -> Realtime:
        labels = keys.minute_labels_between(now - timedelta(minutes=REALTIME_MINUTES - 1), now)
        items = self._minutes(site, labels[0], labels[-1])
        by_minute: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            by_minute.setdefault(keys.parse_counter_sk(item["sk"]["S"]), []).append(item)
        per_minute = [
            MinutePoint(
                minute=label,
                pageviews=sum(_count(item, "pageviews") for item in by_minute.get(label, [])),
                visitors=len(_members(by_minute.get(label, []), VISITOR_IDS)),
            )
            for label in labels
        ]
        recent = [item for label in labels[-CURRENT_MINUTES:] for item in by_minute.get(label, [])]
        current = len(_members(recent, VISITOR_IDS))
        return Realtime(site, now, current, per_minute, _top_pages(items), _top_sources(items))


def _count(item: dict[str, Any], name: str) -> int:
    return int(item[name]["N"]) if name in item else 0


def _members(items: list[dict[str, Any]], name: str) -> set[bytes]:
    """The union of a set attribute (visitor hashes) over items."""
    out: set[bytes] = set()
    for item in items:
        out.update(bytes(member) for member in item.get(name, {}).get("BS", []))
    return out


def _top_pages(items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """Pageviews by page (`pageviews|<page>` counters) in these minute items."""
    counts: Counter[str] = Counter()
    for item in items:
        for name, value in item.items():
            metric, page = keys.parse_counter_attr(name)
            if metric == "pageviews" and page is not None:
                counts[page] += int(value["N"])
    return _ranked(counts)


def _top_sources(items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """Unique visitors by the source they arrived from (`arrivals|<source>` sets)."""
    visitors: dict[str, set[bytes]] = {}
    for item in items:
        for name, value in item.items():
            metric, source = keys.parse_counter_attr(name)
            if metric == ARRIVALS and source is not None:
                visitors.setdefault(source, set()).update(bytes(m) for m in value.get("BS", []))
    return _ranked(Counter({source: len(members) for source, members in visitors.items()}))


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    ranked = sorted(((v, n) for v, n in counts.items() if n > 0), key=lambda vn: (-vn[1], vn[0]))
    return ranked[:TOP_PAGES]


def summed(items: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Counter items (all shards) → {bucket label: {attribute: total}}."""
    out: dict[str, dict[str, int]] = {}
    for item in items:
        cell = out.setdefault(keys.parse_counter_sk(item["sk"]["S"]), {})
        for name, count in keys.item_counters(item).items():
            cell[name] = cell.get(name, 0) + count
    return out
