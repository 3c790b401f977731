"""A busy site's day and month slots over several partition keys (decision 0018 step 2): readers
and folds take every key, a fold deletes exactly the slots it added, and the slots written under
the single key before the change (`C#<site>#d#+`) are still read and folded."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from core import keys
from core.events import RawEvent
from core.keys import Granularity
from local import tables
from local.runtime import LambdaContext
from tests import oracle
from tests.conftest import _clear_composition_roots
from tests.faults import mismatches
from tests.integration.test_flood import stream_record

SITE = "slots.example"
DAY = "2026-11-20"
MONTH = "2026-11"
TS = int(datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp() * 1000)
SLOT_GRANULARITIES = (Granularity.DAY, Granularity.MONTH)


def event(n: int) -> RawEvent:
    return RawEvent(
        event_id=f"s{n}",
        site=SITE,
        ts=TS + n * 1_000,
        name="pageview",
        visitor_id=f"v{n % 7}",
        page=f"/p{n % 5}",
        source=("Google", "Twitter", "Direct / None")[n % 3],
    )


def count(events: list[RawEvent], per_batch: int, first_sequence: int = 1) -> None:
    """The rollup's chunks: one batch (one chunk, one commit) per `per_batch` events."""
    from aggregator.handler import handler

    for start in range(0, len(events), per_batch):
        records = [
            stream_record(e, first_sequence + start + n)
            for n, e in enumerate(events[start : start + per_batch])
        ]
        assert handler({"Records": records}, LambdaContext("aggregator")) == {
            "batchItemFailures": []
        }


def client() -> Any:
    from core.aws import make_client

    return make_client("dynamodb")


def slots_by_key(aws_env: dict[str, str], gran: Granularity) -> dict[str, list[dict[str, Any]]]:
    items = tables.scan_all(client(), aws_env["aggregates"])
    return {pk: [i for i in items if i["pk"]["S"] == pk] for pk in keys.slot_pks(SITE, gran)}


def all_slots(aws_env: dict[str, str]) -> list[dict[str, Any]]:
    return [
        item
        for gran in SLOT_GRANULARITIES
        for items in slots_by_key(aws_env, gran).values()
        for item in items
    ]


def read_by_readers(aws_env: dict[str, str], cells: oracle.Counters) -> oracle.Counters:
    """Each of these day and month cells as the query API reads it: bases, shards and slots."""
    from query_api.reader import CounterReader

    reader = CounterReader(client(), aws_env["aggregates"])
    return {
        cell: reader.buckets(site, gran, dimension, bucket, bucket).get(bucket, {})
        for cell in cells
        for site, gran, dimension, bucket in [cell]
    }


def assert_readers_equal_the_oracle(aws_env: dict[str, str], events: list[RawEvent]) -> None:
    expected = {
        cell: attrs
        for cell, attrs in oracle.compute(events).items()
        if cell[1] in SLOT_GRANULARITIES
    }
    assert expected  # (days and months: pages, sources, totals, …)
    assert mismatches(expected, read_by_readers(aws_env, expected)) == []


def test_a_busy_buckets_slots_land_on_every_key_and_readers_sum_them_to_the_oracle(
    aws_env: dict[str, str], fold_at: Any
) -> None:
    fold_at(slots=100)
    events = [event(n) for n in range(30)]
    # When ten chunks commit, none folded yet
    count(events, per_batch=3)
    # Then each commit's day and month slots went to the next key in turn: all four hold some
    for gran in SLOT_GRANULARITIES:
        by_key = slots_by_key(aws_env, gran)
        assert sorted(len(found) for found in by_key.values()) == [2, 2, 3, 3], gran
    # And readers sum the slots of every key: every day and month number equals the oracle
    assert_readers_equal_the_oracle(aws_env, events)


