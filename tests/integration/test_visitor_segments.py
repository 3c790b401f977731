"""A visitor-day too big for one item goes on in new items; counts stay exact, items stay small."""

from __future__ import annotations

from typing import Any

import pytest

from aggregator import processor
from aggregator.store import state_text
from tests.integration.pipeline import Pipeline

SITE = "busy.example"


def test_one_address_sending_thousands_of_events_splits_its_state_and_counts_exactly(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an office behind one address and one browser build (scaled down: 20 hits an item)
    monkeypatch.setattr(processor, "MAX_HITS_PER_ITEM", 20)
    pipeline = Pipeline(aws_env)
    key = pipeline.add_site(SITE)
    for n in range(70):
        assert (
            pipeline.send({"n": "pageview", "u": f"https://{SITE}/p{n % 7}", "d": SITE}).status
            == 202
        )
    records = pipeline.read_stream()
    # When the stream arrives in batches, and then all over again
    for start in range(0, len(records), 25):
        assert pipeline.aggregate(records[start : start + 25]) == {"batchItemFailures": []}
    assert pipeline.aggregate(records) == {"batchItemFailures": []}
    # Then every pageview is counted once
    realtime = pipeline.realtime(SITE, key)
    assert realtime["pageviews"] == 70
    # and the visitor's day is spread over items of at most 20 hits, the first naming them all
    states: list[dict[str, Any]] = [
        i for i in pipeline.scan("aggregates") if i["pk"]["S"].startswith("V#")
    ]
    import json

    hits = sorted(len(json.loads(state_text(i))["h"]) for i in states)
    assert hits == [10, 20, 20, 20]
    base = next(i for i in states if "~" not in i["pk"]["S"])
    assert json.loads(state_text(base))["s"] == 4
    # each segment counts as a visitor of its own (documented: decision record 0005)
    from core.keys import Granularity
    from tests.faults import stored_counters

    (day_totals,) = [
        a
        for (_, g, d, _), a in stored_counters(pipeline.ddb, pipeline.names).items()
        if g is Granularity.DAY and d == "_"
    ]
    assert day_totals["visitors"] == 4 and day_totals["pageviews"] == 70


def test_long_props_split_the_state_by_size_before_the_hit_limit(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given items limited (scaled down) to ~6 KB, and events each carrying ~1 KB of props
    import json

    monkeypatch.setattr(processor, "MAX_ITEM_BYTES", 6_000)
    pipeline = Pipeline(aws_env)
    key = pipeline.add_site(SITE)
    for n in range(30):
        body = {"n": "Signup", "u": f"https://{SITE}/", "d": SITE, "p": {"note": f"{n:04d}" * 250}}
        assert pipeline.send(body).status == 202
    # When they are aggregated
    assert pipeline.aggregate(pipeline.read_stream()) == {"batchItemFailures": []}
    # Then the visitor's day went on in new items long before 2,000 hits, none much over the limit
    states = [i for i in pipeline.scan("aggregates") if i["pk"]["S"].startswith("V#")]
    assert len(states) >= 4
    assert max(len(state_text(i)) for i in states) < 6_000 + 1_500
    # and every event and prop value is still counted once
    assert sum(len(json.loads(state_text(i))["h"]) for i in states) == 30
    assert pipeline.realtime(SITE, key)["pageviews"] == 0
