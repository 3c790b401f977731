"""Exactly-once counts under what Lambda really does: retries, bisects, redelivery, crashes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aggregator.store import AggregateStore, CommitOutcome
from tests.integration.pipeline import Pipeline

SITE = "exact.example"


# Ingest's clock and the query's, pinned inside one minute: per-minute visitors counted on the
# wall clock split a visitor over two minutes when the traffic crossed one (a flake, seen).
SENT = datetime(2026, 3, 10, 12, 0, 20, tzinfo=UTC)


@pytest.fixture()
def pipeline(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    import ingest.handler
    from query_api.app import app
    from query_api.deps import clock

    ticks = itertools.count()  # a second an event, as sent one after the other: :20 to :28
    monkeypatch.setattr(ingest.handler, "now", lambda: SENT + timedelta(seconds=next(ticks)))
    monkeypatch.setitem(app.dependency_overrides, clock, lambda: SENT + timedelta(seconds=30))
    return Pipeline(aws_env)


def traffic(pipeline: Pipeline) -> tuple[str, list[dict[str, Any]]]:
    """Three visitors, seven pageviews, one custom event; returns the site key and stream records."""
    key = pipeline.add_site(SITE)
    plan = [
        ("198.51.100.1", "/"),
        ("198.51.100.1", "/a"),
        ("198.51.100.2", "/"),
        ("198.51.100.3", "/b"),
        ("198.51.100.2", "/a"),
        ("198.51.100.1", "/b"),
        ("198.51.100.3", "/"),
    ]
    for ip, path in plan:
        assert (
            pipeline.send({"n": "pageview", "u": f"https://{SITE}{path}", "d": SITE}, ip=ip).status
            == 202
        )
    pipeline.send({"n": "Signup", "u": f"https://{SITE}/b", "d": SITE}, ip="198.51.100.3")
    records = pipeline.read_stream()
    assert len(records) == 8
    return key, records


def snapshot(pipeline: Pipeline, key: str) -> dict[str, Any]:
    """Realtime (the minutes, decision 0012) and today's totals (the fold's hours and days)."""
    realtime = pipeline.realtime(SITE, key)
    realtime.pop("as_of")
    today = pipeline.get(
        f"/api/v1/stats/aggregate?site_id={SITE}&period=day&metrics=pageviews,visitors,visits",
        key,
    ).json()["results"]
    realtime["today"] = {metric: value["value"] for metric, value in today.items()}
    return realtime


def expected(pipeline: Pipeline, key: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    assert pipeline.aggregate(records) == {"batchItemFailures": []}
    return snapshot(pipeline, key)


def test_whole_batch_retried_counts_once(pipeline: Pipeline) -> None:
    key, records = traffic(pipeline)
    first = expected(pipeline, key, records)
    assert first["pageviews"] == 7 and first["current_visitors"] == 3
    assert pipeline.aggregate(records) == {"batchItemFailures": []}
    assert snapshot(pipeline, key) == first


def test_bisected_batch_after_success_counts_once(pipeline: Pipeline) -> None:
    key, records = traffic(pipeline)
    first = expected(pipeline, key, records)
    pipeline.aggregate(records[:4])
    pipeline.aggregate(records[4:])
    assert snapshot(pipeline, key) == first


def test_halves_then_whole_batch_equals_one_delivery(pipeline: Pipeline) -> None:
    key, records = traffic(pipeline)
    pipeline.aggregate(records[:3])
    pipeline.aggregate(records)  # Lambda retries the whole batch after a failure on the rest
    result = snapshot(pipeline, key)
    assert result["pageviews"] == 7
    assert result["current_visitors"] == 3
    assert sum(p["visitors"] for p in result["per_minute"]) == 3


def test_crash_after_commit_then_redelivery_counts_once(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, records = traffic(pipeline)
    original = AggregateStore.commit

    def commit_then_crash(
        self: AggregateStore, plan: Any, now: float | None = None
    ) -> CommitOutcome:
        original(self, plan, now)
        raise RuntimeError("Lambda timed out after the transaction committed")

    monkeypatch.setattr(AggregateStore, "commit", commit_then_crash)
    with pytest.raises(RuntimeError):
        pipeline.aggregate(records)
    monkeypatch.setattr(AggregateStore, "commit", original)
    assert pipeline.aggregate(records) == {"batchItemFailures": []}
    result = snapshot(pipeline, key)
    assert result["pageviews"] == 7
    assert result["current_visitors"] == 3
    assert result["top_pages"] == [
        {"page": "/", "pageviews": 3},
        {"page": "/a", "pageviews": 2},
        {"page": "/b", "pageviews": 2},
    ]


def test_crash_before_commit_then_redelivery_counts_once(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, records = traffic(pipeline)

    def crash(self: AggregateStore, plan: Any, now: float | None = None) -> CommitOutcome:
        raise RuntimeError("Lambda crashed before committing")

    original = AggregateStore.commit
    monkeypatch.setattr(AggregateStore, "commit", crash)
    with pytest.raises(RuntimeError):
        pipeline.aggregate(records)
    monkeypatch.setattr(AggregateStore, "commit", original)
    pipeline.aggregate(records)
    assert snapshot(pipeline, key)["pageviews"] == 7


def test_partial_batch_failure_reports_the_chunk_and_redelivery_completes(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, records = traffic(pipeline)
    monkeypatch.setenv("LIVEINSIGHT_MAX_TRANSACTION_ITEMS", "5")  # forces several chunks
    import aggregator.handler

    aggregator.handler.get_config.cache_clear()
    original = AggregateStore.commit
    calls = {"n": 0}

    def throttle_second_chunk(
        self: AggregateStore, plan: Any, now: float | None = None
    ) -> CommitOutcome:
        calls["n"] += 1
        if calls["n"] >= 2:
            return CommitOutcome(False, retryable=True, reason="ThrottlingError")
        return original(self, plan, now)

    monkeypatch.setattr(AggregateStore, "commit", throttle_second_chunk)
    monkeypatch.setattr("aggregator.processor.time.sleep", lambda _s: None)
    response = pipeline.aggregate(records)
    (failure,) = response["batchItemFailures"]
    sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
    failed_at = sequence_numbers.index(failure["itemIdentifier"])
    assert 0 < failed_at < len(records)
    partial = snapshot(pipeline, key)
    assert 0 < partial["today"]["pageviews"] < 7
    # Chunks follow visitors, not the stream, yet everything before the checkpoint was counted:
    # delivering it again changes nothing.
    monkeypatch.setattr(AggregateStore, "commit", original)
    assert pipeline.aggregate(records[:failed_at]) == {"batchItemFailures": []}
    assert snapshot(pipeline, key) == partial
    # Lambda redelivers from the reported checkpoint on.
    monkeypatch.setattr(AggregateStore, "commit", original)
    assert pipeline.aggregate(records[failed_at:]) == {"batchItemFailures": []}
    final = snapshot(pipeline, key)
    assert final["pageviews"] == final["today"]["pageviews"] == 7


def test_poison_record_is_reported_and_the_rest_of_its_batch_still_counts(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aggregator.processor
    from core.keys import parse_event_key

    key, records = traffic(pipeline)
    # Given the fourth record of the batch cannot be folded (a poison)
    image = records[3]["dynamodb"]["NewImage"]
    _, _, poison = parse_event_key(image["pk"]["S"], image["sk"]["S"])
    fold = aggregator.processor.apply_event

    def apply_event(state: Any, event: Any, deltas: Any) -> Any:
        if event.event_id == poison:
            raise ValueError("cannot fold this record")
        return fold(state, event, deltas)

    monkeypatch.setattr(aggregator.processor, "apply_event", apply_event)
    # When the batch is delivered
    response = pipeline.aggregate(records)
    # Then the poison is the record reported, and the seven others are counted already (realtime's
    # minutes fold nothing: they count it at once)
    assert response == {
        "batchItemFailures": [{"itemIdentifier": records[3]["dynamodb"]["SequenceNumber"]}]
    }
    partial = snapshot(pipeline, key)
    assert partial["today"]["pageviews"] == 6 and partial["pageviews"] == 7
    # And Lambda's redelivery from it counts it once it folds, and nothing twice
    monkeypatch.setattr(aggregator.processor, "apply_event", fold)
    assert pipeline.aggregate(records[3:]) == {"batchItemFailures": []}
    result = snapshot(pipeline, key)
    assert result["pageviews"] == result["today"]["pageviews"] == 7
    assert result["current_visitors"] == result["today"]["visitors"] == 3


def test_duplicate_client_send_is_stored_once(pipeline: Pipeline) -> None:
    key = pipeline.add_site(SITE)
    event = {
        "n": "pageview",
        "u": f"https://{SITE}/",
        "d": SITE,
        "id": "01JDQ2Z7W8K3M4N5P6Q7R8S9T0",
    }
    assert pipeline.send(event).status == 202
    assert pipeline.send(event).status == 202  # the tracker resent after a timeout
    assert len(pipeline.scan("events")) == 1
    pipeline.pump()
    assert snapshot(pipeline, key)["pageviews"] == 1


PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
CLIENT_ID = "01JDQ2Z7W8K3M4N5P6Q7R8S9T1"


def test_a_client_id_resent_from_another_address_is_stored_and_counted_once(
    pipeline: Pipeline,
) -> None:
    # Given an event the native API sent with its own id, and another visitor's
    key = pipeline.add_site(SITE)
    event = {"n": "pageview", "u": f"https://{SITE}/", "d": SITE, "id": CLIENT_ID}
    assert pipeline.send(event, ip="198.51.100.1").status == 202
    other = {"n": "pageview", "u": f"https://{SITE}/b", "d": SITE}
    assert pipeline.send(other, ip="198.51.100.2").status == 202
    # When its sender resends it from another address and user agent: another visitor id
    assert pipeline.send(event, ip="203.0.113.9", user_agent=PHONE_UA).status == 202
    # Then it is stored once, under the first try's visitor
    stored = [item for item in pipeline.scan("events") if item["sk"]["S"] == CLIENT_ID]
    assert len(stored) == 1 and len(pipeline.scan("events")) == 2
    # And counted once, in realtime and in today's totals
    pipeline.pump()
    result = snapshot(pipeline, key)
    assert result["pageviews"] == result["today"]["pageviews"] == 2
    assert result["current_visitors"] == result["today"]["visitors"] == 2


def test_a_resent_pageview_stores_the_engagement_it_carries_once_too(pipeline: Pipeline) -> None:
    # Given an SPA navigation's pageview with a client id, carrying the page it left (0041)
    pipeline.add_site(SITE)
    left = {"u": f"https://{SITE}/", "sd": 60, "e": 5_000}
    event = {"n": "pageview", "u": f"https://{SITE}/b", "d": SITE, "id": CLIENT_ID, "l": left}
    assert pipeline.send(event, ip="198.51.100.1").status == 202
    # When it is resent from another address
    assert pipeline.send(event, ip="203.0.113.9", user_agent=PHONE_UA).status == 202
    # Then the engagement and the pageview are each stored once, under one visitor
    stored = pipeline.scan("events")
    assert sorted(item["name"]["S"] for item in stored) == ["engagement", "pageview"]
    assert len({item["pk"]["S"] for item in stored}) == 1


def test_a_first_try_that_stored_its_marker_and_not_its_event_is_completed_by_the_resend(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest.store import EventStore

    key = pipeline.add_site(SITE)
    event = {"n": "pageview", "u": f"https://{SITE}/", "d": SITE, "id": CLIENT_ID}
    # Given a first try that crashed after its resend marker was written, before its event
    first_visitor = EventStore._first_visitor
    crashed: list[str] = []

    def crash_after_marker(self: EventStore, raw: Any, ttl: int) -> str:
        crashed.append(first_visitor(self, raw, ttl))
        raise RuntimeError("the instance died here")

    monkeypatch.setattr(EventStore, "_first_visitor", crash_after_marker)
    with pytest.raises(RuntimeError):
        pipeline.send(event, ip="198.51.100.1")
    assert crashed and pipeline.scan("events") == []
    monkeypatch.setattr(EventStore, "_first_visitor", first_visitor)
    # When the sender retries from another address
    assert pipeline.send(event, ip="203.0.113.9", user_agent=PHONE_UA).status == 202
    # Then the resend stores the event, under the visitor the marker names (the first try's)
    stored = pipeline.scan("events")
    assert [item["pk"]["S"].rsplit("#", 1)[1] for item in stored] == crashed
    # And a third try is refused; the event counts once
    assert pipeline.send(event, ip="192.0.2.4").status == 202
    assert len(pipeline.scan("events")) == 1
    pipeline.pump()
    result = snapshot(pipeline, key)
    assert result["pageviews"] == result["today"]["pageviews"] == 1


def test_racing_batch_changes_visitor_state_and_we_still_count_exactly(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, records = traffic(pipeline)
    # Given the first half was committed by another invocation *after* we loaded visitor states
    original_load = AggregateStore.load_visitors
    raced = {"done": False}

    def load_then_race(self: AggregateStore, wanted: Any) -> Any:
        states = original_load(self, wanted)
        if not raced["done"]:
            raced["done"] = True
            monkeypatch.setattr(AggregateStore, "load_visitors", original_load)
            # A second, concurrent instance of the function (not the one now running).
            from aggregator.handler import handler
            from local.runtime import LambdaContext

            assert handler({"Records": records[:4]}, LambdaContext("aggregator-2")) == {
                "batchItemFailures": []
            }
        return states

    monkeypatch.setattr(AggregateStore, "load_visitors", load_then_race)
    # When our invocation commits the whole batch with stale states
    assert pipeline.aggregate(records) == {"batchItemFailures": []}
    # Then the version conditions made it re-read and the counts are exact
    result = snapshot(pipeline, key)
    assert result["pageviews"] == 7
    assert result["current_visitors"] == 3
    assert sum(p["visitors"] for p in result["per_minute"]) == 3


def test_malformed_record_is_skipped_and_does_not_block_the_shard(pipeline: Pipeline) -> None:
    key, records = traffic(pipeline)
    broken = dict(records[0])
    broken["dynamodb"] = {
        **records[0]["dynamodb"],
        "NewImage": {"pk": {"S": "EV#x#y"}},
        "SequenceNumber": "1",
    }
    assert pipeline.aggregate([broken, *records]) == {"batchItemFailures": []}
    assert snapshot(pipeline, key)["pageviews"] == 7
