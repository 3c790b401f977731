"""Operations under injected faults: the local event source mapping with faults on, poison records
in the dead-letter queue, `dlq replay`, and `rebuild` — every count checked against the oracle."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.aws import make_client
from core.events import RawEvent
from core.keys import parse_counter_sk
from local import tables
from local.dlq import replay
from local.faults import Faults
from local.poller import StreamPoller, tier_pollers
from tests import oracle
from tests.faults import Traffic, mismatches, stored_counters, stored_events
from tests.integration.pipeline import Pipeline

START = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)


@pytest.fixture()
def loaded(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[Pipeline, str]:
    """Traffic across midnight through the real ingest handler, plus one poison record."""
    import ingest.handler

    pipeline = Pipeline(aws_env)
    traffic = Traffic.random(random.Random(5), 60, 6, START, tz="Europe/Berlin")
    pipeline.add_site(traffic.site, tz=traffic.tz)
    for now, body, ip, ua in traffic.payloads():
        monkeypatch.setattr(ingest.handler, "now", lambda now=now: now)
        assert pipeline.send(body, ip=ip, user_agent=ua).status == 202
    # A record that parses but cannot be folded (a time zone that does not exist): a poison.
    poison = RawEvent(
        event_id="poison",
        site=traffic.site,
        ts=int(START.timestamp() * 1000) + 5,
        name="pageview",
        visitor_id="ffffffffffffffff",
        tz="Mars/Olympus",
    )
    pipeline.ddb.put_item(TableName=aws_env["events"], Item=poison.to_item(ttl=2_000_000_000))
    for now, body, ip, ua in Traffic.random(
        random.Random(6), 20, 3, START.replace(hour=23, minute=59), tz="Europe/Berlin"
    ).payloads():
        monkeypatch.setattr(ingest.handler, "now", lambda now=now: now)
        pipeline.send(body, ip=ip, user_agent=ua)
    monkeypatch.setattr("aggregator.processor.time.sleep", lambda _s: None)
    return pipeline, traffic.site


def valid_oracle(pipeline: Pipeline) -> oracle.Counters:
    return oracle.compute(
        e for e in stored_events(pipeline.ddb, pipeline.names) if e.event_id != "poison"
    )


def run_poller(pipeline: Pipeline, faults: Faults) -> tuple[list[StreamPoller], str]:
    """Both tiers' event source mappings (as in AWS: one per alias) over the stream, faults on."""
    import aggregator.handler

    sqs = make_client("sqs")
    queue = sqs.create_queue(QueueName=f"{pipeline.names['events']}-dlq")["QueueUrl"]
    faults.install_on(aggregator.handler.get_client())
    pollers = tier_pollers(
        make_client("dynamodbstreams"),
        sqs,
        tables.stream_arn(pipeline.ddb, pipeline.names["events"]),
        lambda name: pipeline.tier_fns[name].invoke,
        queue,
        faults=faults,
        esm_for=lambda _, esm: dataclasses.replace(esm, batch_size=7, maximum_retry_attempts=2),
    )
    for _ in range(20):
        for poller in pollers.values():
            poller.poll_once(flush=True)
    return list(pollers.values()), queue


def tier_named_in(function_arn: str, pipeline: Pipeline) -> Any:
    """What Lambda does with a qualified ARN: invoke that alias (an unknown one fails loudly)."""
    from aggregator.handler import qualifier

    return pipeline.tier_fns[qualifier(function_arn)].invoke


