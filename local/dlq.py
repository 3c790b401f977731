"""`liveinsight dlq replay`: re-run the records of dead-lettered stream batches.

An on-failure record from the event source mapping names a shard and a range of sequence numbers,
not the records themselves (as in AWS). Replay reads that range back from the stream and invokes
the aggregator on it, bisecting on errors down to single records. Records that still fail are
reported and their message stays in the queue; their valid neighbours are counted. Each message
is replayed through the function ARN it names: the alias, so the tier, that gave up (decision
0010). Replaying again is harmless: the aggregator skips events its visitor states already hold.
Stream records live 24 hours in AWS; for older batches use `liveinsight rebuild` over the raw
events instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.poller import to_lambda_record

Invoke = Callable[[dict[str, Any]], Any]


@dataclass
class ReplayReport:
    messages: int = 0
    records: int = 0
    failed: list[str] = field(default_factory=list)  # sequence numbers that still fail

    def as_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "records": self.records, "failed": self.failed}


def read_range(streams: Any, info: dict[str, Any]) -> list[dict[str, Any]]:
    first, last = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    iterator = streams.get_shard_iterator(
        StreamArn=info["streamArn"],
        ShardId=info["shardId"],
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=info["startSequenceNumber"],
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    while iterator:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        for record in page["Records"]:
            sequence = int(record["dynamodb"]["SequenceNumber"])
            if sequence > last:
                return records
            if sequence >= first and record["eventName"] == "INSERT":
                records.append(record)
        if not page["Records"]:
            break
        iterator = page.get("NextShardIterator")
    return records


def _run(invoke: Invoke, records: list[dict[str, Any]], arn: str, report: ReplayReport) -> None:
    """Invoke with the records; bisect on errors; follow partial batch responses."""
    if not records:
        return
    try:
        response = invoke({"Records": [to_lambda_record(r, arn) for r in records]})
        failures = (response or {}).get("batchItemFailures") or []
    except Exception:
        failures = [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]
    if not failures:
        return
    if len(records) == 1:
        report.failed.append(records[0]["dynamodb"]["SequenceNumber"])
        return
    numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
    failed_at = (
        numbers.index(failures[0]["itemIdentifier"])
        if failures[0].get("itemIdentifier") in numbers
        else 0
    )
    if failed_at > 0:
        _run(invoke, records[failed_at:], arn, report)
        return
    half = max(1, len(records) // 2)
    _run(invoke, records[:half], arn, report)
    _run(invoke, records[half:], arn, report)


def replay(
    sqs: Any,
    streams: Any,
    queue_url: str,
    invoke_for: Callable[[str], Invoke],
    max_messages: int = 1000,
) -> ReplayReport:
    """Replay every message; `invoke_for(function ARN)` invokes the function the message names."""
    report = ReplayReport()
    while report.messages < max_messages:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        messages = response.get("Messages", [])
        if not messages:
            break
        for message in messages:
            body = json.loads(message["Body"])
            info = body["DDBStreamBatchInfo"]
            invoke = invoke_for(body.get("requestContext", {}).get("functionArn", ""))
            records = read_range(streams, info)
            report.messages += 1
            report.records += len(records)
            still_failing = len(report.failed)
            _run(invoke, records, info["streamArn"], report)
            if len(report.failed) == still_failing:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            # else: keep it; it comes back after its visibility timeout, nothing is dropped
    return report
