"""A flood of distinct prop keys is bounded per site and day, and per site and month (decision
0017): the first 300 keys are counted under their own names, the rest under `prop:(other)`, every
total kept, exactly once under redelivery, and each list as first come allows."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from core.events import RawEvent
from core.keys import PENDING, PROP_KEY_LIST, Granularity, packed_cells, parse_counter_pk
from local import tables
from local.runtime import LambdaContext
from tests import oracle
from tests.conftest import _clear_composition_roots
from tests.faults import FaultyStore, Schedule, deliver, mismatches, stored_counters
from tests.integration.test_flood import stream_record
from tests.prop_key_lists import stored_key_lists

SITE = "keys.example"
DAY_TS = int(datetime(2026, 11, 20, 9, 0, tzinfo=UTC).timestamp() * 1000)
NEXT_DAY_TS = DAY_TS + 86_400_000
FLOOD = 1_000


def custom_events(keys: list[str], ts: int, first: int = 0) -> list[RawEvent]:
    """One `Signup` per key, carrying that key; ten events a visitor, a second apart."""
    return [
        RawEvent(
            event_id=f"k{first + n:05d}",
            site=SITE,
            ts=ts + n * 1000,
            name="Signup",
            visitor_id=f"{(first + n) // 10:016x}",
            hostname=SITE,
            props={key: f"v{n % 7}"},
        )
        for n, key in enumerate(keys)
    ]


def records_of(events: list[RawEvent], first: int = 1) -> list[dict[str, Any]]:
    return [stream_record(event, first + n) for n, event in enumerate(events)]


def count(records: list[dict[str, Any]], size: int = 100) -> None:
    from aggregator.handler import handler

    for start in range(0, len(records), size):
        response = handler({"Records": records[start : start + size]}, LambdaContext("aggregator"))
        assert response == {"batchItemFailures": []}


def store(aws_env: dict[str, str]) -> tuple[Any, dict[str, str]]:
    from core.aws import make_client

    return make_client("dynamodb"), aws_env


def prop_dimensions(aws_env: dict[str, str], gran: str) -> set[str]:
    """The `prop:<key>` dimensions of a granularity: items of their own (bases), and those that
    slots no fold took yet carry (readers see both)."""
    client, names = store(aws_env)
    found = set()
    for item in tables.scan_all(client, names["aggregates"]):
        if not item["pk"]["S"].startswith(f"C#{SITE}#{gran}#"):
            continue
        _, _, dimension = parse_counter_pk(item["pk"]["S"])
        dimensions = set(packed_cells(item)) if dimension == PENDING else {dimension}
        found |= {d for d in dimensions if d.startswith("prop:")}
    return found


def assert_equals_the_oracle(
    aws_env: dict[str, str], events: list[RawEvent], limit: int, days_only: bool = False
) -> None:
    """Every counter as the oracle has it with the lists stored (`days_only`: days and months,
    for counts made by the processor alone, without the realtime tier's minutes)."""
    client, names = store(aws_env)
    admitted = stored_key_lists(client, names)
    assert oracle.admission_problems(events, admitted, limit) == []
    expected = oracle.compute(events, admitted)
    stored = stored_counters(client, names)
    if days_only:
        wanted = (Granularity.DAY, Granularity.MONTH)
        expected = {cell: attrs for cell, attrs in expected.items() if cell[1] in wanted}
        stored = {cell: attrs for cell, attrs in stored.items() if cell[1] in wanted}
    assert mismatches(expected, stored) == []


@pytest.fixture()
def limit(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set the bound of keys per list, for the next cold start."""

    def configure(keys: int) -> None:
        monkeypatch.setattr("aggregator.prop_keys.MAX_PROP_KEYS", keys)
        _clear_composition_roots()

    return configure


def test_a_flood_of_a_thousand_prop_keys_makes_at_most_300_prop_dimensions_a_day(
    aws_env: dict[str, str],
) -> None:
    # Given a day's 1,000 custom events, each sending a prop key never seen before
    keys = [f"key{n:04d}" for n in range(FLOOD)]
    events = custom_events(keys, DAY_TS)
    # When the aggregator counts them in Lambda-sized batches
    count(records_of(events))
    # Then the day and the month each have 300 keys' dimensions and "(other)", no more
    for gran in ("d", "M"):
        dimensions = prop_dimensions(aws_env, gran)
        assert len(dimensions) == 301 and "prop:(other)" in dimensions
    client, names = store(aws_env)
    lists = stored_key_lists(client, names)
    assert sorted(len(admitted) for admitted in lists.values()) == [300, 300]
    # and every count is where the oracle puts it: 300 keys on their own, 700 under "(other)"
    assert_equals_the_oracle(aws_env, events, 300)
    totals = oracle.compute(events, lists)
    day = (SITE, Granularity.DAY, "2026-11-20")
    assert totals[(day[0], day[1], "prop:(other)", day[2])]["events|v0"] > 0
    assert totals[(day[0], day[1], "prop_keys", day[2])]["events|(other)"] == 700
    stored = stored_counters(client, names)
    assert sum(
        count
        for (site, gran, dimension, bucket), attrs in stored.items()
        if (site, gran, bucket) == day and dimension.startswith("prop:")
        for name, count in attrs.items()
        if name.startswith("events|")
    ) == FLOOD  # fmt: skip


def test_a_redelivered_flood_lands_in_the_same_keys_and_counts_once(
    aws_env: dict[str, str], limit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit(keys=20)
    monkeypatch.setattr("aggregator.processor.time.sleep", lambda _s: None)
    events = custom_events([f"key{n:03d}" for n in range(60)], DAY_TS)
    records = records_of(events)
    from aggregator.handler import handler

    def invoke(event: dict[str, Any]) -> Any:
        return handler(event, LambdaContext("aggregator"))

    # Given the flood delivered under faults: retries, bisects, crashes, throttling, reordering
    for seed in range(3):
        faults = FaultyStore()
        with faults.installed():
            deliver(invoke, records, Schedule.random(random.Random(seed), len(records)), faults)
        # When it is delivered again, by an instance that starts cold
        _clear_composition_roots()
    count(records, size=7)
    # Then each key is counted once, where its list decided
    assert_equals_the_oracle(aws_env, events, 20)
    client, names = store(aws_env)
    assert sorted(len(admitted) for admitted in stored_key_lists(client, names).values()) == [
        20,
        20,
    ]


def test_a_key_admitted_stays_admitted_and_a_key_refused_stays_refused(
    aws_env: dict[str, str], limit: Any
) -> None:
    limit(keys=3)
    first = custom_events(["a", "b", "c", "d"], DAY_TS)
    count(records_of(first))
    client, names = store(aws_env)
    lists = stored_key_lists(client, names)
    (admitted,) = {frozenset(keys) for keys in lists.values()}
    (refused,) = {"a", "b", "c", "d"} - admitted
    # When an instance that starts cold counts later events with a kept and the refused key
    _clear_composition_roots()
    kept = sorted(admitted)[0]
    later = custom_events([kept, refused, "e"], DAY_TS + 60_000, first=100)
    count(records_of(later, first=100))
    # Then the kept key counts under its name, the refused one and the new one under "(other)"
    assert stored_key_lists(client, names) == lists
    assert_equals_the_oracle(aws_env, first + later, 3)
    day = prop_dimensions(aws_env, "d")
    assert day == {f"prop:{key}" for key in admitted} | {"prop:(other)"}


def test_a_month_admits_its_own_300_keys_over_days_that_each_admit_fewer(
    aws_env: dict[str, str], limit: Any
) -> None:
    limit(keys=30)
    # Given two days of the same month, each with 20 keys of its own
    events = custom_events([f"day1-{n}" for n in range(20)], DAY_TS)
    events += custom_events([f"day2-{n}" for n in range(20)], NEXT_DAY_TS, first=20)
    count(records_of(events))
    # Then each day keeps its 20 keys, and the month only the first 30 of the 40
    client, names = store(aws_env)
    sizes = {bucket: len(keys) for (_, _, bucket), keys in stored_key_lists(client, names).items()}
    assert sizes == {"2026-11-20": 20, "2026-11-21": 20, "2026-11": 30}
    assert len(prop_dimensions(aws_env, "M")) == 31
    assert "prop:(other)" not in prop_dimensions(aws_env, "d")
    assert_equals_the_oracle(aws_env, events, 30)


def test_an_instance_with_a_stale_list_reads_it_again_and_never_admits_past_the_bound(
    aws_env: dict[str, str], limit: Any
) -> None:
    from aggregator.processor import StreamItem, process
    from aggregator.store import AggregateStore

    client, names = store(aws_env)

    def instance() -> AggregateStore:
        return AggregateStore(client, names["aggregates"], 3600, max_prop_keys=2)

    def items(events: list[RawEvent]) -> list[StreamItem]:
        return [StreamItem(f"{n + 1:021d}", event) for n, event in enumerate(events)]

    first = custom_events(["a"], DAY_TS)
    late, early = instance(), instance()
    # Given an instance that has read the day's list with room for one more key
    assert process(items(first), late).counted == 1
    # When another instance takes that place, and then the first one meets a new key
    second = custom_events(["b"], DAY_TS + 60_000, first=10)
    assert process(items(second), early).counted == 1
    third = custom_events(["c"], DAY_TS + 120_000, first=20)
    result = process(items(third), late)
    # Then its transaction fails on the list's version, it reads the list again, and the new
    # key counts under "(other)"
    assert result.counted == 1 and result.retries == 1
    lists = stored_key_lists(client, names)
    assert {bucket: set(keys) for (_, _, bucket), keys in lists.items()} == {
        "2026-11-20": {"a", "b"},
        "2026-11": {"a", "b"},
    }
    assert_equals_the_oracle(aws_env, first + second + third, 2, days_only=True)
    assert PROP_KEY_LIST not in prop_dimensions(aws_env, "d")


def test_a_rebuild_keeps_the_lists_and_removes_the_items_of_refused_keys(
    aws_env: dict[str, str], limit: Any
) -> None:
    limit(keys=3)
    client, names = store(aws_env)
    events = custom_events(["a", "b", "c", "d", "e"], DAY_TS)
    for event in events:  # a rebuild reads the raw events
        client.put_item(TableName=names["events"], Item=event.to_item(ttl=2_000_000_000))
    count(records_of(events))
    lists = stored_key_lists(client, names)
    # Given an item a refused key left before the bound (an aggregator of an earlier version)
    (refused, *_) = sorted({"a", "b", "c", "d", "e"} - set(next(iter(lists.values()))))
    stray = {"pk": {"S": f"C#{SITE}#d#prop:{refused}"}, "sk": {"S": "2026-11-20"}}
    client.put_item(TableName=names["aggregates"], Item={**stray, "e|v0": {"N": "1"}})
    # When November is rebuilt
    rebuild_november(client, names)
    # Then the lists are as they were, the stray item is gone, and every count is the oracle's
    assert stored_key_lists(client, names) == lists
    assert "Item" not in client.get_item(TableName=names["aggregates"], Key=stray)
    assert len(prop_dimensions(aws_env, "d")) == 4
    assert_equals_the_oracle(aws_env, events, 3, days_only=True)
    # And with the lists lost, a rebuild admits keys anew, in the order they were sent
    for (_, gran, bucket), _keys in lists.items():
        key = {"pk": {"S": f"C#{SITE}#{gran.value}#{PROP_KEY_LIST}"}, "sk": {"S": bucket}}
        client.delete_item(TableName=names["aggregates"], Key=key)
    rebuild_november(client, names)
    assert set(stored_key_lists(client, names).values()) == {frozenset({"a", "b", "c"})}
    assert_equals_the_oracle(aws_env, events, 3, days_only=True)


def rebuild_november(client: Any, names: dict[str, str]) -> None:
    from aggregator.rebuild import rebuild

    rebuild(
        client,
        names["events"],
        names["aggregates"],
        SITE,
        "UTC",
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),  # "now": after all the traffic
        172800,
    )
