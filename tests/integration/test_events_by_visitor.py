"""The events table keyed by visitor (decision 0040): the local event source mapping puts every
event of a visitor on one stream shard, as DynamoDB streams a partition's items on one shard, in
the order they were written, and spreads different visitors' events over the shards."""

from __future__ import annotations

from typing import Any

from core.events import RawEvent
from tests.integration.test_poller import RecordingFunction, poller_for

SHARDS = 4
TS = 1_764_000_000_000


def put_visits(stream: dict[str, Any], visitors: int, events_each: int) -> dict[str, str]:
    """`events_each` events of each of `visitors` visitors, interleaved as traffic is, as ingest
    writes them; event id → visitor id."""
    owners: dict[str, str] = {}
    for n in range(events_each):
        for v in range(visitors):
            visitor, event_id = f"{v:016x}", f"e{v}-{n}"
            event = RawEvent(event_id, "blog.example", TS + n, "pageview", visitor)
            stream["ddb"].put_item(TableName=stream["table"], Item=event.to_item(ttl=2_000_000_000))
            owners[event_id] = visitor
    return owners


def test_a_visitors_events_share_one_shard_in_order_and_visitors_spread_over_shards(
    stream: dict[str, Any],
) -> None:
    # Given 12 visitors' events, 5 each, interleaved in the stream
    owners = put_visits(stream, visitors=12, events_each=5)
    # When a 4-shard mapping has read them (a long window: they wait in their shards' batches)
    function = RecordingFunction()
    poller = poller_for(stream, function, shards=SHARDS, maximum_batching_window_in_seconds=300)
    poller.poll_once()
    buffered = {
        shard_id: [r["dynamodb"]["Keys"]["sk"]["S"] for r in shard.buffer]
        for shard_id, shard in poller._shards.items()
    }
    assert function.events == []  # nothing delivered yet
    # Then every event waits on exactly one shard
    assert sorted(e for events in buffered.values() for e in events) == sorted(owners)
    # And all of a visitor's events on the same one, in the order they were written
    shards_of: dict[str, set[str]] = {}
    for shard_id, events in buffered.items():
        for event_id in events:
            shards_of.setdefault(owners[event_id], set()).add(shard_id)
    assert all(len(shards) == 1 for shards in shards_of.values()), shards_of
    for visitor, (shard_id,) in shards_of.items():
        theirs = [e for e in buffered[shard_id] if owners[e] == visitor]
        assert theirs == [f"e{int(visitor, 16)}-{n}" for n in range(5)]
    # And the visitors are spread over the shards (12 visitors: more than one shard, by far)
    assert len({shard_id for shards in shards_of.values() for shard_id in shards}) >= 3


def test_a_snapshot_saved_before_keeps_its_raw_events_keyed_by_visitor(
    aws_env: dict[str, str], tmp_path: Any
) -> None:
    import json

    from core import keys
    from core.aws import make_client
    from local import tables

    # Given a local snapshot whose raw event was saved keyed by its id alone (before 0040)
    event = RawEvent("e1", "blog.example", TS, "pageview", "00000000000000aa")
    old = {**event.to_item(ttl=2_000_000_000)}
    old.pop("sk")
    old["pk"] = {"S": keys.legacy_event_pk("blog.example", "e1")}
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps({"version": 1, "tables": {"events": [old]}}))
    # When the stack restores it
    ddb = make_client("dynamodb")
    names = {"events": aws_env["events"]}
    assert tables.load_snapshot(ddb, names, path) == 1
    # Then the event is in the events table, keyed by its visitor and its id
    (item,) = tables.scan_all(ddb, aws_env["events"])
    assert (item["pk"]["S"], item["sk"]["S"]) == (
        keys.event_pk("blog.example", event.visitor_id),
        "e1",
    )
    assert {k: v for k, v in item.items() if k != "sk"} == {**old, "pk": item["pk"]}