def test_faulty_delivery_dead_letters_only_the_poison_and_replay_completes_the_counts(
    loaded: tuple[Pipeline, str],
) -> None:
    pipeline, _ = loaded
    faults = Faults(
        seed=7,
        shards=3,
        duplicate=0.2,
        lost_response=0.2,
        crash_before=0.1,
        throttle=0.2,
        conflict=0.1,
    )
    # Given the stream delivered through the emulated event source mapping with every fault on
    pollers, queue = run_poller(pipeline, faults)
    assert all(poller.stats.dead_lettered_batches >= 1 for poller in pollers)
    assert len(faults.counts) >= 3, faults.counts  # several kinds of fault really happened
    # When on-call replays the dead-letter queue
    report = replay(
        make_client("sqs"),
        make_client("dynamodbstreams"),
        queue,
        lambda arn: tier_named_in(arn, pipeline),
    )
    # Then only the poison record still fails (in each tier), and every count equals the oracle
    poison_seq = [
        r["dynamodb"]["SequenceNumber"]
        for r in make_client("dynamodbstreams").get_records(
            ShardIterator=make_client("dynamodbstreams").get_shard_iterator(
                StreamArn=tables.stream_arn(pipeline.ddb, pipeline.names["events"]),
                ShardId=make_client("dynamodbstreams").describe_stream(
                    StreamArn=tables.stream_arn(pipeline.ddb, pipeline.names["events"])
                )["StreamDescription"]["Shards"][0]["ShardId"],
                ShardIteratorType="TRIM_HORIZON",
            )["ShardIterator"]
        )["Records"]
        if r["dynamodb"]["Keys"]["sk"]["S"] == "poison"
    ]
    assert report.failed == poison_seq * 2
    assert mismatches(valid_oracle(pipeline), stored_counters(pipeline.ddb, pipeline.names)) == []
    # and replaying again changes nothing
    before = stored_counters(pipeline.ddb, pipeline.names)
    replay(
        make_client("sqs"),
        make_client("dynamodbstreams"),
        queue,
        lambda arn: tier_named_in(arn, pipeline),
    )
    assert stored_counters(pipeline.ddb, pipeline.names) == before


def test_rebuild_restores_the_oracle_counts_and_is_idempotent(loaded: tuple[Pipeline, str]) -> None:
    from aggregator.rebuild import rebuild

    pipeline, site = loaded
    run_poller(pipeline, Faults(seed=1))
    # Given aggregates damaged by a bug: a wrong counter, a missing item and a stray one
    aggregates = pipeline.names["aggregates"]
    items = tables.scan_all(pipeline.ddb, aggregates)
    day = next(i for i in items if "#d#" in i["pk"]["S"])  # a base, or a slot (0015)
    pipeline.ddb.update_item(
        TableName=aggregates,
        Key={"pk": {"S": f"C#{site}#d#_"}, "sk": {"S": parse_counter_sk(day["sk"]["S"])}},
        UpdateExpression="ADD pageviews :x",
        ExpressionAttributeValues={":x": {"N": "1000"}},
    )
    page = next(i for i in items if i["pk"]["S"].endswith("#h#_"))
    pipeline.ddb.delete_item(TableName=aggregates, Key={"pk": page["pk"], "sk": page["sk"]})
    pipeline.ddb.put_item(
        TableName=aggregates,
        Item={
            "pk": {"S": f"C#{site}#d#source"},
            "sk": {"S": "2026-11-20"},
            "visits|Bogus": {"N": "9"},
        },
    )

    # When rebuilding November in the site's time zone
    berlin = ZoneInfo("Europe/Berlin")

    def run_berlin() -> Any:
        return rebuild(
            pipeline.ddb,
            pipeline.names["events"],
            aggregates,
            site,
            "Europe/Berlin",
            datetime(2026, 11, 1, tzinfo=berlin),
            datetime(2026, 12, 1, tzinfo=berlin),
            datetime(2026, 12, 1, tzinfo=UTC),  # "now": after all the traffic
            172800,
        )

    first = run_berlin()
    assert first.events_read > 0 and first.poison == ["poison"]
    # (the stray item is deleted; so are other shards of rebuilt buckets, now summed in shard 0)
    stray = {"pk": {"S": f"C#{site}#d#source"}, "sk": {"S": "2026-11-20"}}
    assert "Item" not in pipeline.ddb.get_item(TableName=aggregates, Key=stray)
    expected = valid_oracle(pipeline)
    actual = stored_counters(pipeline.ddb, pipeline.names)
    # Then every cell equals the oracle again
    assert mismatches(expected, actual) == []
    # And a second run writes the same items: nothing changes
    before = tables.scan_all(pipeline.ddb, aggregates)
    run_berlin()
    after = tables.scan_all(pipeline.ddb, aggregates)
    assert after == before