def test_a_fold_reads_and_deletes_the_slots_of_every_key_and_only_them(
    aws_env: dict[str, str], fold_at: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aggregator import handler as aggregator_handler

    fold_at(slots=100)
    events = [event(n) for n in range(24)]
    count(events, per_batch=3)  # eight slots a bucket, two on each key
    day_slots = {
        (i["pk"]["S"], i["sk"]["S"])
        for found in slots_by_key(aws_env, Granularity.DAY).values()
        for i in found
    }
    assert len({pk for pk, _ in day_slots}) == keys.SLOT_PARTITIONS
    store = aggregator_handler.get_store()
    deleted: list[dict[str, Any]] = []
    real = store._client.transact_write_items

    def recording(**kwargs: Any) -> Any:
        deleted.extend(a["Delete"] for a in kwargs["TransactItems"] if "Delete" in a)
        return real(**kwargs)

    monkeypatch.setattr(store._client, "transact_write_items", recording)
    # When the day is folded
    assert store.fold(SITE, Granularity.DAY, DAY) is True
    # Then its slots are gone from every key, each deleted once, on the condition it was there
    assert {(d["Key"]["pk"]["S"], d["Key"]["sk"]["S"]) for d in deleted} == day_slots
    assert len(deleted) == len(day_slots)
    assert {d["ConditionExpression"] for d in deleted} == {"attribute_exists(pk)"}
    assert all(found == [] for found in slots_by_key(aws_env, Granularity.DAY).values())
    # (the month's slots still wait for their own fold) and every number reads the same
    assert sum(len(f) for f in slots_by_key(aws_env, Granularity.MONTH).values()) == 8
    assert_readers_equal_the_oracle(aws_env, events)


def test_a_fold_that_cannot_take_every_slot_takes_the_oldest_whatever_their_key(
    aws_env: dict[str, str], fold_at: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aggregator import handler as aggregator_handler
    from aggregator import store as store_module

    fold_at(slots=100)
    events = [event(n) for n in range(24)]
    count(events, per_batch=3)  # eight slots a bucket, two on each key, written in turn
    before = sorted(
        i["sk"]["S"] for found in slots_by_key(aws_env, Granularity.DAY).values() for i in found
    )
    first_key = keys.slot_pks(SITE, Granularity.DAY)[0]
    dimensions = len(keys.packed_cells(slots_by_key(aws_env, Granularity.DAY)[first_key][0]))
    # When a fold has room for the bases and two slots only
    monkeypatch.setattr(store_module, "FOLD_MAX_ACTIONS", dimensions + 2)
    store = aggregator_handler.get_store()
    assert store.fold(SITE, Granularity.DAY, DAY) is True
    # Then it took the two oldest, on two keys, and left the newer two to the next commit
    after = sorted(
        i["sk"]["S"] for found in slots_by_key(aws_env, Granularity.DAY).values() for i in found
    )
    assert after == before[2:]
    assert store.due() == [(SITE, Granularity.DAY, DAY)]
    assert_readers_equal_the_oracle(aws_env, events)


def test_slots_under_the_single_key_before_the_spread_are_still_read_and_folded(
    aws_env: dict[str, str], fold_at: Any
) -> None:
    # Given slots an instance of the release before wrote under the one key it had, no fold yet
    # (the key spelled out: it must stay one of the keys readers and folds take)
    old = [event(n) for n in range(6)]
    fold_at(slots=100)
    count(old, per_batch=2)
    ddb, table = client(), aws_env["aggregates"]
    for item in all_slots(aws_env):
        gran = keys.parse_counter_pk(item["pk"]["S"])[1].value
        ddb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
        ddb.put_item(TableName=table, Item={**item, "pk": {"S": f"C#{SITE}#{gran}#+"}})
    assert {i["pk"]["S"] for i in all_slots(aws_env)} == {f"C#{SITE}#d#+", f"C#{SITE}#M#+"}
    # Then readers count them
    assert_readers_equal_the_oracle(aws_env, old)

    # When a new instance counts more, over every key, until its own count makes it fold
    _clear_composition_roots()
    fold_at(slots=4)
    new = [event(n) for n in range(6, 18)]
    count(new, per_batch=3, first_sequence=100)
    # Then its fold took the old slots with its own: none left on any key, no count changed
    assert all_slots(aws_env) == []
    assert_readers_equal_the_oracle(aws_env, old + new)
