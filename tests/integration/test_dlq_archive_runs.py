"""The archive function's failed runs in the dead-letter queue (decision 0026's amendment): the
local stack's schedule invokes it as Lambda invokes asynchronously (retries, then a failure record
on the queue), and `dlq replay` runs such a record again beside the stream batches it has always
replayed."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from archive.handler import handler as archive_handler
from archive.store import ArchiveStore
from core.aws import make_client
from core.schema import load_schema
from local import tables
from local.async_invoke import MAXIMUM_RETRY_ATTEMPTS
from local.cli import _local_invoker
from local.dlq import replay
from local.poller import AGGREGATOR_ARN, StreamPoller
from local.runtime import LocalFunction
from local.stack import LocalStack, StackConfig
from tests.integration.pipeline import Pipeline
from tests.integration.test_archive_store import event

SITE = "replay.example"
JAN_10 = int(datetime(2026, 1, 10, 12, tzinfo=UTC).timestamp() * 1000)
JAN_12 = int(datetime(2026, 1, 12, tzinfo=UTC).timestamp() * 1000)
RUN_AT = datetime(2026, 1, 20, 3, tzinfo=UTC)  # the schedule's time: within every retention


class Flaky:
    """The real handler behind an outage (S3 refusing) for its first `failures` calls."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("S3 unavailable")
        return archive_handler(event, context)


@pytest.fixture()
def queue(aws_env: dict[str, str]) -> str:
    url: str = make_client("sqs").create_queue(QueueName=f"{aws_env['events']}-dlq")["QueueUrl"]
    return url


@pytest.fixture()
def store(aws_env: dict[str, str], tmp_path: Path) -> ArchiveStore:
    from core import settings

    bucket = settings.load(settings.ArchiveSettings).archive_bucket
    return ArchiveStore(make_client("s3"), bucket, tmp_path / "cache")


def stack_running(function: LocalFunction, queue: str, tmp_path: Path) -> LocalStack:
    """The local stack's schedule, with just what it needs: the archive function and the queue."""
    stack = LocalStack(StackConfig(data_dir=tmp_path / "stack", persist=False))
    stack.functions = {"archive": function}
    stack.dlq_url = queue
    return stack


def messages_in(queue: str) -> list[dict[str, Any]]:
    """The queue's messages, left in it."""
    response = make_client("sqs").receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0
    )
    return [json.loads(m["Body"]) for m in response.get("Messages", [])]


def two_parts_a_day(store: ArchiveStore) -> None:
    store.write_batch([event(0, ts=JAN_10, site=SITE, tz="UTC")])
    store.write_batch([event(1, ts=JAN_10, site=SITE, tz="UTC")])


def objects_of_day(store: ArchiveStore, day: str) -> int:
    return len(store.objects(SITE, day, day))


def test_a_scheduled_run_failing_past_its_retries_puts_lambdas_failure_record_on_the_queue(
    aws_env: dict[str, str], queue: str, store: ArchiveStore, tmp_path: Path
) -> None:
    # Given a day of two archive objects and a compaction run that fails every time
    two_parts_a_day(store)
    flaky = Flaky(failures=MAXIMUM_RETRY_ATTEMPTS + 1)
    stack = stack_running(LocalFunction("archive", flaky, timeout_seconds=900), queue, tmp_path)
    # When the schedule fires
    assert stack.compact_archive(RUN_AT) is None
    # Then the run was tried three times (the first and two retries), as Lambda does
    assert flaky.calls == MAXIMUM_RETRY_ATTEMPTS + 1
    # And its failure record is on the queue, shaped as Lambda writes it
    (record,) = messages_in(queue)
    assert record["version"] == "1.0" and record["timestamp"]
    context = record["requestContext"]
    assert context["functionArn"].endswith(":function:archive:$LATEST")
    assert context["condition"] == "RetriesExhausted"
    assert context["approximateInvokeCount"] == MAXIMUM_RETRY_ATTEMPTS + 1
    assert record["requestPayload"]["time"] == "2026-01-20T03:00:00Z"
    assert record["requestPayload"]["detail-type"] == "Scheduled Event"
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorMessage"] == "S3 unavailable"
    assert objects_of_day(store, "2026-01-10") == 2  # left as it was


def test_a_run_that_succeeds_on_a_retry_leaves_the_queue_empty(
    aws_env: dict[str, str], queue: str, store: ArchiveStore, tmp_path: Path
) -> None:
    two_parts_a_day(store)
    flaky = Flaky(failures=MAXIMUM_RETRY_ATTEMPTS)  # the last retry succeeds
    stack = stack_running(LocalFunction("archive", flaky, timeout_seconds=900), queue, tmp_path)
    summary = stack.compact_archive(RUN_AT)
    assert summary is not None and summary["days_compacted"] == 1
    assert messages_in(queue) == []
    assert objects_of_day(store, "2026-01-10") == 1


