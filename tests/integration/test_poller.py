"""The local event source mapping behaves as Lambda's does, with the settings of core/schema.json."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from typing import Any

import pytest

from core.aws import make_client
from core.schema import EventSourceMapping, load_schema
from local.poller import StreamPoller


class RecordingFunction:
    """A stand-in aggregator: records every batch; fails as told."""

    def __init__(self, poison: set[str] | None = None, partial_fail_at: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.events: list[dict[str, Any]] = []
        self.poison = poison or set()
        self.partial_fail_at = partial_fail_at
        self.completed: list[str] = []

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        pks = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
        self.batches.append(pks)
        self.events.append(event)
        if self.poison & set(pks):
            raise RuntimeError("poison record in batch")
        if self.partial_fail_at in pks:
            index = pks.index(self.partial_fail_at)
            self.partial_fail_at = None  # succeeds on redelivery
            self.completed.extend(pks[:index])
            return {
                "batchItemFailures": [
                    {"itemIdentifier": event["Records"][index]["dynamodb"]["SequenceNumber"]}
                ]
            }
        self.completed.extend(pks)
        return {"batchItemFailures": []}


def put_events(stream: dict[str, Any], count: int) -> list[str]:
    pks = [f"EV#s#{i:04d}" for i in range(count)]
    for pk in pks:
        stream["ddb"].put_item(
            TableName=stream["table"],
            Item={
                "pk": {"S": pk},
                "sk": {"S": "e"},
                "name": {"S": "pageview"},
                "n": {"B": b"\x00\x01"},
            },
        )
    return pks


def poller_for(
    stream: dict[str, Any],
    function: Any,
    *,
    esm: EventSourceMapping | None = None,
    shards: int | None = None,
    **settings: Any,
) -> StreamPoller:
    """A mapping on the stream: `esm` (default: the realtime tier's) with `settings` changed."""
    esm = dataclasses.replace(esm or load_schema().esm, **settings)
    return StreamPoller(
        make_client("dynamodbstreams"),
        stream["sqs"],
        stream["arn"],
        function,
        esm,
        stream["queue"],
        shards=shards,
    )


def dead_letters(stream: dict[str, Any]) -> list[dict[str, Any]]:
    response = stream["sqs"].receive_message(QueueUrl=stream["queue"], MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in response.get("Messages", [])]


def test_batches_respect_batch_size_and_deliver_in_order(stream: dict[str, Any]) -> None:
    pks = put_events(stream, 7)
    function = RecordingFunction()
    poller = poller_for(stream, function, batch_size=3)
    poller.poll_once(flush=True)
    assert [len(b) for b in function.batches] == [3, 3, 1]
    assert [pk for batch in function.batches for pk in batch] == pks


def test_batching_window_holds_a_small_batch_until_it_expires(stream: dict[str, Any]) -> None:
    put_events(stream, 2)
    function = RecordingFunction()
    now = [1000.0]
    esm = dataclasses.replace(load_schema().esm, maximum_batching_window_in_seconds=5)
    poller = StreamPoller(
        make_client("dynamodbstreams"),
        stream["sqs"],
        stream["arn"],
        function,
        esm,
        stream["queue"],
        clock=lambda: now[0],
    )
    poller.poll_once()
    assert function.batches == []
    now[0] += 5
    poller.poll_once()
    assert [len(b) for b in function.batches] == [2]


def test_only_insert_records_reach_the_function(stream: dict[str, Any]) -> None:
    pks = put_events(stream, 2)
    stream["ddb"].delete_item(
        TableName=stream["table"], Key={"pk": {"S": pks[0]}, "sk": {"S": "e"}}
    )  # a TTL delete
    function = RecordingFunction()
    poller = poller_for(stream, function)
    poller.poll_once(flush=True)
    assert function.batches == [pks]
    assert poller.stats.records_filtered == 1


def test_records_are_lambda_shaped(stream: dict[str, Any]) -> None:
    put_events(stream, 1)
    function = RecordingFunction()
    poller_for(stream, function).poll_once(flush=True)
    (record,) = function.events[0]["Records"]
    assert record["eventSourceARN"] == stream["arn"]
    assert record["eventSource"] == "aws:dynamodb" and record["eventName"] == "INSERT"
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)
    assert record["dynamodb"]["NewImage"]["n"] == {"B": "AAE="}  # binary is base64, as in Lambda
    json.dumps(function.events[0])  # the event is plain JSON


