"""Region, city and channel end to end: traffic with CloudFront's location headers and campaign
landing pages through the real ingest, aggregator and query handlers; breakdowns and filters by
`visit:region`, `visit:city`, `visit:channel` (v1: counters and archive; v2 with the `_name`
dimensions) equal the stats oracle; nothing finer than a city, and no address, is stored; an
archive file written before the columns still answers."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import pytest

from archive import parquet
from core.edge import ORIGIN_HEADER
from core.events import RawEvent
from core.sites import Site
from query_api import geo, parse
from query_api.archive_engine import ArchiveEngine
from query_api.metrics import Number, compute
from tests.faults import stored_events
from tests.integration.pipeline import Pipeline
from tests.stats_oracle import Cond, MultiOracle

SITE = "geo.example"
TZ = "Europe/Berlin"
START = datetime(2026, 10, 28, 9, 0, tzinfo=UTC)
FIRST, LAST = date(2026, 10, 28), date(2026, 10, 29)
NOW = datetime(2026, 10, 29, 22, 0, tzinfo=UTC)
UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
)
# (country, CloudFront-Viewer-Country-Region, CloudFront-Viewer-City)
LOCATIONS = (
    ("DE", "BY", "Munich"),
    ("DE", "BY", "Nuremberg"),
    ("DE", "BE", "Berlin"),
    ("FR", "IDF", "Paris"),
    ("US", "CA", "San Francisco"),
    ("BR", "SP", "S%C3%A3o%20Paulo"),  # percent-encoded, as a header must be ASCII
    ("", "", ""),  # CloudFront could not place the viewer
)
# (landing query, referrer)
LANDINGS = (
    ("", "https://www.google.com/"),
    ("?gclid=Cj0KCQ", "https://www.google.com/"),
    ("?fbclid=IwAR", "https://l.facebook.com/"),
    ("?utm_source=newsletter&utm_medium=email", None),
    ("?utm_source=partner&utm_medium=display", None),
    ("", "https://blog.someone.example/post"),
    ("", None),
)
# CloudFront's headers finer than a city, sent on every request: never stored
TOO_PRECISE = {
    "cloudfront-viewer-latitude": "48.13743",
    "cloudfront-viewer-longitude": "11.57549",
    "cloudfront-viewer-postal-code": "80331",
    "cloudfront-viewer-time-zone": "Europe/Zurich",
}
SITE_RECORD = Site(SITE, tz=TZ)


@dataclass
class GeoWorld:
    pipeline: Pipeline
    key: str
    events: list[RawEvent]
    oracle: MultiOracle
    ips: list[str]

    def get(self, path: str, **params: str) -> tuple[int, Any, dict[str, str]]:
        query = "&".join(
            f"{k}={quote(v, safe=',:')}"
            for k, v in {"site_id": SITE, "period": "custom", **params}.items()
        )
        response = self.pipeline.get(f"{path}?{query}&date={FIRST},{LAST}", self.key)
        return response.status, response.json(), response.headers


def _send_all(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import ingest.handler

    rnd = random.Random(21)
    ips = []
    for n in range(28):
        ip = f"203.0.113.{n + 1}"
        ips.append(ip)
        country, region, city = LOCATIONS[n % len(LOCATIONS)]
        headers = {
            "cloudfront-viewer-country": country,
            "cloudfront-viewer-country-region": region,
            "cloudfront-viewer-city": city,
            **TOO_PRECISE,
        }
        if n == 27:  # not through CloudFront: its location headers are the sender's word
            headers = {"cloudfront-viewer-country": "DE", "cloudfront-viewer-city": "Forged"}
            headers[ORIGIN_HEADER] = "not-the-secret"
        at = START + timedelta(minutes=47 * n)
        for visit in range(1 + n % 2):  # every other visitor comes back hours later
            query, referrer = LANDINGS[(n + 3 * visit) % len(LANDINGS)]
            at += timedelta(hours=5 * visit)
            for step in range(1 + rnd.randrange(3)):
                page = "/" if step == 0 else f"/p{step}"
                body = {
                    "n": "pageview",
                    "u": f"https://{SITE}{page}{query if step == 0 else ''}",
                    "d": SITE,
                    "r": referrer if step == 0 else f"https://{SITE}/",
                }
                when = at + timedelta(seconds=40 * step)
                monkeypatch.setattr(ingest.handler, "now", lambda when=when: when)
                sent = pipeline.send(
                    body, ip=ip, user_agent=UAS[n % len(UAS)], extra_headers=headers
                )
                assert sent.status == 202
    return ips


@pytest.fixture(scope="module")
def world(moto_endpoint: str) -> Iterator[GeoWorld]:
    import query_api.deps
    from tests.integration.pipeline import fresh_pipeline

    monkeypatch = pytest.MonkeyPatch()
    with fresh_pipeline(moto_endpoint, f"geo-{os.getpid()}") as pipeline:
        key = pipeline.add_site(SITE, tz=TZ)
        ips = _send_all(pipeline, monkeypatch)
        pipeline.pump()
        from query_api.app import app

        app.dependency_overrides[query_api.deps.clock] = lambda: NOW
        events = stored_events(pipeline.ddb, pipeline.names)
        try:
            yield GeoWorld(pipeline, key, events, MultiOracle(events, TZ), ips)
        finally:
            app.dependency_overrides.pop(query_api.deps.clock, None)
            monkeypatch.undo()


def expect(cell: dict[str, int], metrics: str) -> dict[str, Number]:
    return {m: compute(m, cell) for m in metrics.split(",")}


def conds(filters: str) -> tuple[Cond, ...]:
    return tuple(Cond(f.prop.name, f.values, f.negated) for f in parse.parse_filters(filters))


def oracle_rows(oracle: MultiOracle, prop: str, metrics: str, filters: str = "") -> Any:
    return {
        v: expect(c, metrics) for v, c in oracle.answer(FIRST, LAST, conds(filters), prop).items()
    }


def test_the_stored_events_carry_region_city_and_channel(world: GeoWorld) -> None:
    values = {(e.country, e.region, e.city) for e in world.events}
    assert ("DE", "DE-BY", "Munich") in values and ("BR", "BR-SP", "São Paulo") in values
    assert {e.channel for e in world.events} >= {
        "Organic Search",
        "Paid Search",
        "Organic Social",
        "Email",
        "Display",
        "Referral",
        "Direct",
    }


def test_location_headers_without_the_origin_secret_are_not_stored(world: GeoWorld) -> None:
    assert not any(e.city == "Forged" for e in world.events)
    # the forged request's events are there, placed nowhere
    assert any(e.country == "" and e.region == "" and e.city == "" for e in world.events)


def test_no_coordinates_postal_code_time_zone_or_address_is_stored(world: GeoWorld) -> None:
    dumped = []
    for logical in ("events", "aggregates"):
        dumped += [repr(item) for item in world.pipeline.scan(logical)]
    con = duckdb.connect()
    for path in world.pipeline.archive().local_files(SITE, "2026-10-27", "2026-10-30"):
        dumped += [repr(r) for r in con.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()]
    text = "\n".join(dumped)
    assert "Munich" in text  # the scan reads what is stored
    for value in (*TOO_PRECISE.values(), *world.ips):
        # a whole token, not digits inside a random 64-bit visitor key
        assert not re.search(rf"(?<![\w.]){re.escape(value)}(?![\w.])", text), value


@pytest.mark.parametrize("prop", ["visit:region", "visit:city", "visit:channel", "visit:country"])
def test_v1_breakdowns_from_the_counters_equal_the_oracle(world: GeoWorld, prop: str) -> None:
    metrics = "visitors,visits,pageviews,bounce_rate,visit_duration"
    status, body, headers = world.get(
        "/api/v1/stats/breakdown", property=prop, metrics=metrics, limit="100"
    )
    assert status == 200, body
    assert headers.get("x-liveinsight-answered-from") == "counters"
    key = prop.split(":")[1]
    got = {r[key]: {m: r[m] for m in metrics.split(",")} for r in body["results"]}
    assert got == oracle_rows(world.oracle, prop, metrics) and len(got) > 2


FILTERED = [
    ("visit:region==DE-BY|FR-IDF", "visit:channel"),
    ("visit:channel!=Direct", "visit:city"),
    ("visit:city==Munich|Berlin;visit:channel==Paid Search|Organic Search", "visit:region"),
    ("visit:channel==Organic Social", "event:page"),
    ("visit:region!=DE-BY", "visit:country"),
]


@pytest.mark.parametrize(("filters", "prop"), FILTERED)
def test_v1_filtered_breakdowns_from_the_archive_equal_the_oracle(
    world: GeoWorld, filters: str, prop: str
) -> None:
    metrics = "visitors,visits,pageviews"
    status, body, headers = world.get(
        "/api/v1/stats/breakdown", property=prop, metrics=metrics, filters=filters, limit="100"
    )
    assert status == 200, body
    assert headers.get("x-liveinsight-answered-from") == "archive"
    key = prop.split(":")[1]
    got = {r[key]: {m: r[m] for m in metrics.split(",")} for r in body["results"]}
    assert got == oracle_rows(world.oracle, prop, metrics, filters) and got


def v2(world: GeoWorld, body: dict[str, Any]) -> dict[str, Any]:
    response = world.pipeline.post(
        "/api/v2/query",
        {"site_id": SITE, "date_range": [str(FIRST), str(LAST)], **body},
        world.key,
    )
    assert response.status == 200, response.json()
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.parametrize(
    ("dimension", "stored"),
    [
        ("visit:country_name", "visit:country"),
        ("visit:region_name", "visit:region"),
        ("visit:city_name", "visit:city"),
        ("visit:region", "visit:region"),
        ("visit:channel", "visit:channel"),
    ],
)
def test_v2_breakdowns_by_location_and_channel_equal_the_oracle(
    world: GeoWorld, dimension: str, stored: str
) -> None:
    body = v2(world, {"metrics": ["visitors", "visits"], "dimensions": [dimension]})
    got = {r["dimensions"][0]: r["metrics"] for r in body["results"]}
    want = {
        (geo.display(dimension, v) if dimension != stored else v): [c["visitors"], c["visits"]]
        for v, c in world.oracle.answer(FIRST, LAST, (), stored).items()
    }
    assert got == want and len(got) > 2
    assert body["query"]["dimensions"] == [dimension]


def test_v2_filters_on_names_are_filters_on_their_codes(world: GeoWorld) -> None:
    body = v2(
        world,
        {
            "metrics": ["visitors", "pageviews"],
            "dimensions": ["visit:city_name", "visit:channel"],
            "filters": [
                ["is", "visit:country_name", ["Germany"]],
                ["contains", "visit:region_name", ["bav"], {"case_sensitive": False}],
            ],
        },
    )
    got = {tuple(r["dimensions"]): r["metrics"] for r in body["results"]}
    by_city = world.oracle.answer(
        FIRST, LAST, conds("visit:country==DE;visit:region==DE-BY"), "visit:city"
    )
    assert {city for city, _ in got} == set(by_city) == {"Munich", "Nuremberg"}
    for city, cell in by_city.items():
        rows = [m for (c, _), m in got.items() if c == city]
        assert (
            sum(m[0] for m in rows) >= cell["visitors"]
            and sum(m[1] for m in rows) == cell["pageviews"]
        )
    # the question is echoed as asked, names and all
    assert body["query"]["filters"][0] == ["is", "visit:country_name", ["Germany"]]


# ---- an archive file written before the columns ------------------------------------------------


def _old_file(events: list[RawEvent], path: Path) -> Path:
    """A file as the writer made it before region, city and channel: without those columns."""
    new = path.with_name("with-columns.parquet")
    parquet.write_events(events, new)
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * EXCLUDE (region, city, channel) FROM read_parquet('{new}')) "
        f"TO '{path}' (FORMAT parquet)"
    )
    new.unlink()
    return path


@pytest.mark.parametrize("split", ["by_visitor", "by_day"])
def test_an_archive_file_without_the_new_columns_still_answers(
    world: GeoWorld, tmp_path: Path, split: str
) -> None:
    # Given the events in two files, one written before the columns (its events placed nowhere
    # and of no channel), split by visitor (files meeting in time) or by day (files apart)
    def old(e: RawEvent) -> bool:
        if split == "by_visitor":
            return int(e.visitor_id[-1], 16) % 2 == 0
        return e.ts < datetime(2026, 10, 28, 23, 0, tzinfo=UTC).timestamp() * 1000

    olds = [e for e in world.events if old(e)]
    news = [e for e in world.events if not old(e)]
    assert olds and news
    old_path = _old_file(olds, tmp_path / "old.parquet")
    new_path = tmp_path / "new.parquet"
    parquet.write_events(news, new_path)
    blank = [replace(e, region="", city="", channel="") for e in olds]
    oracle = MultiOracle(blank + news, TZ)
    engine = ArchiveEngine(SITE_RECORD, [old_path, new_path], visits=False)
    # Then breakdowns and filters by the new columns count the old file's events as without
    # them, and the old columns are as they were
    metrics = "visitors,visits,pageviews"
    for filters, prop in [
        ("", "visit:region"),
        ("", "visit:channel"),
        ("visit:city!=Munich", "visit:country"),
        ("visit:channel==Email|Display", "visit:city"),
    ]:
        q = parse.Query(
            SITE_RECORD,
            parse.DateRange(FIRST, LAST),
            parse.parse_filters(filters),
            tuple(metrics.split(",")),
        )
        parsed = parse.parse_property(prop)
        rows, _ = engine.breakdown(q, parsed, limit=1000)
        got = {r[parsed.key]: {m: r[m] for m in metrics.split(",")} for r in rows}
        assert got == oracle_rows(oracle, prop, metrics, filters), (filters, prop)
    # and compaction's readers take it: no schema problem, read as "", merged with the new
    assert parquet.schema_problem(old_path) is None
    assert {(e.region, e.city, e.channel) for e in parquet.read_events([old_path])} == {
        ("", "", "")
    }
    merged = tmp_path / "merged.parquet"
    assert parquet.merge_files([old_path, new_path], merged) == len(world.events)
    assert sorted(parquet.read_events([merged]), key=lambda e: e.event_id) == sorted(
        [replace(e, correlation_id="") for e in blank + news], key=lambda e: e.event_id
    )
