"""What the local stack reads and frees in moto's memory, where the AWS API is too slow or has no call.

moto runs in this process (`ThreadedMotoServer`, or `mock_aws` in tests), so its tables are plain
Python objects here. Three chores go to them directly:

- `table_items`: a table's items as a Scan returns them. A Scan over HTTP sorts the whole table
  and runs each 1 MB page through moto's response serializer, seconds a page: a shutdown save of a
  few MB of raw events outlasted the client's read timeout, and was lost.
- `trim_stream`: moto keeps every stream record (~5 KB an event) for ever; AWS trims after 24 h.
  Records every reader has read are dropped (their slot stays, so sequence numbers do not move).
- `expire_iterators`: moto keeps every shard iterator it hands out (~1.6 KB each; the pollers take
  about 20 a second). AWS expires them after 15 minutes; here after 5 (a 10 MB plateau, not
  30): the pollers take a new one every poll, and one that outlived its iterator takes another
  from its last record read (local/poller.py).

moto's data browser list (`instances_tracked`) holds every stream record and iterator too; it is
emptied of them, as moto's own reset does. Reads run beside moto's request threads: lists and
dicts are copied whole (one C call under the GIL) before they are walked, and an item changed
while it is read is read again.
"""

from __future__ import annotations

from typing import Any

ITERATOR_LIFETIME = 5 * 60.0  # seconds (AWS: 15 minutes after issue)


def _table(physical: str) -> Any:
    from moto.dynamodb.models import dynamodb_backends

    for account in list(dynamodb_backends.values()):
        for backend in list(account.values()):
            table = backend.tables.get(physical)
            if table is not None:
                return table
    return None


def table_items(physical: str) -> list[dict[str, Any]] | None:
    """Every item of the table, shaped as a Scan through botocore returns it (bytes for B), or
    None when the table is not in this process's moto."""
    table = _table(physical)
    if table is None:
        return None
    items = []
    for bucket in list(table.items.values()):
        for item in list(bucket.values()) if table.range_key_attr else [bucket]:
            items.append(_attributes(item))
    return items


def _attributes(item: Any) -> dict[str, Any]:
    for _ in range(100):
        try:
            attributes: dict[str, Any] = item.to_json()["Attributes"]
            return attributes
        except RuntimeError:  # an update added an attribute while it was read: read it again
            continue
    raise RuntimeError("an item kept changing while it was read")


def trim_stream(physical: str, below: int) -> int:
    """Free the table's stream records whose sequence numbers are below `below`; how many."""
    from moto.dynamodb.models.table import StreamRecord

    table = _table(physical)
    shard = getattr(table, "stream_shard", None)
    if shard is None:
        return 0
    records = shard.items
    start = getattr(shard, "_li_trimmed", 0)
    end = min(below - int(shard.starting_sequence_number), len(records))
    for index in range(start, end):
        records[index] = None  # the slot stays: moto numbers records by their list position
    shard._li_trimmed = max(start, end)
    StreamRecord.instances_tracked.clear()  # type: ignore[attr-defined]
    return max(0, end - start)


def expire_iterators(issued: dict[str, float], now: float) -> int:
    """Forget shard iterators issued more than ITERATOR_LIFETIME ago. `issued` is the caller's
    record of when each iterator was first seen (kept between calls); how many were forgotten."""
    from moto.dynamodbstreams.models import ShardIterator, dynamodbstreams_backends

    live = [
        backend.shard_iterators
        for account in list(dynamodbstreams_backends.values())
        for backend in list(account.values())
    ]
    present: set[str] = set()
    for iterators in live:
        for arn in list(iterators):
            issued.setdefault(arn, now)
            present.add(arn)
    expired = 0
    for arn, first_seen in list(issued.items()):
        if arn not in present:
            del issued[arn]
        elif now - first_seen > ITERATOR_LIFETIME:
            for iterators in live:
                iterators.pop(arn, None)
            del issued[arn]
            expired += 1
    ShardIterator.instances_tracked.clear()  # type: ignore[attr-defined]
    return expired
