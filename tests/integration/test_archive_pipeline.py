"""Events sent through ingest reach the archive exactly once, written by the rollup tier (and the
single tier) after counting: retries, bisects, crashes and redeliveries included (decision 0027)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.faults import FaultyStore, Schedule, Traffic, deliver, stored_events
from tests.integration.pipeline import Pipeline

START = datetime(2026, 11, 25, 23, 20, tzinfo=UTC)


def send_traffic(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, seed: int, events: int
) -> str:
    import ingest.handler

    traffic = Traffic.random(random.Random(seed), events, 5, START, tz="Europe/Berlin")
    pipeline.add_site(traffic.site, tz=traffic.tz)
    for now, body, ip, ua in traffic.payloads():
        monkeypatch.setattr(ingest.handler, "now", lambda now=now: now)
        pipeline.send(body, ip=ip, user_agent=ua)
    return traffic.site


def archived_ids(pipeline: Pipeline, site: str) -> list[str]:
    return sorted(e.event_id for e in pipeline.archived_events(site))


def stored_ids(pipeline: Pipeline) -> list[str]:
    return sorted(e.event_id for e in stored_events(pipeline.ddb, pipeline.names))


@pytest.fixture()
def pipeline(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    monkeypatch.setattr("aggregator.processor.time.sleep", lambda _s: None)
    return Pipeline(aws_env)


def test_rollup_tier_archives_every_accepted_event_and_realtime_writes_nothing(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = send_traffic(pipeline, monkeypatch, seed=1, events=40)
    records = pipeline.read_stream()
    # When the realtime tier has its batch
    assert pipeline.tier_fns["realtime"].invoke({"Records": records}) == {"batchItemFailures": []}
    # Then nothing is archived yet
    assert pipeline.s3.list_objects_v2(Bucket=pipeline.bucket).get("KeyCount") == 0
    # When the rollup tier has it
    assert pipeline.tier_fns["rollup"].invoke({"Records": records}) == {"batchItemFailures": []}
    # Then every stored (accepted) event is archived, once; engagement events too
    archived = pipeline.archived_events(site)
    assert sorted(e.event_id for e in archived) == stored_ids(pipeline)
    assert {e.name for e in archived} >= {"pageview", "engagement"}
    # The days are the site's (Berlin): the traffic starts at 00:20 there on the 26th
    assert {obj.key.day for obj in pipeline.archive().objects(site)} <= {"2026-11-26", "2026-11-27"}


def test_single_tier_archives_too(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    site = send_traffic(pipeline, monkeypatch, seed=2, events=10)
    pipeline.pump()
    assert archived_ids(pipeline, site) == stored_ids(pipeline)


def test_s3_failure_fails_the_batch_from_its_first_item_and_the_retry_archives_it(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, json_logs: Any
) -> None:
    from botocore.exceptions import EndpointConnectionError

    import aggregator.handler

    site = send_traffic(pipeline, monkeypatch, seed=3, events=12)
    records = pipeline.read_stream()
    rollup = pipeline.tier_fns["rollup"]
    store = aggregator.handler.get_archive()
    assert store is not None

    def unreachable(**_: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="https://s3.example")

    # Given S3 cannot be reached
    with monkeypatch.context() as patched:
        patched.setattr(store.s3, "put_object", unreachable)
        # Then the whole batch is reported failed (its counters are written: a retry skips them)
        first = records[0]["dynamodb"]["SequenceNumber"]
        failed = rollup.invoke({"Records": records})
        assert failed == {"batchItemFailures": [{"itemIdentifier": first}]}
    assert any(line["message"] == "archive write failed" for line in json_logs())
    assert pipeline.s3.list_objects_v2(Bucket=pipeline.bucket).get("KeyCount") == 0
    # When S3 is back and Lambda retries the batch
    assert rollup.invoke({"Records": records}) == {"batchItemFailures": []}
    # Then the archive holds every event once
    assert archived_ids(pipeline, site) == stored_ids(pipeline)


def test_only_events_counted_through_are_archived_when_a_batch_stops(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aggregator.handler
    from aggregator.processor import BatchResult

    site = send_traffic(pipeline, monkeypatch, seed=4, events=10)
    records = pipeline.read_stream()
    stop_at = records[6]["dynamodb"]["SequenceNumber"]
    counted = aggregator.handler.count

    def stopped(*args: Any) -> BatchResult:
        result = counted(*args)
        result.failed_sequence_number = stop_at  # as a transaction that could not commit
        return result

    monkeypatch.setattr(aggregator.handler, "count", stopped)
    pipeline.tier_fns["rollup"].invoke({"Records": records})
    first_six = sorted(r["dynamodb"]["NewImage"]["event_id"]["S"] for r in records[:6])
    assert archived_ids(pipeline, site) == first_six


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_archive_holds_each_event_exactly_once_under_the_fault_campaign(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    site = send_traffic(pipeline, monkeypatch, seed=seed, events=60)
    records = pipeline.read_stream()
    rnd = random.Random(seed)
    # Each tier under its own schedule: retries, bisects, duplicates, crashes, reorders, a late
    # redelivery of an old batch
    for function in pipeline.tier_fns.values():
        faults = FaultyStore()
        with faults.installed():
            deliver(function.invoke, records, Schedule.random(rnd, len(records)), faults)
    store = pipeline.archive()
    objects = store.objects(site)
    from archive.parquet import connect

    # Readers see each accepted event once ...
    assert archived_ids(pipeline, site) == stored_ids(pipeline)
    # ... though objects overlap (that is why every reader de-duplicates)
    rows = sum(
        connect().execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0]  # type: ignore[index]
        for path in store.local_files(site, "2026-11-01", "2026-12-31")
    )
    assert rows >= len(stored_ids(pipeline)) and len(objects) >= 2
    # And compaction leaves one object a day with every event once
    from archive.compact import compact_day

    for day in {obj.key.day for obj in objects}:
        compact_day(store, site, day)
    assert len(store.objects(site)) == len({obj.key.day for obj in objects})
    assert archived_ids(pipeline, site) == stored_ids(pipeline)
