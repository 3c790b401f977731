"""`liveinsight dlq replay`: re-run what the dead-letter queue holds.

The queue holds two kinds of on-failure record, told apart by their shape (as Lambda writes them):
- A stream batch the aggregator's event source mapping gave up on (`DDBStreamBatchInfo`): it
  names a shard and a range of sequence numbers, not the records themselves (as in AWS). Replay
  reads that range back from the stream and invokes the aggregator on it, bisecting on errors
  down to single records. Records that still fail are reported and their message stays in the
  queue; their valid neighbours are counted. Each message is replayed through the function ARN
  it names: the alias, so the tier, that gave up (decision 0010). Replaying again is harmless:
  the aggregator skips events its visitor states already hold. Stream records live 24 hours in
  AWS; for older batches use `liveinsight rebuild` over the raw events instead.
- An asynchronous invocation that failed after Lambda's retries (`requestPayload`): the archive
  function's scheduled compaction run (terraform/archive.tf). Replay invokes the function the
  record names with the same payload, synchronously; a run is idempotent (decision 0027). On
  success the message is deleted; on failure it stays and the error is reported.
A message of neither shape is left in the queue and reported.
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
    records: int = 0  # stream records re-read and re-run
    failed: list[str] = field(default_factory=list)  # sequence numbers that still fail
    invocations: int = 0  # failed asynchronous invocations run again
    failed_invocations: list[dict[str, str]] = field(default_factory=list)
    unrecognised: list[str] = field(default_factory=list)  # message ids of neither kind

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "records": self.records,
            "failed": self.failed,
            "invocations": self.invocations,
            "failed_invocations": self.failed_invocations,
            "unrecognised": self.unrecognised,
        }

    @property
    def ok(self) -> bool:
        return not (self.failed or self.failed_invocations or self.unrecognised)


class InvocationError(RuntimeError):
    """The invoked function returned an error (Lambda's FunctionError)."""


def lambda_invoker(client: Any) -> Callable[[str], Invoke]:
    """`invoke_for` over Lambda's Invoke API (a deployment): the function or alias the ARN
    names, synchronously; a function error raises InvocationError."""

    def invoke_for(arn: str) -> Invoke:
        def invoke(event: dict[str, Any]) -> Any:
            response = client.invoke(
                FunctionName=arn,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode(),
            )
            payload = json.loads(response["Payload"].read() or b"null")
            if response.get("FunctionError"):
                raise InvocationError(f"{arn}: {response['FunctionError']}: {payload}")
            return payload

        return invoke

    return invoke_for


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


# Long enough that a message kept during a replay does not come back in the same replay (a
# compaction run may take minutes); kept messages are made visible again at the end.
RECEIVE_VISIBILITY_SECONDS = 900


def replay(
    sqs: Any,
    streams: Any,
    queue_url: str,
    invoke_for: Callable[[str], Invoke],
    max_messages: int = 1000,
) -> ReplayReport:
    """Replay every message; `invoke_for(function ARN)` invokes the function the message names."""
    report = ReplayReport()
    kept: dict[str, str] = {}  # message id -> its latest receipt handle
    while report.messages < max_messages:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=RECEIVE_VISIBILITY_SECONDS,
        )
        messages = response.get("Messages", [])
        if not messages:
            break
        for message in messages:
            if message["MessageId"] in kept:  # back after a very long replay: once is enough
                kept[message["MessageId"]] = message["ReceiptHandle"]
                continue
            report.messages += 1
            if _replay_one(message, streams, invoke_for, report):
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            else:
                kept[message["MessageId"]] = message["ReceiptHandle"]
    # Nothing is dropped: what still fails is in the queue for the next replay (and dlq-depth).
    for handle in kept.values():
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return report


def _replay_one(
    message: dict[str, Any],
    streams: Any,
    invoke_for: Callable[[str], Invoke],
    report: ReplayReport,
) -> bool:
    """Re-run one message; True when all of it succeeded (the message may go)."""
    try:
        body = json.loads(message["Body"])
    except ValueError:
        body = None
    if not isinstance(body, dict):
        report.unrecognised.append(message.get("MessageId", ""))
        return False
    context = body.get("requestContext") or {}
    arn = str(context.get("functionArn", ""))
    if "DDBStreamBatchInfo" in body:
        info = body["DDBStreamBatchInfo"]
        records = read_range(streams, info)
        report.records += len(records)
        still_failing = len(report.failed)
        _run(invoke_for(arn), records, info["streamArn"], report)
        return len(report.failed) == still_failing
    if "requestPayload" in body and arn:
        report.invocations += 1
        try:
            invoke_for(arn)(body["requestPayload"])
        except Exception as error:
            report.failed_invocations.append(
                {
                    "function_arn": arn,
                    "request_id": str(context.get("requestId", "")),
                    "condition": str(context.get("condition", "")),
                    "error": f"{type(error).__name__}: {error}"[:500],
                }
            )
            return False
        return True
    report.unrecognised.append(message.get("MessageId", ""))
    return False
