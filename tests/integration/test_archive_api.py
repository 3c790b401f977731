"""The archive behind the APIs: questions the counters refuse are answered from the event archive
the rollup tier wrote (through the real ingest, aggregator and query handlers), exactly as the
stats oracle computes them from the stored events; and the admin's raw-event export."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from query_api.metrics import compute
from tests.integration.admin_client import Browser
from tests.integration.pipeline import Pipeline
from tests.integration.stats_world import FIRST, LAST, SITE, TZ, World, world  # noqa: F401
from tests.stats_oracle import Cond, MultiOracle

SPAN = f"{FIRST.isoformat()},{LAST.isoformat()}"
ANSWERED_FROM = "x-liveinsight-answered-from"


@pytest.fixture(scope="module")
def multi(world: World) -> MultiOracle:  # noqa: F811
    from tests.faults import stored_events

    return MultiOracle(stored_events(world.pipeline.ddb, world.pipeline.names), TZ)


def _rows(oracle: MultiOracle, prop: str, conds: tuple[Cond, ...], metrics: list[str]) -> list:
    answer = oracle.answer(FIRST, LAST, conds, prop)
    key = prop.split(":")[-1]
    rows = [{key: value, **{m: compute(m, c) for m in metrics}} for value, c in answer.items()]
    rows = [r for r in rows if any(r[m] for m in metrics)]
    return sorted(rows, key=lambda r: (-r[metrics[0]], r[key]))


def _a_source(oracle: MultiOracle) -> str:
    sources = {v.events[0].source for v in oracle.visits}
    return sorted(sources - {"Direct / None"})[0]


def test_a_page_breakdown_filtered_by_source_comes_from_the_archive_and_equals_the_oracle(
    world: World,  # noqa: F811
    multi: MultiOracle,
) -> None:
    source = _a_source(multi)
    metrics = ["visitors", "pageviews", "visits", "bounce_rate"]
    response = world.pipeline.get(
        f"/api/v1/stats/breakdown?site_id={SITE}&period=custom&date={SPAN}"
        f"&property=event:page&filters=visit:source%3D%3D{source}&metrics={','.join(metrics)}",
        world.key,
    )
    assert response.status == 200, response.body
    assert response.headers.get(ANSWERED_FROM) == "archive"
    want = _rows(multi, "event:page", (Cond("visit:source", (source,)),), metrics)
    assert want, "the scenario should have pages viewed in visits from this source"
    assert response.json()["results"] == want


def test_two_filters_at_once_say_which_path_answered_and_how_fresh(world: World) -> None:  # noqa: F811
    status, body = world.get(
        "/api/stats/aggregate",
        period="custom",
        date=SPAN,
        metrics="visitors,pageviews",
        filters="visit:country==DE;event:page==/docs",
        compare="false",
    )
    assert status == 200, body
    assert body["answered_from"] == "archive"
    assert body["fresh_to"] is not None
    archived = datetime.fromisoformat(body["fresh_to"])
    assert archived <= datetime.now(UTC)


def test_what_the_counters_answer_they_still_answer(world: World) -> None:  # noqa: F811
    status, body = world.get(
        "/api/stats/breakdown", period="custom", date=SPAN, property="page", metrics="visitors"
    )
    assert status == 200, body
    assert body["answered_from"] == "counters"


def test_plausibles_own_errors_stay_errors(world: World) -> None:  # noqa: F811
    status, body = world.get(
        "/api/v1/stats/breakdown",
        period="custom",
        date=SPAN,
        property="event:page",
        metrics="views_per_visit",
    )
    assert status == 400
    assert "not supported in breakdown queries" in body["error"]


# ---- the admin's raw-event export --------------------------------------------------------------


SENT = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)  # ingest's clock for the exported events
DAY = SENT.date().isoformat()


@pytest.fixture()
def seeded(browser: Browser, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Browser:
    import ingest.handler

    monkeypatch.setattr(ingest.handler, "now", lambda: SENT)
    assert browser.login().status == 200
    created = browser.request(
        "POST", "/api/admin/sites", json_body={"domain": "export.example", "tz": "UTC"}
    )
    assert created.status == 201, created.body
    for n, page in enumerate(["/", "/?utm_source=%3DHYPERLINK(1)", "/pricing"]):
        body = {"n": "pageview", "u": f"https://export.example{page}", "d": "export.example"}
        assert pipeline.send(body, ip=f"198.51.100.{n + 1}").status == 202
    signup = {"n": "Signup", "u": "https://export.example/", "d": "export.example"}
    assert pipeline.send({**signup, "p": {"plan": "pro"}}).status == 202
    pipeline.pump()
    return browser


def _export(browser: Browser, **params: str) -> Any:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return browser.request("GET", f"/api/admin/sites/export.example/export?{query}")


def test_the_admin_exports_a_sites_raw_events_as_csv(seeded: Browser, pipeline: Pipeline) -> None:
    reply = _export(seeded, **{"from": DAY, "to": DAY, "format": "csv"})
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"].startswith("text/csv")
    assert "attachment" in reply.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(reply.body)))
    stored = pipeline.archived_events("export.example")
    assert sorted(r["event_id"] for r in rows) == sorted(e.event_id for e in stored)
    assert len(rows) == 4
    assert {r["page"] for r in rows} == {"/", "/pricing"}
    assert {r["utm_source"] for r in rows} == {"", "'=HYPERLINK(1)"}  # a formula cell as text
    assert json.loads(next(r["props"] for r in rows if r["name"] == "Signup")) == {"plan": "pro"}
    assert not any("198.51.100" in value for row in rows for value in row.values())


def test_the_admin_exports_parquet(seeded: Browser, pipeline: Pipeline, tmp_path: Any) -> None:
    from archive.parquet import read_events

    reply = _export(seeded, **{"from": DAY, "to": DAY, "format": "parquet"})
    assert reply.status == 200, reply.body
    raw = reply.body if isinstance(reply.body, bytes) else base64.b64decode(reply.body)
    path = tmp_path / "events.parquet"
    path.write_bytes(raw)
    assert sorted(e.event_id for e in read_events([path])) == sorted(
        e.event_id for e in pipeline.archived_events("export.example")
    )


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"from": "2026-01-01", "to": "2026-12-31", "format": "csv"}, 400),  # a year: the CLI's
        ({"from": "2026-02-02", "to": "2026-02-01", "format": "csv"}, 400),  # reversed
        ({"from": "2026-02-30", "to": "2026-03-01", "format": "csv"}, 400),  # no such day
        ({"from": "2026-02-01", "to": "2026-02-01", "format": "xlsx"}, 400),
        ({"from": "yesterday", "to": "2026-02-01", "format": "csv"}, 400),
    ],
)
def test_a_bad_export_request_is_a_clear_4xx(
    seeded: Browser, params: dict[str, str], status: int
) -> None:
    reply = _export(seeded, **params)
    assert reply.status == status, reply.body
    assert reply.json()["error"]


def test_the_export_needs_the_admin(pipeline: Pipeline, browser: Browser) -> None:
    reply = browser.request(
        "GET", "/api/admin/sites/export.example/export?from=2026-02-01&to=2026-02-01"
    )
    assert reply.status == 401
