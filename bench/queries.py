"""Reads and latency per stats query, at 1x and 10x traffic (issue 4).

A year of traffic goes through the real ingest and aggregator handlers (with a controlled clock);
then each query goes through the real query handler, with the capacity meter counting read units
and items. The goal is the same item count at both traffic levels: reads depend on the period,
not on how many people came.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.pipeline import fresh_pipeline

SITE = "queries.example"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PAGES = ("/", "/pricing", "/blog", "/blog/a", "/docs", "/about")
QUERIES = {
    "realtime": "/api/realtime?site_id={site}",
    "day": "/api/stats/aggregate?site_id={site}&period=day",
    "7d": "/api/stats/aggregate?site_id={site}&period=7d",
    "30d": "/api/stats/aggregate?site_id={site}&period=30d",
    "12mo": "/api/stats/aggregate?site_id={site}&period=12mo",
    "30d pages": "/api/stats/breakdown?site_id={site}&period=30d&property=page",
    "12mo sources": "/api/stats/breakdown?site_id={site}&period=12mo&property=source",
}


def _load(pipeline: Any, events: int, monkeypatch: Any, rnd: random.Random) -> None:
    """`events` pageviews over the last year, a fifth of them in the last 30 minutes."""
    import ingest.handler

    times = sorted(
        NOW
        - timedelta(
            seconds=rnd.randrange(1800) if rnd.random() < 0.2 else rnd.randrange(365 * 86400)
        )
        for _ in range(events)
    )
    for n, when in enumerate(times):
        monkeypatch.setattr(ingest.handler, "now", lambda when=when: when)
        body = {
            "n": "pageview",
            "u": f"https://{SITE}{rnd.choice(PAGES)}",
            "d": SITE,
            "r": rnd.choice(("", "https://www.google.com/", "https://news.ycombinator.com/")),
        }
        pipeline.send(body, ip=f"198.51.{n % 200}.{rnd.randrange(250)}")
        if n % 500 == 499:
            pipeline.pump()
    pipeline.pump()


def measure(endpoint: str, meter: Any, scale: int, runs: int = 15) -> list[dict[str, Any]]:
    import pytest

    from query_api import deps
    from query_api.app import app

    rnd = random.Random(scale)
    events = int(os.environ.get("BENCH_QUERY_EVENTS", "200")) * scale
    monkeypatch = pytest.MonkeyPatch()
    app.dependency_overrides[deps.clock] = lambda: NOW
    rows: list[dict[str, Any]] = []
    try:
        with fresh_pipeline(endpoint, f"bench-q{scale}-{os.getpid()}") as pipeline:
            key = pipeline.add_site(SITE)
            _load(pipeline, events, monkeypatch, rnd)
            for name, path in QUERIES.items():
                url = path.format(site=SITE)
                meter.reset()
                response = pipeline.get(url, key)
                assert response.status == 200, response.body
                usage = meter.reset()
                latencies = []
                for _ in range(runs):
                    started = time.perf_counter()
                    pipeline.get(url, key)
                    latencies.append((time.perf_counter() - started) * 1000)
                meter.reset()
                label = f"query {name} at {scale}x traffic ({events} events)"
                rows += [
                    _row(
                        f"{label}: read units",
                        usage.total_read_units,
                        "RCU",
                        "≤ 10" if name == "realtime" else "",
                    ),
                    _row(
                        f"{label}: items read",
                        sum(usage.items_read.values()),
                        "items",
                        "≤ buckets x 4 shards at any traffic",
                    ),
                    _row(f"{label}: handler p50", statistics.median(latencies), "ms", ""),
                    _row(
                        f"{label}: handler p95", sorted(latencies)[int(0.95 * (runs - 1))], "ms", ""
                    ),
                ]
    finally:
        app.dependency_overrides.clear()
        monkeypatch.undo()
    return rows


def _row(figure: str, value: float, unit: str, goal: str) -> dict[str, Any]:
    return {"figure": figure, "value": round(value, 4), "unit": unit, "goal": goal, "anchor": ""}