def test_function_error_bisects_until_the_poison_record_is_dead_lettered(
    stream: dict[str, Any],
) -> None:
    pks = put_events(stream, 8)
    function = RecordingFunction(poison={pks[5]})
    poller = poller_for(stream, function, batch_size=8, maximum_retry_attempts=2)
    poller.poll_once(flush=True)
    # every record but the poison one was processed exactly by some successful invocation
    assert sorted(function.completed) == sorted(pk for pk in pks if pk != pks[5])
    (letter,) = dead_letters(stream)
    info = letter["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1 and info["streamArn"] == stream["arn"]
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    assert letter["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert letter["requestContext"]["approximateInvokeCount"] == 3  # first try + 2 retries


def test_without_bisect_the_whole_batch_is_retried_then_dead_lettered(
    stream: dict[str, Any],
) -> None:
    pks = put_events(stream, 4)
    function = RecordingFunction(poison={pks[1]})
    poller = poller_for(
        stream,
        function,
        batch_size=4,
        maximum_retry_attempts=1,
        bisect_batch_on_function_error=False,
    )
    poller.poll_once(flush=True)
    assert function.batches == [pks, pks]
    (letter,) = dead_letters(stream)
    assert letter["DDBStreamBatchInfo"]["batchSize"] == 4


def test_partial_batch_response_checkpoints_at_the_reported_record(stream: dict[str, Any]) -> None:
    pks = put_events(stream, 5)
    function = RecordingFunction(partial_fail_at=pks[2])
    poller = poller_for(stream, function, batch_size=5)
    poller.poll_once(flush=True)
    assert function.batches == [pks, pks[2:]]
    assert function.completed == pks
    assert dead_letters(stream) == []


def test_unknown_item_identifier_fails_the_whole_batch(stream: dict[str, Any]) -> None:
    pks = put_events(stream, 3)
    calls: list[int] = []

    def liar(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(len(event["Records"]))
        if len(calls) == 1:
            return {"batchItemFailures": [{"itemIdentifier": "not-a-sequence-number"}]}
        return {"batchItemFailures": []}

    esm = dataclasses.replace(load_schema().esm, bisect_batch_on_function_error=False)
    poller = StreamPoller(
        make_client("dynamodbstreams"), stream["sqs"], stream["arn"], liar, esm, stream["queue"]
    )
    poller.poll_once(flush=True)
    assert calls == [len(pks), len(pks)]


def test_flush_delivers_a_held_batch_at_once_from_the_pollers_thread(
    stream: dict[str, Any],
) -> None:
    # Given a running mapping with the rollup tier's long window holding two records
    function = RecordingFunction()
    poller = poller_for(stream, function, maximum_batching_window_in_seconds=300)
    poller.start()
    try:
        put_events(stream, 2)
        time.sleep(0.5)  # polled and buffered, the window far from over
        assert function.batches == []
        # When the bench asks for a flush, Then the batch is delivered before flush returns
        assert poller.flush(timeout=10)
        assert [len(b) for b in function.batches] == [2]
    finally:
        poller.stop(drain=False)


def test_stopping_a_running_poller_drains_from_its_own_thread_exactly_once(
    stream: dict[str, Any],
) -> None:
    # Given a running mapping holding records in a long window, and a record of which threads poll
    function = RecordingFunction()
    poller = poller_for(stream, function, maximum_batching_window_in_seconds=300)
    pollers: set[str] = set()
    poll_once = poller.poll_once

    def recorded(flush: bool = False) -> bool:
        pollers.add(threading.current_thread().name)
        return poll_once(flush)

    poller.poll_once = recorded  # type: ignore[method-assign]
    poller.start()
    pks = put_events(stream, 3)
    time.sleep(0.5)
    assert function.batches == []

    # When it is stopped with drain
    poller.stop(drain=True)

    # Then the held records were delivered once, and only the poller's thread read the stream
    assert sorted(function.completed) == sorted(pks)
    assert pollers == {"esm-poller"}


def test_dead_letters_name_the_alias_that_gave_up(stream: dict[str, Any]) -> None:
    pks = put_events(stream, 1)
    esm = dataclasses.replace(
        load_schema().tiers["rollup"].esm,
        bisect_batch_on_function_error=False,
        maximum_retry_attempts=0,
    )
    arn = "arn:aws:lambda:us-east-1:000000000000:function:aggregator:rollup"
    poller = StreamPoller(
        make_client("dynamodbstreams"),
        stream["sqs"],
        stream["arn"],
        RecordingFunction(poison=set(pks)),
        esm,
        stream["queue"],
        function_arn=arn,
    )
    poller.poll_once(flush=True)
    (message,) = dead_letters(stream)
    assert message["requestContext"]["functionArn"] == arn


def test_filter_patterns_match_as_lambdas_do() -> None:
    from local.poller import matches

    record = {"eventName": "INSERT", "dynamodb": {"NewImage": {"name": {"S": "pageview"}}}}
    skip = {
        "eventName": ["INSERT"],
        "dynamodb": {"NewImage": {"name": {"S": [{"anything-but": ["engagement"]}]}}},
    }
    assert matches(skip, record)
    engagement = {"eventName": "INSERT", "dynamodb": {"NewImage": {"name": {"S": "engagement"}}}}
    assert not matches(skip, engagement)
    assert not matches(skip, {"eventName": "REMOVE", "dynamodb": record["dynamodb"]})
    # a key the record lacks does not match, whatever the rule
    assert not matches(skip, {"eventName": "INSERT", "dynamodb": {"NewImage": {}}})
    assert matches({"eventName": ["INSERT", "MODIFY"]}, {"eventName": "MODIFY"})
    with pytest.raises(ValueError, match="not emulated"):
        matches({"eventName": [{"prefix": "IN"}]}, {"eventName": "INSERT"})


def test_the_realtime_tier_is_not_invoked_for_engagement_events(stream: dict[str, Any]) -> None:
    # Given a pageview and an engagement event on the stream
    for pk, name in (("EV#s#page", "pageview"), ("EV#s#engaged", "engagement")):
        stream["ddb"].put_item(
            TableName=stream["table"], Item={"pk": {"S": pk}, "sk": {"S": "e"}, "name": {"S": name}}
        )
    # When each tier's mapping reads it
    delivered = {}
    for tier, settings in load_schema().tiers.items():
        function = RecordingFunction()
        poller_for(stream, function, esm=settings.esm).poll_once(flush=True)
        delivered[tier] = [pk for batch in function.batches for pk in batch]
    # Then the rollup tier gets both, the realtime tier the pageview only (filtered: no invocation)
    assert delivered == {"realtime": ["EV#s#page"], "rollup": ["EV#s#page", "EV#s#engaged"]}


def test_no_tier_filters_out_an_event_it_counts() -> None:
    """A tier's pattern may skip engagement events only if the tier ignores them anyway
    (aggregator/processor.py): a filtered record is never counted."""
    from aggregator.processor import ignores_engagement
    from core.keys import Granularity
    from local.poller import matches

    for tier in load_schema().tiers.values():
        granularities = frozenset(Granularity(g) for g in tier.granularities)
        for name in ("pageview", "engagement", "Signup", "Outbound Link: Click"):
            record = {"eventName": "INSERT", "dynamodb": {"NewImage": {"name": {"S": name}}}}
            skipped = not matches(tier.esm.filter_pattern, record)
            assert skipped == (name == "engagement" and ignores_engagement(granularities)), (
                tier.name,
                name,
            )
