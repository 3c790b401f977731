"""`rebuild` from the event archive: counters of any range come back equal to the oracle's, after
the raw events left the events table (decision 0027)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from core.keys import parse_counter_sk
from local import tables
from tests import oracle
from tests.faults import Traffic, mismatches, stored_counters, stored_events
from tests.integration.pipeline import Pipeline

START = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def test_rebuild_from_the_archive_restores_the_oracle_counts_after_the_raw_events_expired(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.handler
    from aggregator.rebuild import rebuild

    pipeline = Pipeline(aws_env)
    traffic = Traffic.random(random.Random(5), 80, 6, START, tz="Europe/Berlin")
    pipeline.add_site(traffic.site, tz=traffic.tz)
    for now, body, ip, ua in traffic.payloads():
        monkeypatch.setattr(ingest.handler, "now", lambda now=now: now)
        pipeline.send(body, ip=ip, user_agent=ua)
    monkeypatch.setattr("aggregator.processor.time.sleep", lambda _s: None)
    records = pipeline.read_stream()
    for start in range(0, len(records), 9):  # the single tier counts and archives
        assert pipeline.aggregate(records[start : start + 9]) == {"batchItemFailures": []}
    expected = oracle.compute(stored_events(pipeline.ddb, pipeline.names))
    site = traffic.site

    # Given the raw events gone from the table (their 7 days passed) ...
    for item in tables.scan_all(pipeline.ddb, aws_env["events"]):
        pipeline.ddb.delete_item(
            TableName=aws_env["events"], Key={"pk": item["pk"], "sk": item["sk"]}
        )
    # ... and aggregates damaged by a bug: a wrong counter, a missing item and a stray one
    aggregates = aws_env["aggregates"]
    items = tables.scan_all(pipeline.ddb, aggregates)
    day = next(i for i in items if "#d#" in i["pk"]["S"])
    pipeline.ddb.update_item(
        TableName=aggregates,
        Key={"pk": {"S": f"C#{site}#d#_"}, "sk": {"S": parse_counter_sk(day["sk"]["S"])}},
        UpdateExpression="ADD pageviews :x",
        ExpressionAttributeValues={":x": {"N": "1000"}},
    )
    hour = next(i for i in items if i["pk"]["S"].endswith("#h#_"))
    pipeline.ddb.delete_item(TableName=aggregates, Key={"pk": hour["pk"], "sk": hour["sk"]})
    stray = {"pk": {"S": f"C#{site}#d#source"}, "sk": {"S": "2026-11-20"}}
    pipeline.ddb.put_item(TableName=aggregates, Item={**stray, "visits|Bogus": {"N": "9"}})
    assert mismatches(expected, stored_counters(pipeline.ddb, pipeline.names)) != []

    # When November is rebuilt from the archive, weeks later
    def run() -> object:
        return rebuild(
            pipeline.ddb,
            aws_env["events"],
            aggregates,
            site,
            "Europe/Berlin",
            datetime(2026, 11, 1, tzinfo=BERLIN),
            datetime(2026, 12, 1, tzinfo=BERLIN),
            datetime(2026, 12, 20, tzinfo=UTC),
            172800,
            archive=pipeline.archive(),
        )

    report = run()
    # Then every cell equals the oracle again (the minutes, long expired, are left as they were)
    assert report.events_read == len(records)  # type: ignore[attr-defined]
    assert "Item" not in pipeline.ddb.get_item(TableName=aggregates, Key=stray)
    assert mismatches(expected, stored_counters(pipeline.ddb, pipeline.names)) == []
    # And a second run writes the same items
    before = tables.scan_all(pipeline.ddb, aggregates)
    run()
    assert tables.scan_all(pipeline.ddb, aggregates) == before
