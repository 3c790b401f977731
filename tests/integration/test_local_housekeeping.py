"""The local stack's reach into moto's memory (local/emulator.py): snapshots read from it hold what
a Scan returns, and trimming the stream or expiring iterators frees memory without changing what
a reader gets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.aws import make_client
from core.schema import load_schema
from local import emulator, tables
from local.poller import StreamPoller


def _sorted(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: (item["pk"]["S"], item.get("sk", {}).get("S", "")))


def test_snapshot_read_from_memory_holds_what_a_scan_returns(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    # Given items of every attribute type, binary ones nested too
    ddb = make_client("dynamodb")
    for i in range(30):
        ddb.put_item(
            TableName=aws_env["aggregates"],
            Item={
                "pk": {"S": f"C#site{i % 3}.example#d#_"},
                "sk": {"S": f"2026-11-{i + 1:02d}"},
                "z": {"B": bytes([i, 0, 255])},
                "n": {"N": str(i * 1.5)},
                "ks": {"SS": ["a", f"k{i}"]},
                "ns": {"NS": ["1", str(i + 2)]},
                "bs": {"BS": [b"\x00", bytes([i + 1])]},
                "m": {"M": {"inner": {"B": b"\x01\x02"}, "l": {"L": [{"S": "x"}, {"N": "2"}]}}},
                "flag": {"BOOL": i % 2 == 0},
                "none": {"NULL": True},
            },
        )
    scanned = _sorted(tables.scan_all(ddb, aws_env["aggregates"]))

    # When the table is read from moto's memory, saved, and loaded into fresh tables
    in_memory = emulator.table_items(aws_env["aggregates"])
    assert in_memory is not None
    snapshot = tmp_path / "snapshot.json"
    assert tables.save_snapshot(ddb, aws_env, snapshot) == 30
    json.loads(snapshot.read_text())  # plain JSON
    restored = {logical: f"{name}-restored" for logical, name in aws_env.items()}
    tables.create_tables(ddb, restored, with_stream=False)
    tables.load_snapshot(ddb, restored, snapshot)

    # Then each holds exactly what a Scan returns
    assert _sorted(in_memory) == scanned
    assert _sorted(tables.scan_all(ddb, restored["aggregates"])) == scanned


def test_a_table_not_in_this_process_is_read_by_scan() -> None:
    assert emulator.table_items("no-such-table-anywhere") is None


class Recording:
    def __init__(self) -> None:
        self.sequence_numbers: list[int] = []

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.sequence_numbers += [int(r["dynamodb"]["SequenceNumber"]) for r in event["Records"]]
        return {"batchItemFailures": []}


def _put_events(ddb: Any, table: str, first: int, count: int) -> None:
    for i in range(first, first + count):
        ddb.put_item(
            TableName=table,
            Item={"pk": {"S": f"EV#trim.example#{i}"}, "sk": {"S": "e"}, "name": {"S": "pageview"}},
        )


def _realtime_poller(aws_env: dict[str, str], function: Recording) -> StreamPoller:
    """The realtime tier's event source mapping on the events table, with a dead-letter queue."""
    sqs = make_client("sqs")
    return StreamPoller(
        make_client("dynamodbstreams"),
        sqs,
        tables.stream_arn(make_client("dynamodb"), aws_env["events"]),
        function,
        load_schema().tiers["realtime"].esm,
        sqs.create_queue(QueueName=f"{aws_env['events']}-dlq")["QueueUrl"],
    )


def test_a_trimmed_stream_keeps_delivering_what_comes_after(aws_env: dict[str, str]) -> None:
    # Given a poller that has read five records
    ddb = make_client("dynamodb")
    function = Recording()
    poller = _realtime_poller(aws_env, function)
    _put_events(ddb, aws_env["events"], 0, 5)
    poller.poll_once(flush=True)
    assert len(function.sequence_numbers) == 5
    read = int(poller.stats.last_read_sequence_number)

    # When the stream is trimmed below what it read
    assert emulator.trim_stream(aws_env["events"], read + 1) == 5
    assert emulator.trim_stream(aws_env["events"], read + 1) == 0  # nothing left to free there

    # Then the next records are delivered, numbered on from the last
    _put_events(ddb, aws_env["events"], 5, 3)
    poller.poll_once(flush=True)
    assert function.sequence_numbers[5:] == [read + 1, read + 2, read + 3]


def test_shard_iterators_are_forgotten_after_their_lifetime(
    aws_env: dict[str, str],
) -> None:
    streams = make_client("dynamodbstreams")
    arn = tables.stream_arn(make_client("dynamodb"), aws_env["events"])
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]

    def iterator() -> str:
        found: str = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST"
        )["ShardIterator"]
        return found

    issued: dict[str, float] = {}
    old = iterator()
    emulator.expire_iterators(issued, now=0.0)
    recent = iterator()
    emulator.expire_iterators(issued, now=emulator.ITERATOR_LIFETIME / 2)

    assert emulator.expire_iterators(issued, now=emulator.ITERATOR_LIFETIME + 1) >= 1
    assert old not in issued and recent in issued
    streams.get_records(ShardIterator=recent)  # still good
    try:
        streams.get_records(ShardIterator=old)
    except Exception:  # moto answers an unknown iterator with a server error
        pass
    else:
        raise AssertionError("an expired iterator still reads")


def test_a_poller_whose_iterator_expired_resumes_after_its_last_record(
    aws_env: dict[str, str],
) -> None:
    # Given a poller that has read three records, and every iterator then expired
    ddb = make_client("dynamodb")
    function = Recording()
    poller = _realtime_poller(aws_env, function)
    _put_events(ddb, aws_env["events"], 0, 3)
    poller.poll_once(flush=True)
    issued: dict[str, float] = {}
    emulator.expire_iterators(issued, now=0.0)
    emulator.expire_iterators(issued, now=emulator.ITERATOR_LIFETIME + 1)

    # When more records come
    _put_events(ddb, aws_env["events"], 3, 2)
    poller.poll_once(flush=True)

    # Then they are delivered once each, and nothing is delivered twice
    assert len(function.sequence_numbers) == 5
    assert len(set(function.sequence_numbers)) == 5
