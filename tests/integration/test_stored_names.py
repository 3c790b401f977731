"""Counters are stored under short metric codes (decision 0013), and a day's bases packed by folds
(decision 0015); items written before hold full names or codes, and a bucket that has all of them
reads as their sum."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from core.events import RawEvent
from core.keys import PACKED, Granularity, packed_cells
from local.runtime import LambdaContext
from tests.conftest import _clear_composition_roots
from tests.integration.test_flood import stream_record

SITE = "names.example"
DAY = "2026-11-20"
TS = int(datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp() * 1000)


def pageview(event_id: str, visitor: str, page: str) -> RawEvent:
    return RawEvent(
        event_id=event_id, site=SITE, ts=TS, name="pageview", visitor_id=visitor, page=page
    )


def test_day_items_from_before_slots_keep_counting_and_a_fold_carries_them(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aggregator.handler import handler
    from core.aws import make_client
    from query_api.reader import CounterReader

    client = make_client("dynamodb")
    table = aws_env["aggregates"]
    # Given the day's page items as older releases wrote them: a shard with full names (before
    # 0013) and a base with short codes and its bookkeeping (before 0015)
    shard = {"pk": {"S": f"C#{SITE}#d#page"}, "sk": {"S": f"{DAY}#1"}}
    old = {"pageviews|/a": {"N": "5"}, "visitors|/a": {"N": "2"}, "n": {"N": "1"}, "b": {"N": "2"}}
    client.put_item(TableName=table, Item={**shard, **old})
    base = {"pk": {"S": f"C#{SITE}#d#page"}, "sk": {"S": DAY}}
    coded = {"p|/a": {"N": "2"}, "p|/c": {"N": "4"}, "n": {"N": "2"}, "w": {"N": "3"}}
    client.put_item(TableName=table, Item={**base, **coded, "ver": {"N": "7"}})
    # When this release counts pageviews of /a and /b, and folds its slot at once
    monkeypatch.setenv("LIVEINSIGHT_FOLD_AT_SLOTS", "1")
    _clear_composition_roots()
    events = [pageview("e1", "v1", "/a"), pageview("e2", "v1", "/b")]
    records = [stream_record(e, n + 1) for n, e in enumerate(events)]
    assert handler({"Records": records}, LambdaContext("aggregator")) == {"batchItemFailures": []}

    # Then the base is packed, holding its old counters and the new ones; the shard is as it was
    item: dict[str, Any] = client.get_item(TableName=table, Key=base)["Item"]
    assert set(item) == {"pk", "sk", PACKED, "ver"} and item["ver"] == {"N": "8"}
    page = packed_cells(item)["page"]
    assert page["pageviews|/a"] == 3 and page["pageviews|/c"] == 4 and page["pageviews|/b"] == 1
    assert client.get_item(TableName=table, Key=shard)["Item"] == {**shard, **old}
    # And readers see one counter per metric and value: the sum
    cells = CounterReader(client, table).buckets(SITE, Granularity.DAY, "page", DAY, DAY)
    assert cells[DAY]["pageviews|/a"] == 8 and cells[DAY]["visitors|/a"] == 3
    assert cells[DAY]["pageviews|/b"] == 1 and cells[DAY]["pageviews|/c"] == 4
    assert not any(name.startswith(("p|", "v|")) for name in cells[DAY])


def test_a_visitor_state_written_before_packing_is_read_and_continued(
    aws_env: dict[str, str],
) -> None:
    from aggregator.handler import handler
    from aggregator.store import PACKED_STATE, state_text
    from core.aws import make_client
    from query_api.reader import CounterReader

    client = make_client("dynamodb")
    table = aws_env["aggregates"]
    first = stream_record(pageview("s1", "v9", "/a"), 1)
    assert handler({"Records": [first]}, LambdaContext("aggregator")) == {"batchItemFailures": []}
    # Given the visitor's state as an older release stored it: its JSON as a string
    key = {"pk": {"S": f"V#{SITE}#v9"}, "sk": {"S": "_"}}
    item = client.get_item(TableName=table, Key=key)["Item"]
    assert set(json.loads(state_text(item))) >= {"h"}
    old = {k: v for k, v in item.items() if k != PACKED_STATE}
    client.put_item(TableName=table, Item={**old, "state": {"S": state_text(item)}})
    # When the first event is delivered again, with a second one
    second = stream_record(pageview("s2", "v9", "/b"), 2)
    records = [first, second]
    assert handler({"Records": records}, LambdaContext("aggregator")) == {"batchItemFailures": []}
    # Then the old state told the first one was counted, and the state is stored packed again
    cells = CounterReader(client, table).buckets(SITE, Granularity.DAY, "_", DAY, DAY)
    assert cells[DAY]["pageviews"] == 2
    item = client.get_item(TableName=table, Key=key)["Item"]
    assert "state" not in item and len(json.loads(state_text(item))["h"]) == 2
