"""Generated multi-day traffic for the stats tests: one site, through the real ingest and
aggregator handlers, with the query clock fixed just after it and the stats oracle over it."""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import pytest

from tests.faults import Step, Traffic, stored_events
from tests.integration.pipeline import Pipeline
from tests.stats_oracle import StatsOracle

SITE = "stats.example"
TZ = "Europe/Berlin"
START = datetime(2026, 10, 28, 20, 0, tzinfo=UTC)  # crosses a month end and the DST change
FIRST, LAST = date(2026, 10, 28), date(2026, 11, 7)
NOW = datetime(2026, 11, 7, 21, 0, tzinfo=UTC)

_worlds = itertools.count()


@dataclass
class World:
    pipeline: Pipeline
    key: str
    oracle: StatsOracle

    def get(self, path: str, **params: str) -> tuple[int, Any]:
        query = "&".join(
            f"{k}={quote(v, safe=',:')}" for k, v in {"site_id": SITE, **params}.items()
        )
        response = self.pipeline.get(f"{path}?{query}", self.key)
        return response.status, response.json()

    def ok(self, path: str, **params: str) -> Any:
        status, body = self.get(path, **params)
        assert status == 200, body
        return body


def multi_day_traffic(seed: int, events: int = 160, visitors: int = 7) -> Traffic:
    rnd = random.Random(seed)
    base = Traffic.random(rnd, events, visitors, START, tz=TZ)
    gaps = (5, 60, 600, 1799, 1801, 5400, 21600, 43200)
    steps = [replace(s, gap_s=rnd.choice(gaps)) for s in base.steps]
    # a pageview with a prop, and the site's other hostname, so every dimension has data
    steps += [
        Step(visitor=0, gap_s=30, kind="pageview", page="/docs", referrer="https://duck.com/"),
    ]
    return Traffic(START, steps, site=SITE, tz=TZ)


@pytest.fixture(scope="module")
def world(moto_endpoint: str) -> Iterator[World]:
    import ingest.handler
    import query_api.deps
    from tests.integration.pipeline import fresh_pipeline

    monkeypatch = pytest.MonkeyPatch()
    with fresh_pipeline(moto_endpoint, f"stats-{next(_worlds)}-{os.getpid()}") as pipeline:
        key = pipeline.add_site(SITE, tz=TZ)
        traffic = multi_day_traffic(7)
        for now, body, ip, ua in traffic.payloads():
            monkeypatch.setattr(ingest.handler, "now", lambda now=now: now)
            assert pipeline.send(body, ip=ip, user_agent=ua).status == 202
        pipeline.pump()
        from query_api.app import app

        # The routes hold the original function through Depends(clock): override that key.
        app.dependency_overrides[query_api.deps.clock] = lambda: NOW
        events = stored_events(pipeline.ddb, pipeline.names)
        assert max(e.ts for e in events) < NOW.timestamp() * 1000
        yield World(pipeline, key, StatsOracle(events, TZ))
        app.dependency_overrides.clear()
    monkeypatch.undo()
