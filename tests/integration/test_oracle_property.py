"""Property: under any fault schedule, every counter in the store equals the oracle's recount."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import oracle
from tests.faults import (
    FaultyStore,
    Schedule,
    Traffic,
    deliver,
    mismatches,
    stored_counters,
    stored_events,
)
from tests.integration.pipeline import fresh_pipeline

STARTS = (
    datetime(2026, 11, 25, 23, 20, tzinfo=UTC),  # sessions cross UTC midnight
    datetime(2026, 3, 28, 22, 50, tzinfo=UTC),  # and Berlin's DST night
    datetime(2026, 11, 30, 23, 30, tzinfo=UTC),  # and a month end
)
_examples = iter(range(1_000_000))


def run_campaign(
    endpoint: str, seed: int, events: int, visitors: int, tz: str, monkeypatch: Any
) -> list[str]:
    rnd = random.Random(seed)
    traffic = Traffic.random(rnd, events, visitors, rnd.choice(STARTS), tz=tz)
    with fresh_pipeline(endpoint, f"p{next(_examples)}-{os.getpid()}") as pipeline:
        pipeline.add_site(traffic.site, tz=tz)
        import ingest.handler

        for now, body, ip, ua in traffic.payloads():
            monkeypatch.setattr(ingest.handler, "now", lambda now=now: now)
            assert pipeline.send(body, ip=ip, user_agent=ua).status == 202
        records = pipeline.read_stream()
        schedule = Schedule.random(rnd, len(records))
        faults = FaultyStore()
        monkeypatch.setattr("aggregator.processor.time.sleep", lambda _s: None)
        with faults.installed():
            deliver(pipeline.aggregator_fn.invoke, records, schedule, faults)
        expected = oracle.compute(stored_events(pipeline.ddb, pipeline.names))
        return mismatches(expected, stored_counters(pipeline.ddb, pipeline.names))


@settings(
    max_examples=int(os.environ.get("LIVEINSIGHT_PROPERTY_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**30),
    events=st.integers(1, 30),
    visitors=st.integers(1, 4),
    tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
)
def test_every_counter_equals_the_oracle_under_any_fault_schedule(
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    events: int,
    visitors: int,
    tz: str,
) -> None:
    assert run_campaign(moto_endpoint, seed, events, visitors, tz, monkeypatch) == []