def dead_letter_a_rollup_batch(pipeline: Pipeline, queue: str) -> int:
    """The rollup tier's event source mapping giving up on the stream's events at once (no
    retry, no bisection): one DDBStreamBatchInfo message. The number of records it names."""
    esm = dataclasses.replace(
        load_schema().tiers["rollup"].esm,
        maximum_retry_attempts=0,
        bisect_batch_on_function_error=False,
        maximum_batching_window_in_seconds=0,
    )

    def refuse(_event: dict[str, Any]) -> Any:
        raise RuntimeError("aggregates table unavailable")

    poller = StreamPoller(
        make_client("dynamodbstreams"),
        make_client("sqs"),
        tables.stream_arn(pipeline.ddb, pipeline.names["events"]),
        refuse,
        esm,
        queue,
        function_arn=f"{AGGREGATOR_ARN}:rollup",
    )
    for _ in range(3):
        poller.poll_once(flush=True)
    assert poller.stats.dead_lettered_batches == 1
    return poller.stats.records_delivered


def test_replay_reruns_a_failed_archive_run_and_the_stream_batch_beside_it(
    aws_env: dict[str, str],
    queue: str,
    store: ArchiveStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ingest.handler

    # Given a stream batch the rollup tier gave up on (three pageviews on 2026-01-12)
    pipeline = Pipeline(aws_env)
    pipeline.add_site(SITE)
    monkeypatch.setattr(ingest.handler, "now", lambda: datetime(2026, 1, 12, 9, tzinfo=UTC))
    for n in range(3):
        page = {"n": "pageview", "u": f"https://{SITE}/p{n}", "d": SITE}
        assert pipeline.send(page, ip=f"198.51.100.{n + 1}").status == 202
    records = dead_letter_a_rollup_batch(pipeline, queue)
    assert records == 3
    # And, beside it, a compaction run that failed past its retries
    two_parts_a_day(store)
    stack = stack_running(
        LocalFunction("archive", Flaky(failures=99), timeout_seconds=900), queue, tmp_path
    )
    assert stack.compact_archive(RUN_AT) is None
    assert len(messages_in(queue)) == 2
    local = _local_invoker()

    # When on-call replays while the archive's outage goes on
    still_down = Flaky(failures=99)

    def invoke_for(arn: str) -> Any:
        if ":function:archive" in arn:
            return lambda e: still_down(e, None)
        return local(arn)

    first = replay(make_client("sqs"), make_client("dynamodbstreams"), queue, invoke_for)
    # Then the stream batch is counted and archived, and its message deleted; the archive run
    # failed again: reported, and its message kept (visible again for the next replay)
    assert (first.messages, first.records, first.failed) == (2, 3, [])
    assert first.invocations == 1 and not first.ok
    (failure,) = first.failed_invocations
    assert failure["function_arn"].endswith(":function:archive:$LATEST")
    assert failure["condition"] == "RetriesExhausted"
    assert "S3 unavailable" in failure["error"]
    replayed = [e for e in pipeline.archived_events(SITE) if e.ts >= JAN_12]
    assert sorted(e.page for e in replayed) == ["/p0", "/p1", "/p2"]
    (kept,) = messages_in(queue)
    assert "requestPayload" in kept
    assert first.as_dict()["failed_invocations"] == [failure]

    # When the outage is over and on-call replays again (the CLI's local functions)
    second = replay(make_client("sqs"), make_client("dynamodbstreams"), queue, local)
    # Then the run is done: the day is one object, and the queue is empty
    assert (second.messages, second.invocations, second.failed_invocations) == (1, 1, [])
    assert second.ok
    assert objects_of_day(store, "2026-01-10") == 1
    assert messages_in(queue) == []


def test_replay_keeps_and_reports_a_message_of_neither_kind(
    aws_env: dict[str, str], queue: str
) -> None:
    sqs = make_client("sqs")
    sqs.send_message(QueueUrl=queue, MessageBody='{"something": "else"}')
    report = replay(sqs, make_client("dynamodbstreams"), queue, _local_invoker())
    assert report.messages == 1 and len(report.unrecognised) == 1 and not report.ok
    assert messages_in(queue) == [{"something": "else"}]


def test_replay_refuses_a_function_it_does_not_know(aws_env: dict[str, str], queue: str) -> None:
    record = {
        "version": "1.0",
        "requestContext": {
            "requestId": "r1",
            "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:nobody:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": {},
    }
    sqs = make_client("sqs")
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(record))
    report = replay(sqs, make_client("dynamodbstreams"), queue, _local_invoker())
    (failure,) = report.failed_invocations
    assert "no local function" in failure["error"]
    assert len(messages_in(queue)) == 1


class FakeLambda:
    """Lambda's Invoke API as boto3 answers it: a payload stream, FunctionError on an error."""

    def __init__(self, error: str | None) -> None:
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **request: Any) -> dict[str, Any]:
        import io

        self.calls.append(request)
        answer: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(b'{"ok": true}')}
        if self.error:
            answer["FunctionError"] = self.error
            answer["Payload"] = io.BytesIO(b'{"errorMessage": "S3 unavailable"}')
        return answer


def test_on_a_deployment_replay_invokes_the_named_function_synchronously() -> None:
    from local.dlq import InvocationError, lambda_invoker

    arn = "arn:aws:lambda:eu-west-1:1:function:liveinsight-prod-archive:$LATEST"
    good = FakeLambda(None)
    assert lambda_invoker(good)(arn)({"time": "t"}) == {"ok": True}
    (call,) = good.calls
    assert call["FunctionName"] == arn and call["InvocationType"] == "RequestResponse"
    assert json.loads(call["Payload"]) == {"time": "t"}
    with pytest.raises(InvocationError, match="S3 unavailable"):
        lambda_invoker(FakeLambda("Unhandled"))(arn)({})
