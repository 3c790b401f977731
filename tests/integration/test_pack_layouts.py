"""Slots and bases packed in the first layout (decision 0015) keep counting after decision 0025
packs a value's text once: readers sum them with new slots, and a fold carries them into a base
in the new layout."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest

from core import keys
from core.events import RawEvent
from core.keys import PACKED, Granularity
from local.runtime import LambdaContext
from tests.conftest import _clear_composition_roots
from tests.integration.test_flood import stream_record

SITE = "layouts.example"
DAY = "2026-11-20"
TS = int(datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp() * 1000)


def first_layout(cells: dict[str, dict[str, int]]) -> dict[str, Any]:
    stored = {d: {keys.stored_attr(n): c for n, c in cs.items()} for d, cs in cells.items()}
    return {"B": zlib.compress(json.dumps(stored, separators=(",", ":")).encode(), 6)}


def pageview(event_id: str, visitor: str, page: str) -> RawEvent:
    return RawEvent(
        event_id=event_id, site=SITE, ts=TS, name="pageview", visitor_id=visitor, page=page
    )


def count(events: list[RawEvent]) -> None:
    from aggregator.handler import handler

    records = [stream_record(e, n + 1) for n, e in enumerate(events)]
    assert handler({"Records": records}, LambdaContext("aggregator")) == {"batchItemFailures": []}


def test_first_layout_slots_and_bases_are_read_and_folded_into_the_new_layout(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.aws import make_client
    from query_api.reader import CounterReader

    client = make_client("dynamodb")
    table = aws_env["aggregates"]
    # Given a day's base and a slot as the release before wrote them
    base = {"pk": {"S": keys.counter_pk(SITE, Granularity.DAY, "page")}, "sk": {"S": DAY}}
    old_base = {"pageviews|/a": 4, "visitors|/a": 3, "pageviews|/c": 2, "visitors|/c": 2}
    client.put_item(
        TableName=table, Item={**base, PACKED: first_layout({"page": old_base}), "ver": {"N": "3"}}
    )
    slot = {
        "pk": {"S": keys.slot_pk(SITE, Granularity.DAY, 2)},
        "sk": {"S": keys.slot_sk(DAY, "0001790000000deadbeef")},
    }
    old_slot = {"page": {"pageviews|/a": 1, "visitors|/a": 1}, "_": {"pageviews": 1}}
    client.put_item(TableName=table, Item={**slot, PACKED: first_layout(old_slot)})
    reader = CounterReader(client, table)

    # When this release counts a pageview of /a and one of /b (its slot not folded yet)
    monkeypatch.setenv("LIVEINSIGHT_FOLD_AT_SLOTS", "2")
    _clear_composition_roots()
    count([pageview("e1", "v1", "/a"), pageview("e2", "v2", "/b")])
    # Then readers sum the old base, the old slot and the new slot
    cells = reader.buckets(SITE, Granularity.DAY, "page", DAY, DAY)[DAY]
    assert cells["pageviews|/a"] == 6 and cells["visitors|/a"] == 5
    assert cells["pageviews|/b"] == 1 and cells["pageviews|/c"] == 2

    # When a second batch makes the fold due
    count([pageview("e3", "v3", "/c")])
    # Then every slot was folded, the old one too, into a base in the new layout
    low, high = keys.slot_range(DAY, DAY)
    for pk in keys.slot_pks(SITE, Granularity.DAY):
        left = client.query(
            TableName=table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={":pk": {"S": pk}, ":low": {"S": low}, ":high": {"S": high}},
        )["Items"]
        assert left == []
    item = client.get_item(TableName=table, Key=base)["Item"]
    assert json.loads(zlib.decompress(bytes(item[PACKED]["B"])))[0] == keys.PACK_LAYOUT
    page = keys.packed_cells(item)["page"]
    assert page["pageviews|/a"] == 6 and page["pageviews|/b"] == 1 and page["pageviews|/c"] == 3
    assert reader.buckets(SITE, Granularity.DAY, "page", DAY, DAY)[DAY] == page
