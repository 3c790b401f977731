"""Saved segments: named filter sets of a site, shared by everyone who reads its stats.

A segment holds v2 filters (Plausible's Stats API v2 shape, compat.md §6), stored as JSON text in
the meta table under `keys.segments_pk(site)` with the segment's number as sort key. Plausible's v2
names a segment by number (`["is", "segment", [7]]`), so ids are small integers, one more than the
largest in use, claimed with a conditional write (two admins saving at once get two numbers).
What the filters mean is checked by the caller (the v2 parser); this store keeps their shape
bounded.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from core import keys
from core.aws import paged

if TYPE_CHECKING:
    from core.sites import SiteStore

MAX_SEGMENTS = 100  # per site: each is read to resolve a filter, and listed in the filter bar
MAX_NAME_LENGTH = 120
MAX_FILTER_BYTES = 8 * 1024  # as JSON text


class SegmentError(ValueError):
    pass


class SegmentNotFound(SegmentError):
    pass


@dataclass(frozen=True)
class Segment:
    id: int
    site: str
    name: str
    filters: tuple[Any, ...]  # v2 filters, as JSON values
    created_at: int

    def out(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "filters": list(self.filters),
            "created_at": self.created_at,
        }


def validate_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH or not name.isprintable():
        raise SegmentError(f"a segment's name has 1 to {MAX_NAME_LENGTH} printable characters")
    return name


def validate_filters(filters: Any) -> tuple[Any, ...]:
    """A non-empty list of filters, at most MAX_FILTER_BYTES as JSON (their meaning is the v2
    parser's to check)."""
    if not isinstance(filters, list) or not filters:
        raise SegmentError("a segment's filters are a non-empty list of v2 filters")
    if len(json.dumps(filters, separators=(",", ":"))) > MAX_FILTER_BYTES:
        raise SegmentError(f"a segment's filters take at most {MAX_FILTER_BYTES} bytes of JSON")
    return tuple(filters)


class SegmentStore:
    def __init__(self, client: Any, table: str, clock: Callable[[], float] = time.time) -> None:
        self._client, self._table, self._clock = client, table, clock

    @classmethod
    def beside(cls, sites: SiteStore) -> SegmentStore:
        """The store over the meta table that `sites` reads (as FunnelStore.beside): the v2 query
        resolves saved segments with it, the admin routes edit them."""
        client, table = sites.meta
        return cls(client, table)

    def list(self, site: str) -> builtins.list[Segment]:
        items = paged(
            self._client.query,
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.segments_pk(site)}},
        )
        return sorted((_segment(site, item) for item in items), key=lambda s: s.id)

    def get(self, site: str, segment_id: int) -> Segment | None:
        response = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": keys.segments_pk(site)}, "sk": {"S": _sk(segment_id)}},
            ConsistentRead=True,
        )
        return _segment(site, response["Item"]) if "Item" in response else None

    def add(self, site: str, name: str, filters: Any) -> Segment:
        name, kept = validate_name(name), validate_filters(filters)
        for _ in range(5):  # another admin may claim the same number: take the next one
            existing = self.list(site)
            if len(existing) >= MAX_SEGMENTS:
                raise SegmentError(f"a site keeps at most {MAX_SEGMENTS} segments")
            segment = Segment(
                max((s.id for s in existing), default=0) + 1,
                site,
                name,
                kept,
                int(self._clock()),
            )
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=_item(segment),
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                continue
            return segment
        raise SegmentError("segments are being saved concurrently: try again")

    def update(
        self, site: str, segment_id: int, name: str | None = None, filters: Any = None
    ) -> Segment:
        current = self.get(site, segment_id)
        if current is None:
            raise SegmentNotFound(f"no segment {segment_id} for {site}")
        segment = Segment(
            current.id,
            site,
            validate_name(name) if name is not None else current.name,
            validate_filters(filters) if filters is not None else current.filters,
            current.created_at,
        )
        self._client.put_item(TableName=self._table, Item=_item(segment))
        return segment

    def remove(self, site: str, segment_id: int) -> None:
        response = self._client.delete_item(
            TableName=self._table,
            Key={"pk": {"S": keys.segments_pk(site)}, "sk": {"S": _sk(segment_id)}},
            ReturnValues="ALL_OLD",
        )
        if "Attributes" not in response:
            raise SegmentNotFound(f"no segment {segment_id} for {site}")

    def remove_all(self, site: str) -> int:
        """Every segment of a removed site; how many."""
        removed = 0
        for segment in self.list(site):
            self.remove(site, segment.id)
            removed += 1
        return removed


def _sk(segment_id: int) -> str:
    return f"{segment_id:08d}"  # sorted as numbers


def _item(segment: Segment) -> dict[str, Any]:
    return {
        "pk": {"S": keys.segments_pk(segment.site)},
        "sk": {"S": _sk(segment.id)},
        "name": {"S": segment.name},
        "filters": {"S": json.dumps(list(segment.filters), separators=(",", ":"))},
        "created_at": {"N": str(segment.created_at)},
    }


def _segment(site: str, item: dict[str, Any]) -> Segment:
    return Segment(
        int(item["sk"]["S"]),
        site,
        item["name"]["S"],
        tuple(json.loads(item["filters"]["S"])),
        int(item["created_at"]["N"]),
    )
