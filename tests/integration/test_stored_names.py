"""Counters are stored under short metric codes (decision 0013); items written before hold full
names, and a bucket that has both reads as their sum."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

from core.events import RawEvent
from core.keys import Granularity
from local.runtime import LambdaContext
from tests.integration.test_flood import stream_record

SITE = "names.example"
DAY = "2026-11-20"
TS = int(datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp() * 1000)


def pageview(event_id: str, visitor: str, page: str) -> RawEvent:
    return RawEvent(
        event_id=event_id, site=SITE, ts=TS, name="pageview", visitor_id=visitor, page=page
    )


def test_a_day_item_from_before_short_codes_keeps_counting(aws_env: dict[str, str]) -> None:
    from aggregator.handler import handler
    from core.aws import make_client
    from query_api.reader import CounterReader

    client = make_client("dynamodb")
    table = aws_env["aggregates"]
    # Given the day's page shard as an older release wrote it: full names
    key = {"pk": {"S": f"C#{SITE}#d#page"}, "sk": {"S": f"{DAY}#1"}}
    old = {"pageviews|/a": {"N": "5"}, "visitors|/a": {"N": "2"}, "n": {"N": "1"}, "b": {"N": "2"}}
    client.put_item(TableName=table, Item={**key, **old})
    # When this release counts pageviews of /a and /b in a chunk that writes that shard
    first = next(f"e{n}" for n in range(100) if zlib.crc32(f"e{n}".encode()) % 4 == 0)
    events = [pageview(first, "v1", "/a"), pageview(f"{first}x", "v1", "/b")]
    records = [stream_record(e, n + 1) for n, e in enumerate(events)]
    assert handler({"Records": records}, LambdaContext("aggregator")) == {"batchItemFailures": []}

    # Then the item holds both spellings, the new counters under codes only
    item: dict[str, Any] = client.get_item(TableName=table, Key=key)["Item"]
    assert item["pageviews|/a"] == {"N": "5"} and item["p|/a"] == {"N": "1"}
    assert item["p|/b"] == {"N": "1"} and "pageviews|/b" not in item
    assert item["n"] == {"N": "2"}  # /a was already admitted: only /b took a place
    # And readers see one counter per metric and value: the sum
    cells = CounterReader(client, table).buckets(SITE, Granularity.DAY, "page", DAY, DAY)
    assert cells[DAY]["pageviews|/a"] == 6 and cells[DAY]["visitors|/a"] == 3
    assert cells[DAY]["pageviews|/b"] == 1
    assert not any(name.startswith(("p|", "v|")) for name in cells[DAY])
