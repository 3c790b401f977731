"""A busy site's minute parts over several partition keys (decision 0018), and the parts written
before it (the legacy key `C#<site>#m#_`) still read and still deduplicating."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aggregator import minutes
from core import keys
from core.events import RawEvent
from core.keys import Granularity
from local import tables
from local.runtime import LambdaContext
from tests import oracle
from tests.faults import mismatches, stored_counters
from tests.integration.test_flood import stream_record

SITE = "busy.example"
NOW = datetime.now(UTC).replace(second=30, microsecond=0)
MINUTE = (NOW - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M")


def event(n: int, event_id: str | None = None) -> RawEvent:
    ts = int((NOW - timedelta(minutes=2)).timestamp() * 1000) + n % 50_000
    return RawEvent(
        event_id=event_id or f"b{n}",
        site=SITE,
        ts=ts,
        name="pageview",
        visitor_id=f"v{n % 97}",
        page=f"/p{n % 13}",
        source=("Google", "Twitter", "Direct / None")[n % 3],
    )


def realtime_tier(events: list[RawEvent], first_sequence: int = 1) -> None:
    from aggregator.handler import handler

    records = [stream_record(e, first_sequence + n) for n, e in enumerate(events)]
    result = handler({"Records": records}, LambdaContext("aggregator", qualifier="realtime"))
    assert result == {"batchItemFailures": []}


def client() -> Any:
    from core.aws import make_client

    return make_client("dynamodb")


def minute_items(aws_env: dict[str, str]) -> list[dict[str, Any]]:
    items = tables.scan_all(client(), aws_env["aggregates"])
    return [i for i in items if i["pk"]["S"] in keys.minute_pks(SITE)]


def read_realtime(aws_env: dict[str, str]) -> Any:
    from query_api.reader import CounterReader

    return CounterReader(client(), aws_env["aggregates"]).realtime(SITE, NOW)


def minute_cells(events: list[RawEvent]) -> oracle.Counters:
    expected = oracle.compute(events)
    return {cell: attrs for cell, attrs in expected.items() if cell[1] is Granularity.MINUTE}


def as_legacy(aws_env: dict[str, str]) -> None:
    """Move every minute part to the legacy key, as the layout before 0018 kept them (same sk)."""
    ddb = client()
    for item in minute_items(aws_env):
        if keys.minute_partition(item["pk"]["S"]) is not None:
            key = {"pk": item["pk"], "sk": item["sk"]}
            ddb.delete_item(TableName=aws_env["aggregates"], Key=key)
            legacy = {**item, "pk": {"S": keys.legacy_minute_pk(SITE)}}
            ddb.put_item(TableName=aws_env["aggregates"], Item=legacy)


def test_a_busy_minutes_parts_land_on_every_partition_key_and_equal_the_oracle(
    aws_env: dict[str, str],
) -> None:
    events = [event(n) for n in range(1_600)]  # 400 a walk: two parts of 250 each

    for start in range(0, len(events), 100):
        realtime_tier(events[start : start + 100], start + 1)
    realtime_tier(events[:300], 5_000)  # a redelivery

    items = minute_items(aws_env)
    by_pk = {pk: [i for i in items if i["pk"]["S"] == pk] for pk in keys.minute_pks(SITE)}
    assert by_pk[keys.legacy_minute_pk(SITE)] == []
    assert all(len(by_pk[keys.minute_pk(SITE, k)]) >= 2 for k in range(keys.MINUTE_PARTITIONS))
    assert max(len(i["eids"]["BS"]) for i in items) == minutes.MAX_EVENTS_PER_PART
    names = {"aggregates": aws_env["aggregates"]}
    assert mismatches(minute_cells(events), stored_counters(client(), names)) == []
    rt = read_realtime(aws_env)
    assert rt.pageviews == 1_600 and rt.current_visitors == 97
    assert dict(rt.top_pages)["/p0"] == len([n for n in range(1_600) if n % 13 == 0])


def test_an_event_counted_in_a_legacy_part_is_not_counted_again_when_redelivered(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # (small parts, old and new, so the walk crosses full legacy parts: 3 events a part)
    monkeypatch.setattr(minutes, "MAX_EVENTS_PER_PART", 3)
    monkeypatch.setattr(minutes, "LEGACY_MAX_EVENTS_PER_PART", 3)
    ids = [f"f{n}" for n in range(400) if zlib.crc32(f"f{n}".encode()) % 4 == 0][:12]
    events = [event(n, event_id) for n, event_id in enumerate(ids)]
    # Given ten events counted by the layout before 0018: legacy parts 0, 4, 8 full, 12 with one
    realtime_tier(events[:10])
    as_legacy(aws_env)
    legacy = sorted((i["sk"]["S"], len(i["eids"]["BS"])) for i in minute_items(aws_env))
    assert legacy == [(MINUTE, 3), (f"{MINUTE}#12", 1), (f"{MINUTE}#4", 3), (f"{MINUTE}#8", 3)]

    # When all of them come again with two new ones
    realtime_tier(list(reversed(events)), 100)

    # Then only the new ones are counted, in the new layout; the legacy parts are as they were
    items = minute_items(aws_env)
    new = {(i["pk"]["S"], i["sk"]["S"]): len(i["eids"]["BS"]) for i in items}
    new = {key: n for key, n in new.items() if key[0] != keys.legacy_minute_pk(SITE)}
    assert new == {(keys.minute_pk(SITE, 0), MINUTE): 2}
    assert len(items) == 5
    names = {"aggregates": aws_env["aggregates"]}
    assert mismatches(minute_cells(events), stored_counters(client(), names)) == []
    assert read_realtime(aws_env).pageviews == 12  # the realtime read takes both layouts


def test_legacy_parts_are_read_again_until_no_old_instance_can_write_them(
    aws_env: dict[str, str],
) -> None:
    # Given an instance started just after the minute (an old one may have written its parts)
    clock = [NOW.timestamp()]
    store = minutes.MinuteStore(client(), aws_env["aggregates"], 3600, clock=lambda: clock[0])
    legacy = (keys.legacy_minute_pk(SITE), MINUTE)

    with recorded_reads() as reads:
        store.read([legacy], False)
        store.read([legacy], False)  # an old instance may still be writing: read again
        clock[0] += minutes.LEGACY_SETTLED_SECONDS
        store.read([legacy], False)
        store.read([legacy], False)  # settled: known absent, not read

    assert reads == [legacy, legacy, legacy]


def test_legacy_parts_of_minutes_after_the_old_code_stopped_are_never_read(
    aws_env: dict[str, str],
) -> None:
    # Given an instance that started before the minute, by more than the old code could run on
    started = NOW - timedelta(minutes=2) - timedelta(seconds=minutes.LEGACY_SETTLED_SECONDS + 61)
    store = minutes.MinuteStore(
        client(), aws_env["aggregates"], 3600, clock=lambda: started.timestamp()
    )
    later = [(keys.legacy_minute_pk(SITE), keys.counter_sk(MINUTE, part)) for part in (0, 4)]
    current = (keys.minute_pk(SITE, 0), MINUTE)
    # And an older minute's legacy part, which old code may have written
    older = (started - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    earlier = (keys.legacy_minute_pk(SITE), older)

    # When the minute's parts are wanted, legacy and current, and the older minute's
    with recorded_reads() as reads:
        found = store.read([*later, current, earlier], False)

    # Then the minute's legacy keys are known empty without a read; the rest are read
    assert sorted(reads) == sorted([current, earlier])
    assert all(found[key].events == set() for key in later)


@contextmanager
def recorded_reads() -> Iterator[list[Any]]:
    reads: list[Any] = []
    original = minutes.batch_get

    def recording(c: Any, table: str, wanted: Any, consistent: bool) -> Any:
        reads.extend(wanted)
        return original(c, table, wanted, consistent)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(minutes, "batch_get", recording)
        yield reads
