"""Names stored before Plausible's (decision 0034) read as Plausible's, through the HTTP APIs:
a day of traffic ingested with ua-parser's names ("Chrome Mobile", "Mobile Safari", "Mac OS X",
"Linux"), a day with Plausible's, then one "Chrome" row in a breakdown and a filter
`visit:browser==Chrome` that counts the phones of both days, from the counters, the v1 and v2
archive engines and funnels alike."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest

from core import names
from tests.integration.pipeline import Pipeline
from tests.unit import samples
from tests.unit.test_names import CHROME_IPHONE, CHROME_LINUX

SITE = "names.example"
BEFORE = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # ingested with the old names
AFTER = BEFORE + timedelta(days=1)
NOW = AFTER + timedelta(hours=12)
SPAN = f"{BEFORE.date().isoformat()},{AFTER.date().isoformat()}"
ANSWERED_FROM = "x-liveinsight-answered-from"

# (user agent, browser and OS as Plausible names them)
AGENTS = (
    (samples.CHROME_ANDROID_PHONE, "Chrome", "Android"),  # stored "Chrome Mobile" before
    (CHROME_IPHONE, "Chrome", "iOS"),  # "Chrome Mobile iOS"
    (samples.CHROME_WINDOWS, "Chrome", "Windows"),
    (CHROME_LINUX, "Chrome", "GNU/Linux"),  # os "Linux"
    (samples.SAFARI_IPHONE, "Safari", "iOS"),  # "Mobile Safari"
    (samples.FIREFOX_MAC, "Firefox", "Mac"),  # os "Mac OS X"
)
OLD_NAMES = SimpleNamespace(  # ingest as it named things before core/names.py
    MOBILE_APP=names.MOBILE_APP,
    browser_name=lambda family: family,
    os_name=lambda family, major, ipad: family,
)


@dataclass
class Names:
    pipeline: Pipeline
    key: str

    def get(self, path: str, **params: str) -> tuple[dict[str, str], Any]:
        query = "&".join(
            f"{k}={quote(v, safe=',:')}" for k, v in {"site_id": SITE, **params}.items()
        )
        reply = self.pipeline.get(f"{path}?{query}", self.key)
        assert reply.status == 200, reply.body
        return reply.headers, reply.json()


@pytest.fixture(scope="module")
def world(moto_endpoint: str) -> Iterator[Names]:
    import ingest.enrich
    import ingest.handler
    import query_api.deps
    from query_api.app import app
    from tests.integration.pipeline import fresh_pipeline

    monkeypatch = pytest.MonkeyPatch()
    with fresh_pipeline(moto_endpoint, f"names-{os.getpid()}") as pipeline:
        key = pipeline.add_site(SITE)
        for day, (sent, renamer) in enumerate(((BEFORE, OLD_NAMES), (AFTER, names))):
            monkeypatch.setattr(ingest.enrich, "names", renamer)
            ingest.enrich._parse_user_agent.cache_clear()
            for n, (agent, _, _) in enumerate(AGENTS):
                for minute, page in enumerate(("/", "/pricing")):
                    at = sent + timedelta(minutes=10 * n + minute)
                    monkeypatch.setattr(ingest.handler, "now", lambda at=at: at)
                    body = {"n": "pageview", "u": f"https://{SITE}{page}", "d": SITE}
                    ip = f"198.51.{100 + day}.{n + 1}"
                    assert pipeline.send(body, ip=ip, user_agent=agent).status == 202
        ingest.enrich._parse_user_agent.cache_clear()
        pipeline.pump()
        app.dependency_overrides[query_api.deps.clock] = lambda: NOW
        try:
            yield Names(pipeline, key)
        finally:
            app.dependency_overrides.pop(query_api.deps.clock, None)
            monkeypatch.undo()
            ingest.enrich._parse_user_agent.cache_clear()


def test_the_first_day_was_stored_under_the_old_names_and_the_second_under_plausibles(
    world: Names,
) -> None:
    stored = {(e.browser, e.os) for e in world.pipeline.archived_events(SITE)}

    assert {("Chrome Mobile", "Android"), ("Mobile Safari", "iOS"), ("Firefox", "Mac OS X")} <= (
        stored
    )
    assert {("Chrome", "Android"), ("Safari", "iOS"), ("Firefox", "Mac")} <= stored


def expected(column: int, only: Any = None) -> dict[str, int]:
    """Visitors per name over both days (each agent one visitor a day)."""
    out: dict[str, int] = {}
    for agent in AGENTS:
        if only is None or only(agent):
            out[agent[column]] = out.get(agent[column], 0) + 2
    return out


@pytest.mark.parametrize(("prop", "column"), [("visit:browser", 1), ("visit:os", 2)])
def test_a_breakdown_from_the_counters_has_one_row_per_plausible_name(
    world: Names, prop: str, column: int
) -> None:
    headers, body = world.get(
        "/api/v1/stats/breakdown", period="custom", date=SPAN, property=prop, metrics="visitors"
    )

    assert headers.get(ANSWERED_FROM) == "counters"
    key = prop.split(":")[1]
    assert {r[key]: r["visitors"] for r in body["results"]} == expected(column)


@pytest.mark.parametrize(
    ("filters", "want"),
    [
        ("visit:browser==Chrome", 8),  # the phones of both days too
        ("visit:os==Mac", 2),
        ("visit:os==GNU/Linux", 2),
        ("visit:browser==Chr*", 8),
        ("visit:browser!=Chrome", 4),
    ],
)
def test_a_filter_by_a_plausible_name_counts_old_and_new_rows_in_the_counters(
    world: Names, filters: str, want: int
) -> None:
    headers, body = world.get(
        "/api/v1/stats/aggregate",
        period="custom",
        date=SPAN,
        metrics="visits,pageviews",
        filters=filters,
    )

    assert headers.get(ANSWERED_FROM) == "counters"
    assert body["results"]["visits"]["value"] == want
    assert body["results"]["pageviews"]["value"] == 2 * want


def test_the_archive_filters_and_breaks_down_by_plausibles_names(world: Names) -> None:
    headers, body = world.get(
        "/api/v1/stats/breakdown",
        period="custom",
        date=SPAN,
        property="visit:browser",
        metrics="visitors,pageviews",
        filters="visit:os==iOS;event:page==/pricing",
    )

    assert headers.get(ANSWERED_FROM) == "archive"
    assert {r["browser"]: r["visitors"] for r in body["results"]} == expected(
        1, lambda a: a[2] == "iOS"
    )
    headers, body = world.get(
        "/api/v1/stats/aggregate",
        period="custom",
        date=SPAN,
        metrics="visitors",
        filters="visit:browser==Chrome;visit:os==Android|Mac",
    )
    assert headers.get(ANSWERED_FROM) == "archive"
    assert body["results"]["visitors"]["value"] == 2


def test_the_v2_engine_reads_old_names_as_plausibles(world: Names) -> None:
    query = {
        "site_id": SITE,
        "metrics": ["visitors"],
        "date_range": [BEFORE.date().isoformat(), AFTER.date().isoformat()],
        "dimensions": ["visit:browser", "visit:os"],
        "filters": [["is", "visit:browser", ["Chrome", "Safari"]]],
    }
    reply = world.pipeline.post("/api/v2/query", query, world.key)

    assert reply.status == 200, reply.body
    rows = {tuple(r["dimensions"]): r["metrics"][0] for r in reply.json()["results"]}
    assert rows == {
        ("Chrome", "Android"): 2,
        ("Chrome", "iOS"): 2,
        ("Chrome", "Windows"): 2,
        ("Chrome", "GNU/Linux"): 2,
        ("Safari", "iOS"): 2,
    }


def test_a_funnel_filtered_by_a_plausible_name_counts_the_old_phones(world: Names) -> None:
    from core.funnels import FunnelStore

    store = FunnelStore(world.pipeline.ddb, world.pipeline.names["meta"])
    funnel = store.add(SITE, "Pricing", ["Visit /", "Visit /pricing"])

    _, body = world.get(
        "/api/stats/funnel",
        funnel_id=funnel.id,
        period="custom",
        date=SPAN,
        filters="visit:browser==Chrome;visit:os==Android|iOS",
    )

    assert [s["visitors"] for s in body["steps"]] == [4, 4]
