"""Several stream shards, as a new on-demand table has in AWS: records go to the shard of their
partition key, each shard keeps its order, the shards' batches run at once on instances of their
own, and the counts still equal the oracle's under Lambda's and DynamoDB's faults."""

from __future__ import annotations

import dataclasses
import random
import threading
import time
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest

from core.aws import make_client
from core.events import RawEvent
from core.keys import Granularity
from core.schema import load_schema
from local import tables
from local.faults import Faults
from local.poller import tier_pollers
from local.runtime import LocalFunction
from tests import oracle
from tests.faults import Traffic, mismatches, stored_counters, stored_events
from tests.integration.pipeline import Pipeline
from tests.integration.test_poller import RecordingFunction, poller_for, put_events

SHARDS = 4
DAY = Granularity.DAY


def ts(event: RawEvent) -> int:
    return event.ts


class SlowRecordingFunction(RecordingFunction):
    """Records batches with the shard they came from, and how many ran at once."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(0.05)  # long enough for the other shards' batches to start meanwhile
            with self._lock:
                return super().__call__(event)
        finally:
            with self._lock:
                self.running -= 1


def shard_of(pk: str) -> int:
    """The shard of an event's item: its key's hash (as the poller reads the key)."""
    return zlib.crc32(str({"pk": {"S": pk}}).encode()) % SHARDS


def test_each_shard_batches_its_own_records_in_stream_order(stream: dict[str, Any]) -> None:
    pks = put_events(stream, 40)
    function = SlowRecordingFunction()
    poller = poller_for(stream, function, shards=SHARDS, batch_size=3)
    poller.poll_once(flush=True)
    # Every record once; a batch holds one shard's records only, in the stream's order there
    assert sorted(pk for batch in function.batches for pk in batch) == pks
    delivered: dict[int, list[str]] = {}
    for batch in function.batches:
        assert len({shard_of(pk) for pk in batch}) == 1, batch
        assert len(batch) <= 3
        delivered.setdefault(shard_of(batch[0]), []).extend(batch)
    assert len(delivered) == SHARDS  # 40 keys reach every shard
    for shard, got in delivered.items():
        assert got == [pk for pk in pks if shard_of(pk) == shard]


def test_the_shards_deliver_side_by_side(stream: dict[str, Any]) -> None:
    put_events(stream, 40)
    function = SlowRecordingFunction()
    poller_for(stream, function, shards=SHARDS, batch_size=2).poll_once(flush=True)
    assert function.most_at_once == SHARDS
    # and one shard never has two batches in flight
    single = SlowRecordingFunction()
    poller_for(stream, single, batch_size=2).poll_once(flush=True)
    assert single.most_at_once == 1


def test_a_function_with_instances_runs_that_many_invocations_at_once() -> None:
    lock = threading.Lock()
    running: list[int] = [0, 0]

    def handler(event: dict[str, Any], context: Any) -> str:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return "ok"

    function = LocalFunction("aggregator", handler, "realtime", instances=3)
    callers = [threading.Thread(target=function.invoke, args=({},)) for _ in range(6)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    function.close()
    assert running[1] == 3
    assert function.invocations == 6
    assert function.billed_seconds >= 6 * 0.05


STARTS = (
    datetime(2026, 11, 25, 23, 20, tzinfo=UTC),  # sessions over UTC midnight (a new salt)
    datetime(2026, 3, 28, 23, 40, tzinfo=UTC),  # and Berlin's DST night (the site's time zone)
)


@pytest.mark.parametrize("seed", [1, 2])
def test_four_shard_campaign_under_faults_equals_the_oracle(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    import aggregator.handler
    import ingest.handler
    from aggregator.handler import handler as aggregator_handler

    # Given traffic through the real ingest handler (visitors' events on several shards)
    pipeline = Pipeline(aws_env)
    rnd = random.Random(seed)
    traffic = Traffic.random(rnd, 160, 40, rnd.choice(STARTS), tz="Europe/Berlin")
    # Gaps of up to 1,801 s (a session's end and the next's start): many sessions at midnight
    traffic.steps = [dataclasses.replace(s, gap_s=min(s.gap_s, 1801)) for s in traffic.steps]
    assert len({now.date() for now, *_ in traffic.payloads()}) == 2, "over midnight"
    pipeline.add_site(traffic.site, tz=traffic.tz)
    for now, body, ip, ua in traffic.payloads():
        monkeypatch.setattr(ingest.handler, "now", lambda now=now: now)
        assert pipeline.send(body, ip=ip, user_agent=ua).status == 202
    monkeypatch.setattr("aggregator.processor.time.sleep", lambda _s: None)
    # When both tiers' mappings deliver it on 4 shards at once, each shard to its own instance,
    # with duplicates, lost responses, crashes, throttles and transaction conflicts
    # Each kind the campaign must survive happens at least once, whatever the threads' timing
    faults = dataclasses.replace(
        Faults.moderate(seed), force=frozenset({"duplicate", "lost_response", "throttle"})
    )
    faults.install_on(aggregator.handler.get_client())
    functions = {
        tier: LocalFunction("aggregator", aggregator_handler, tier, instances=SHARDS)
        for tier in load_schema().tiers
    }
    sqs = make_client("sqs")
    queue = sqs.create_queue(QueueName=f"{aws_env['events']}-dlq")["QueueUrl"]
    pollers = tier_pollers(
        make_client("dynamodbstreams"),
        sqs,
        tables.stream_arn(pipeline.ddb, aws_env["events"]),
        lambda name: functions[name].invoke,
        queue,
        faults=faults,
        esm_for=lambda _, esm: dataclasses.replace(esm, batch_size=5),
        shards=SHARDS,
    )
    running = [
        threading.Thread(target=p.poll_once, kwargs={"flush": True}) for p in pollers.values()
    ]
    for thread in running:  # the two tiers read the stream side by side too
        thread.start()
    for thread in running:
        thread.join()
    for function in functions.values():
        function.close()
    # Then every counter equals the oracle's recount, and nothing was dead-lettered
    assert all(p.shard_count == SHARDS for p in pollers.values())
    assert {"duplicate", "lost_response", "throttle"} <= set(faults.counts), faults.counts
    assert sum(p.stats.dead_lettered_batches for p in pollers.values()) == 0
    events = stored_events(pipeline.ddb, pipeline.names)
    assert len(events) >= 100
    assert mismatches(oracle.compute(events), stored_counters(pipeline.ddb, pipeline.names)) == []


def test_a_session_over_midnight_counts_once_whichever_shard_comes_first(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.handler

    pipeline = Pipeline(aws_env)
    pipeline.add_site("night.example")
    # One visitor: a pageview at 23:50 UTC, the next at 00:05 (a new salt: a new visitor id)
    for now in (
        datetime(2026, 11, 25, 23, 50, tzinfo=UTC),
        datetime(2026, 11, 26, 0, 5, tzinfo=UTC),
    ):
        monkeypatch.setattr(ingest.handler, "now", lambda now=now: now)
        body = {"n": "pageview", "u": "https://night.example/", "d": "night.example"}
        assert pipeline.send(body).status == 202
    before, after = pipeline.read_stream()
    # When the after-midnight record's shard is delivered first
    pipeline.aggregate([after])
    pipeline.aggregate([before])
    # Then ingest stored both under yesterday's visitor id, and it is one visit, as Plausible
    # counts it (ingest decided in arrival order: ingest/sessions.py)
    events = stored_events(pipeline.ddb, pipeline.names)
    assert len({e.visitor_id for e in events}) == 1
    assert all(e.previous_visitor_id is None for e in events)
    counters = stored_counters(pipeline.ddb, pipeline.names)
    days = [attrs for (_, gran, dim, _), attrs in counters.items() if (gran, dim) == (DAY, "_")]
    assert sum(attrs.get("visits", 0) for attrs in days) == 1
    assert sum(attrs.get("pageviews", 0) for attrs in days) == 2
    assert mismatches(oracle.compute(events), counters) == []


def test_a_session_over_midnight_ends_after_thirty_quiet_minutes(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.handler

    pipeline = Pipeline(aws_env)
    pipeline.add_site("night.example")
    body = {"n": "pageview", "u": "https://night.example/", "d": "night.example"}
    engagement = {**body, "n": "engagement", "e": 5000, "sd": 40}
    sent = [
        (datetime(2026, 11, 25, 23, 40, tzinfo=UTC), body),  # yesterday's id
        (datetime(2026, 11, 26, 0, 5, tzinfo=UTC), body),  # continues (25 min)
        (datetime(2026, 11, 26, 0, 34, tzinfo=UTC), engagement),  # continues, keeps nothing open
        (datetime(2026, 11, 26, 0, 36, tzinfo=UTC), body),  # 31 min after 00:05: today's id
        (datetime(2026, 11, 26, 0, 40, tzinfo=UTC), body),  # today's id from then on
    ]
    for now, payload in sent:
        monkeypatch.setattr(ingest.handler, "now", lambda now=now: now)
        assert pipeline.send(payload).status == 202
    ids = [e.visitor_id for e in sorted(stored_events(pipeline.ddb, pipeline.names), key=ts)]
    assert ids[0] == ids[1] == ids[2] != ids[3] == ids[4]
