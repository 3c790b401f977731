"""Realtime's minutes on DynamoDB (decision 0012): counted once without visitor state, through
redelivery, stale reads, racing writers and full parts; read back as realtime shows them."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aggregator import minutes
from aggregator.minutes import MinuteStore
from core import keys
from core.events import RawEvent
from local import tables
from local.runtime import LambdaContext
from tests.integration.test_flood import stream_record

SITE = "minutes.example"
NOW = datetime.now(UTC).replace(second=30, microsecond=0)


def at(minutes_ago: int, event_id: str, visitor: str, **fields: Any) -> RawEvent:
    ts = int((NOW - timedelta(minutes=minutes_ago)).timestamp() * 1000)
    fields.setdefault("name", "pageview")
    return RawEvent(event_id=event_id, site=SITE, ts=ts, visitor_id=visitor, **fields)


def realtime_tier(events: list[RawEvent], first_sequence: int = 1) -> dict[str, Any]:
    from aggregator.handler import handler

    records = [stream_record(e, first_sequence + n) for n, e in enumerate(events)]
    return handler({"Records": records}, LambdaContext("aggregator", qualifier="realtime"))


def minute_items(aws_env: dict[str, str]) -> list[dict[str, Any]]:
    from core.aws import make_client

    items = tables.scan_all(make_client("dynamodb"), aws_env["aggregates"])
    return [i for i in items if i["pk"]["S"] in keys.minute_pks(SITE)]


def read_realtime(aws_env: dict[str, str]) -> Any:
    from core.aws import make_client
    from query_api.reader import CounterReader

    return CounterReader(make_client("dynamodb"), aws_env["aggregates"]).realtime(SITE, NOW)


def traffic() -> list[RawEvent]:
    return [
        at(8, "e1", "v1", source="Google"),  # more than 5 minutes ago: not current
        at(3, "e2", "v2", page="/a"),
        at(3, "e3", "v2", page="/b", internal=True),
        at(1, "e4", "v3", source="Google"),
        at(1, "e5", "v2", name="Signup"),
        at(0, "e6", "v3", page="/a", internal=True),
        at(0, "e7", "v4", name="engagement", page="/a"),  # engagement: not a visitor
    ]


def test_realtime_tier_counts_minutes_without_visitor_state(aws_env: dict[str, str]) -> None:
    assert realtime_tier(traffic()) == {"batchItemFailures": []}

    rt = read_realtime(aws_env)
    per_minute = {p.minute[-5:]: (p.pageviews, p.visitors) for p in rt.per_minute if p.visitors}
    label = {m: (NOW - timedelta(minutes=m)).strftime("%H:%M") for m in (8, 3, 1, 0)}
    assert per_minute == {label[8]: (1, 1), label[3]: (2, 1), label[1]: (1, 2), label[0]: (1, 1)}
    assert rt.current_visitors == 2  # v2 and v3 (v1 was 8 minutes ago; v4 only engaged)
    assert rt.top_pages == [("/", 2), ("/a", 2), ("/b", 1)]
    assert rt.top_sources == [("Google", 2), ("Direct / None", 1)]  # arrivals, not links within
    from core.aws import make_client

    kinds = {
        i["pk"]["S"].split("#")[0]
        for i in tables.scan_all(make_client("dynamodb"), aws_env["aggregates"])
    }
    assert kinds == {"C"}  # no visitor state of any kind


def test_a_redelivered_batch_writes_nothing(aws_env: dict[str, str]) -> None:
    realtime_tier(traffic())
    before = minute_items(aws_env)

    assert realtime_tier(list(reversed(traffic()))) == {"batchItemFailures": []}

    assert minute_items(aws_env) == before  # not even the version moved: no write at all


def test_a_stale_read_or_a_racing_writer_fails_the_condition_and_counts_once(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    realtime_tier(traffic())
    expected = read_realtime(aws_env)
    original = MinuteStore.read
    reads: list[bool] = []

    def stale_then_true(self: MinuteStore, wanted: Any, consistent: bool) -> Any:
        reads.append(consistent)
        if not consistent:  # an eventually consistent read that missed every earlier write
            return {key: minutes.Part() for key in wanted}
        return original(self, wanted, consistent)

    monkeypatch.setattr(MinuteStore, "read", stale_then_true)
    assert realtime_tier(traffic()) == {"batchItemFailures": []}

    assert reads[0] is False and True in reads  # refused, read again consistently
    assert read_realtime(aws_env) == expected


def test_full_parts_overflow_and_every_event_still_counts_once(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(minutes, "MAX_EVENTS_PER_PART", 3)
    ids = [f"f{n}" for n in range(400) if zlib.crc32(f"f{n}".encode()) % 4 == 0][:10]
    events = [at(2, event_id, f"v{n % 4}", page=f"/p{n}") for n, event_id in enumerate(ids)]

    for start in range(0, 10, 4):  # three batches, then every event again in one
        assert realtime_tier(events[start : start + 4], start + 1) == {"batchItemFailures": []}
    assert realtime_tier(events, 100) == {"batchItemFailures": []}

    # (part 0 of the minute, then parts 4, 8 and 12 on the walk; 10 events, 3 to a part)
    minute = (NOW - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M")
    parts = {i["sk"]["S"] for i in minute_items(aws_env)}
    assert parts == {minute, f"{minute}#4", f"{minute}#8", f"{minute}#12"}
    assert max(len(i["eids"]["BS"]) for i in minute_items(aws_env)) == 3
    rt = read_realtime(aws_env)
    assert rt.pageviews == 10 and rt.current_visitors == 4


def test_a_warm_instance_reads_a_full_part_once(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(minutes, "MAX_EVENTS_PER_PART", 3)
    ids = [f"f{n}" for n in range(400) if zlib.crc32(f"f{n}".encode()) % 4 == 0][:7]
    events = [at(2, event_id, "v1", page=f"/p{n}") for n, event_id in enumerate(ids)]
    assert realtime_tier(events[:3], 1) == {"batchItemFailures": []}  # fills part 0
    read: list[tuple[str, str]] = []
    original = minutes.batch_get

    def recording(client: Any, table: str, wanted: Any, consistent: bool) -> Any:
        read.extend(wanted)
        return original(client, table, wanted, consistent)

    monkeypatch.setattr(minutes, "batch_get", recording)
    for n in range(3, 7):  # each event walks past the full part 0 to part 4
        assert realtime_tier([events[n]], 10 + n) == {"batchItemFailures": []}

    minute = (NOW - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M")
    assert read.count((keys.minute_pk(SITE, 0), minute)) == 1  # read once, then known full
    assert realtime_tier(events, 100) == {"batchItemFailures": []}  # a redelivery still dedups
    assert read_realtime(aws_env).pageviews == 7
    assert {i["sk"]["S"]: len(i["eids"]["BS"]) for i in minute_items(aws_env)} == {
        minute: 3,
        f"{minute}#4": 3,
        f"{minute}#8": 1,
    }


def test_a_write_that_meets_a_conflicting_transaction_is_tried_again(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aggregator.handler import get_minute_store

    client = get_minute_store()._client
    original = client.update_item
    conflicts: list[str] = []

    def conflict_once(**kwargs: Any) -> Any:
        if not conflicts:  # the part is in another writer's transaction for a moment
            conflicts.append(kwargs["Key"]["sk"]["S"])
            raise client.exceptions.TransactionConflictException(
                {"Error": {"Code": "TransactionConflictException", "Message": "busy"}},
                "UpdateItem",
            )
        return original(**kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(client, "update_item", conflict_once)
        assert realtime_tier(traffic()) == {"batchItemFailures": []}

    rt = read_realtime(aws_env)
    assert conflicts and rt.current_visitors == 2
    assert rt.top_pages == [("/", 2), ("/a", 2), ("/b", 1)]  # every event, once
