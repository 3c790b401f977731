"""Reads of pre-aggregated counters. Every read is a bounded Query over one partition."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core import keys
from core.keys import Granularity

REALTIME_MINUTES = 30
CURRENT_MINUTES = 5
TOP_PAGES = 10


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

    def _range(self, pk: str, first: str, last: str) -> list[dict[str, Any]]:
        """Every shard of every bucket from first to last (labels), in one Query."""
        low, high = keys.counter_range(first, last)
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":a": {"S": low}, ":b": {"S": high}},
        }
        while True:
            page = self._client.query(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        self.items_read += len(items)
        return items

    def buckets(
        self, site: str, granularity: Granularity, dimension: str, first: str, last: str
    ) -> dict[str, dict[str, int]]:
        """{bucket label: {attribute: total over shards}} for the buckets first..last."""
        return summed(self._range(keys.counter_pk(site, granularity, dimension), first, last))

    def current_visitors(self, site: str, now: datetime) -> int:
        """Visitors whose latest event falls in the last 5 minutes: one small Query."""
        labels = keys.minute_labels_between(now - timedelta(minutes=CURRENT_MINUTES - 1), now)
        totals = self.buckets(site, Granularity.MINUTE, keys.TOTALS, labels[0], labels[-1])
        return max(sum(_number(totals.get(label), "current") for label in labels), 0)

    def realtime(self, site: str, now: datetime) -> Realtime:
        labels = keys.minute_labels_between(now - timedelta(minutes=REALTIME_MINUTES - 1), now)
        items = self._range(keys.counter_pk(site, Granularity.MINUTE), labels[0], labels[-1])
        totals = summed(items)
        per_minute = [
            MinutePoint(
                minute=label,
                pageviews=_number(totals.get(label), "pageviews"),
                visitors=_number(totals.get(label), "visitors"),
            )
            for label in labels
        ]
        current = sum(_number(totals.get(label), "current") for label in labels[-CURRENT_MINUTES:])
        top_pages = _top(items, "pageviews")
        top_sources = _top(items, keys.SOURCE_PAGEVIEWS)
        return Realtime(site, now, max(current, 0), per_minute, top_pages, top_sources)


def _top(items: list[dict[str, Any]], metric: str) -> list[tuple[str, int]]:
    """The values with most pageviews in these minute items (a minute item holds pageviews by
    page as `pageviews|<page>` and by the visit's source as `source_pageviews|<source>`)."""
    counts: Counter[str] = Counter()
    for item in items:
        for name, value in item.items():
            found_metric, found = keys.parse_counter_attr(name)
            if found_metric == metric and found is not None:
                counts[found] += int(value["N"])
    ranked = sorted(((v, n) for v, n in counts.items() if n > 0), key=lambda vn: (-vn[1], vn[0]))
    return ranked[:TOP_PAGES]


def summed(items: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Counter items (all shards) → {bucket label: {attribute: total}}."""
    out: dict[str, dict[str, int]] = {}
    for item in items:
        cell = out.setdefault(keys.parse_counter_sk(item["sk"]["S"]), {})
        for name, value in item.items():
            if "N" in value and name != "ttl":
                cell[name] = cell.get(name, 0) + int(value["N"])
    return out


def _number(cell: dict[str, int] | None, attr: str) -> int:
    return (cell or {}).get(attr, 0)
