"""A flood of distinct paths folds into top-N plus "(other)": items stay small, totals stay exact."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from aggregator.store import FOLD_AT_SLOTS
from core.events import RawEvent
from core.keys import (
    OTHER,
    PENDING,
    Granularity,
    item_counters,
    minute_pks,
    packed_cells,
    parse_counter_attr,
    parse_counter_pk,
    parse_counter_sk,
    slot_pks,
)
from local import tables
from local.runtime import LambdaContext

FLOOD = int(os.environ.get("LIVEINSIGHT_FLOOD_PATHS", "3000"))  # bench: 100,000
SITE = "flood.example"


def stream_record(event: RawEvent, sequence: int) -> dict[str, Any]:
    item = event.to_item(ttl=event.ts // 1000 + 86400)
    return {
        "eventID": str(sequence),
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "NewImage": item,
            "SequenceNumber": f"{sequence:021d}",
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/events/stream/x",
    }


def pk(gran: str, dimension: str = "page") -> str:
    return f"C#{SITE}#{gran}#{dimension}"


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (numbers counted generously)."""
    total = 0
    for name, value in item.items():
        total += len(name.encode())
        raw = next(iter(value.values()))
        total += len(str(raw).encode()) + 1
    return total


def test_distinct_path_flood_keeps_items_small_and_totals_exact(aws_env: dict[str, str]) -> None:
    from aggregator.handler import handler
    from core.aws import make_client

    # Given FLOOD pageviews, each on a new path, from visitors viewing 10 pages each, in one minute
    minute = (int(time.time()) // 60) * 60 * 1000
    events = [
        RawEvent(
            event_id=f"flood{i:07d}",
            site=SITE,
            ts=minute + i * 50_000 // FLOOD,
            name="pageview",
            visitor_id=f"{i // 10:016x}",
            page=f"/p/{i}",
            hostname=SITE,
        )
        for i in range(FLOOD)
    ]
    records = [stream_record(e, n + 1) for n, e in enumerate(events)]
    # When the aggregator takes them in Lambda-sized batches
    for start in range(0, len(records), 100):
        response = handler({"Records": records[start : start + 100]}, LambdaContext("aggregator"))
        assert response == {"batchItemFailures": []}

    # Then every item is far below DynamoDB's 400 KB, and the page breakdown still sums to the total
    items = tables.scan_all(make_client("dynamodb"), aws_env["aggregates"])
    largest = max(items, key=item_bytes)
    assert item_bytes(largest) < 100 * 1024, largest["pk"]
    by_cell: dict[tuple[str, str], dict[str, int]] = {}
    for item in items:
        if item["pk"]["S"].startswith("C#"):
            _, gran, dim = parse_counter_pk(item["pk"]["S"])
            bucket = parse_counter_sk(item["sk"]["S"])
            # a slot holds every dimension; bases, shards and slots summed, as readers do
            cells = packed_cells(item) if dim == PENDING else {dim: item_counters(item)}
            for dimension, counters in cells.items():
                cell = by_cell.setdefault((f"{gran.value}#{dimension}", bucket), {})
                for name, count in counters.items():
                    cell[name] = cell.get(name, 0) + count
    parts = sum(1 for item in items if item["pk"]["S"] in minute_pks(SITE))
    # (a minute's pages are in its realtime items, beside its totals and visitor sets)
    for gran, dimension in (("m", "_"), ("d", "page"), ("M", "page")):
        kind = f"{gran}#{dimension}"
        ((bucket, page_item),) = [(sk, attrs) for (k, sk), attrs in by_cell.items() if k == kind]
        pageviews: dict[str, int] = {}
        for name, count in page_item.items():
            metric, value = parse_counter_attr(name)
            if metric == "pageviews" and value is not None:
                pageviews[value] = count
        assert sum(pageviews.values()) == FLOOD
        if gran == "m":
            assert len(pageviews) <= parts * 301  # at most 300 values and "(other)" a part
        else:  # a base holds 300 values and "(other)" at most; slots no fold took yet, fewer
            assert pageviews["(other)"] > 0
            # than an instance leaves before it folds, hold the latest chunks' values (0015)
            (base,) = [i for i in items if (i["pk"]["S"], i["sk"]["S"]) == (pk(gran), bucket)]
            values = {parse_counter_attr(name)[1] for name in item_counters(base)}
            assert len(values) <= 301 and OTHER in values
            slot_keys = set(slot_pks(SITE, Granularity(gran)))
            assert sum(1 for i in items if i["pk"]["S"] in slot_keys) < FOLD_AT_SLOTS
        totals = by_cell[(f"{gran}#_", bucket)]
        assert totals["pageviews"] == FLOOD
    # and realtime shows ten top pages: a minute part takes 250 events (0018), fewer than its 300
    # places, so short paths each count under their own name
    from query_api.reader import CounterReader

    top = (
        CounterReader(make_client("dynamodb"), aws_env["aggregates"])
        .realtime(SITE, datetime.now(UTC))
        .top_pages
    )
    assert len(top) == 10 and all(n == 1 for _, n in top)
