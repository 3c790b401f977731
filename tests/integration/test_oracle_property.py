"""Property: under any fault schedule, every counter in the store equals the oracle's recount."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.prop_keys import MAX_PROP_KEYS
from aggregator.store import FOLD_AT_SLOTS
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
from tests.prop_key_lists import stored_key_lists

STARTS = (
    datetime(2026, 11, 25, 23, 20, tzinfo=UTC),  # sessions cross UTC midnight
    datetime(2026, 3, 28, 22, 50, tzinfo=UTC),  # and Berlin's DST night
    datetime(2026, 11, 30, 23, 30, tzinfo=UTC),  # and a month end
)
_examples = iter(range(1_000_000))
# Prop keys an event sends (the generator's "plan", or others, or two): with a small bound on a
# day's keys, which ones a list admits depends on delivery, and the oracle checks it (0017).
KEY_SETS = (("plan",), ("tier",), ("seat",), ("plan", "tier"))


def run_campaign(
    endpoint: str,
    seed: int,
    events: int,
    visitors: int,
    tz: str,
    monkeypatch: Any,
    tiers: bool = False,
    max_prop_keys: int = MAX_PROP_KEYS,
) -> list[str]:
    """Mismatches after delivering the traffic under a random fault schedule: to the single-tier
    aggregator, or (`tiers`) to each tier's alias under a schedule of its own."""
    rnd = random.Random(seed)
    traffic = Traffic.random(rnd, events, visitors, rnd.choice(STARTS), tz=tz)
    with fresh_pipeline(endpoint, f"p{next(_examples)}-{os.getpid()}") as pipeline:
        pipeline.add_site(traffic.site, tz=tz)
        import ingest.handler

        for now, body, ip, ua in traffic.payloads():
            monkeypatch.setattr(ingest.handler, "now", lambda now=now: now)
            if "p" in body:
                body["p"] = dict.fromkeys(rnd.choice(KEY_SETS), body["p"]["plan"])
            assert pipeline.send(body, ip=ip, user_agent=ua).status == 202
        records = pipeline.read_stream()
        functions = list(pipeline.tier_fns.values()) if tiers else [pipeline.aggregator_fn]
        monkeypatch.setattr("aggregator.prop_keys.MAX_PROP_KEYS", max_prop_keys)
        monkeypatch.setattr("aggregator.processor.time.sleep", lambda _s: None)
        for function in functions:
            schedule = Schedule.random(rnd, len(records))
            faults = FaultyStore()
            with faults.installed():
                deliver(function.invoke, records, schedule, faults)
        events = stored_events(pipeline.ddb, pipeline.names)
        admitted = stored_key_lists(pipeline.ddb, pipeline.names)
        expected = oracle.compute(events, admitted)
        return oracle.admission_problems(events, admitted, max_prop_keys) + mismatches(
            expected, stored_counters(pipeline.ddb, pipeline.names)
        )


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
    tiers=st.booleans(),
    fold_at=st.sampled_from([1, 2, FOLD_AT_SLOTS]),
    chunk_items=st.sampled_from([4, 100]),
    max_prop_keys=st.sampled_from([1, 2, MAX_PROP_KEYS]),
)
def test_every_counter_equals_the_oracle_under_any_fault_schedule(
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    events: int,
    visitors: int,
    tz: str,
    tiers: bool,
    fold_at: int,
    chunk_items: int,
    max_prop_keys: int,
) -> None:
    # (slots folded into their bases after every chunk or two: folds happen under the faults too,
    # or never, and the readers sum the slots)
    monkeypatch.setenv("LIVEINSIGHT_FOLD_AT_SLOTS", str(fold_at))
    # (4 items: a visitor, its hour and its day's and month's slots, so a chunk a visitor)
    monkeypatch.setenv("LIVEINSIGHT_MAX_TRANSACTION_ITEMS", str(chunk_items))
    # (a day's and a month's prop keys bounded at one, two or the default: 0017)
    problems = run_campaign(
        moto_endpoint, seed, events, visitors, tz, monkeypatch, tiers, max_prop_keys
    )
    assert problems == []


def test_each_tier_writes_its_own_granularities_and_together_they_equal_the_oracle(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.handler
    from core.keys import Granularity

    traffic = Traffic.random(random.Random(5), 80, 6, STARTS[0], tz="Europe/Berlin")
    with fresh_pipeline(moto_endpoint, f"tiers-{os.getpid()}") as pipeline:
        pipeline.add_site(traffic.site, tz=traffic.tz)
        for now, body, ip, ua in traffic.payloads():
            monkeypatch.setattr(ingest.handler, "now", lambda now=now: now)
            assert pipeline.send(body, ip=ip, user_agent=ua).status == 202
        records = pipeline.read_stream()
        expected = oracle.compute(stored_events(pipeline.ddb, pipeline.names))
        minute = {cell: attrs for cell, attrs in expected.items() if cell[1] is Granularity.MINUTE}
        assert minute and len(minute) < len(expected)

        # Given only the realtime alias has seen the stream: the minute counters, nothing else
        for start in range(0, len(records), 7):
            result = pipeline.tier_fns["realtime"].invoke({"Records": records[start : start + 7]})
            assert result == {"batchItemFailures": []}
        assert mismatches(minute, stored_counters(pipeline.ddb, pipeline.names)) == []
        # When the rollup alias reads the same stream in one large batch, and again (redelivery)
        for _ in range(2):
            result = pipeline.tier_fns["rollup"].invoke({"Records": records})
            assert result == {"batchItemFailures": []}
        # Then every counter equals the oracle; only the rollup tier keeps visitor states
        assert mismatches(expected, stored_counters(pipeline.ddb, pipeline.names)) == []
        prefixes = {item["pk"]["S"].split("#", 1)[0] for item in pipeline.scan("aggregates")}
        assert "V.rollup" in prefixes and not prefixes & {"V", "V.realtime"}
