"""What the real Plausible trackers post (docs/compat.md §1), through the real handlers under moto.

The bodies are the ones plausible-tracker 0.3.9 and @plausible-analytics/tracker 0.4.6 build (the
end-to-end test drives the trackers themselves in Chromium).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import ingest.handler
from tests.integration.pipeline import Pipeline

SITE = "plausible.example"
PAGE = f"https://{SITE}/pricing"


@pytest.fixture()
def pipeline(aws_env: dict[str, str]) -> Pipeline:
    return Pipeline(aws_env)


def stored(pipeline: Pipeline) -> list[dict[str, Any]]:
    return sorted(pipeline.scan("events"), key=lambda item: int(item["ts"]["N"]))


# Events and "today" inside one day, pinned: taken from the wall clock, two events 12 s apart
# straddled midnight when the suite ran just before it (make test-dates found it twice)
START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def send_at(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, seconds: float, body: dict[str, Any]
) -> int:
    """Posts `body` as ingest receives it `seconds` after START; its status."""
    monkeypatch.setattr(ingest.handler, "now", lambda: START + timedelta(seconds=seconds))
    return pipeline.send(body).status


def test_old_tracker_props_as_a_json_string_and_its_screen_width_are_stored(
    pipeline: Pipeline,
) -> None:
    # Given plausible-tracker 0.3.9's body: XHR, text/plain, p a JSON string, w, h 0, r null
    pipeline.add_site(SITE)
    body = {"n": "Signup", "u": PAGE, "d": SITE, "r": None, "w": 1280, "h": 0}
    body["p"] = json.dumps({"plan": "pro", "seats": 3})
    # When it is posted
    response = pipeline.send(body)
    # Then it is accepted and stored with its props as strings and the screen's device class
    assert (response.status, response.body) == (202, "ok")
    (item,) = stored(pipeline)
    assert item["props"] == {"M": {"plan": {"S": "pro"}, "seats": {"S": "3"}}}
    assert item["device"] == {"S": "Laptop"}


def test_new_tracker_revenue_and_non_interactive_flag_are_stored(pipeline: Pipeline) -> None:
    # Given @plausible-analytics/tracker 0.4.6's body: fetch keepalive, v, p an object, $, i
    pipeline.add_site(SITE)
    body = {
        "n": "Purchase",
        "v": 36,
        "u": PAGE,
        "d": SITE,
        "r": None,
        "p": {"plan": "pro"},
        "$": {"amount": 15.99, "currency": "USD"},
        "i": False,
    }
    assert pipeline.send(body, content_type="text/plain").status == 202
    (item,) = stored(pipeline)
    assert (item["revenue_amount"], item["revenue_currency"]) == ({"S": "15.99"}, {"S": "USD"})
    assert item["interactive"] == {"BOOL": False}
    assert item["props"] == {"M": {"plan": {"S": "pro"}}}


def test_engagement_keeps_scroll_depth_and_engaged_time_and_feeds_time_on_page(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, set_clock: Callable[[datetime], None]
) -> None:
    # Given a pageview, and the tracker's engagement event for it 12 s later
    key = pipeline.add_site(SITE)
    set_clock(START + timedelta(seconds=13))
    pageview = {"n": "pageview", "v": 36, "u": PAGE, "d": SITE, "r": None}
    assert send_at(pipeline, monkeypatch, 0, pageview) == 202
    engagement = {"n": "engagement", "v": 36, "u": PAGE, "d": SITE, "sd": 64, "e": 11800}
    assert send_at(pipeline, monkeypatch, 12, engagement) == 202
    # When they are aggregated
    pipeline.pump()
    # Then the engagement event keeps sd and e ...
    item = stored(pipeline)[1]
    assert (item["scroll_depth"], item["engaged_ms"]) == ({"N": "64"}, {"N": "11800"})
    # ... is no event of its own, and gives the page its time on page
    query = f"site_id={SITE}&period=day"
    aggregate = pipeline.get(f"/api/v1/stats/aggregate?{query}&metrics=events,pageviews", key)
    assert aggregate.json()["results"] == {"events": {"value": 1}, "pageviews": {"value": 1}}
    pages = pipeline.get(
        f"/api/v1/stats/breakdown?{query}&property=event:page&metrics=time_on_page", key
    )
    assert pages.json()["results"] == [{"page": "/pricing", "time_on_page": 12}]


def test_an_spa_pageview_carrying_the_page_it_left_stores_both_and_counts_as_two_requests_do(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, set_clock: Callable[[datetime], None]
) -> None:
    # Given our tracker's SPA navigation 12 s after landing on /: one request, the pageview of
    # /pricing carrying the engagement of / as `l` (decision 0041)
    key = pipeline.add_site(SITE)
    set_clock(START + timedelta(seconds=13))
    home = f"https://{SITE}/"
    assert send_at(pipeline, monkeypatch, 0, {"n": "pageview", "u": home, "d": SITE, "h": 0}) == 202
    left = {"u": home, "sd": 64, "e": 11800}
    navigation = {"n": "pageview", "u": PAGE, "d": SITE, "r": home, "h": 0, "l": left}
    assert send_at(pipeline, monkeypatch, 12, navigation) == 202
    # When they are aggregated
    pipeline.pump()
    # Then three events are stored: the engagement of / beside the pageview of /pricing ...
    items = stored(pipeline)
    named = {(i["name"]["S"], i["page"]["S"]): i for i in items}
    assert len(items) == 3
    assert set(named) == {("pageview", "/"), ("engagement", "/"), ("pageview", "/pricing")}
    engagement = named[("engagement", "/")]
    assert (engagement["scroll_depth"], engagement["engaged_ms"]) == ({"N": "64"}, {"N": "11800"})
    assert engagement["ts"] == named[("pageview", "/pricing")]["ts"]  # received with it
    assert len({i["visitor_id"]["S"] for i in items}) == 1
    # ... counted as the two requests of another tracker are: 2 pageviews, / for 12 s
    query = f"site_id={SITE}&period=day"
    aggregate = pipeline.get(f"/api/v1/stats/aggregate?{query}&metrics=events,pageviews", key)
    assert aggregate.json()["results"] == {"events": {"value": 2}, "pageviews": {"value": 2}}
    pages = pipeline.get(
        f"/api/v1/stats/breakdown?{query}&property=event:page&metrics=time_on_page", key
    )
    assert {r["page"]: r["time_on_page"] for r in pages.json()["results"]}["/"] == 12


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"n": "engagement", "u": PAGE, "d": SITE, "sd": 101, "e": 10}, "sd"),
        ({"n": "engagement", "u": PAGE, "d": SITE, "sd": 50, "e": -1}, "e"),
        ({"n": "x", "u": PAGE, "d": SITE, "$": {"amount": "lots", "currency": "EUR"}}, "revenue"),
        ({"n": "x", "u": PAGE, "d": SITE, "p": "{not json"}, "props"),
    ],
    ids=["scroll-over-100", "negative-time", "revenue-not-a-number", "props-string-not-json"],
)
def test_out_of_range_extras_get_the_400_error_body(
    pipeline: Pipeline, body: dict[str, Any], field: str
) -> None:
    pipeline.add_site(SITE)
    response = pipeline.send(body)
    assert response.status == 400
    assert response.headers["content-type"] == "application/json"
    assert field in response.json()["errors"]
    assert stored(pipeline) == []


def test_answers_carry_the_headers_plausible_trackers_expect(pipeline: Pipeline) -> None:
    pipeline.add_site(SITE)
    # accepted: 202 ok as text/plain, readable from any origin
    accepted = pipeline.send({"n": "pageview", "u": PAGE, "d": SITE})
    assert (accepted.status, accepted.body) == (202, "ok")
    assert accepted.headers["content-type"] == "text/plain"
    assert accepted.headers["access-control-allow-origin"] == "*"
    assert "x-plausible-dropped" not in accepted.headers
    # every site unknown: still 202 ok, said in Plausible's header (the reason only in metrics)
    dropped = pipeline.send({"n": "pageview", "u": PAGE, "d": "other.example"})
    assert (dropped.status, dropped.body) == (202, "ok")
    assert dropped.headers["x-plausible-dropped"] == "1"
    assert "x-liveinsight-dropped" not in dropped.headers
    # one of two sites unknown: recorded for the other, so not dropped in Plausible's sense
    partly = pipeline.send({"n": "pageview", "u": PAGE, "d": f"{SITE},other.example"})
    assert partly.status == 202 and "x-plausible-dropped" not in partly.headers
    assert partly.headers == accepted.headers
    assert [i["site"]["S"] for i in stored(pipeline)] == [SITE, SITE]
    # preflight (a tracker sending application/json): any origin, the asked-for headers
    preflight = pipeline.send(
        None,
        raw=b"",
        method="OPTIONS",
        extra_headers={"access-control-request-headers": "content-type"},
    )
    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-headers"] == "content-type"
