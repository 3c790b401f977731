"""Umami's collect API (COMPAT.md §2) through the real ingest handler, stored and aggregated."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.edge import ORIGIN_HEADER
from ingest.umami import website_id
from local.front import LOCAL_ORIGIN_SECRET, api_gateway_event
from tests.integration.pipeline import DESKTOP_UA, Pipeline, Response

SITE = "umami.example"
NOT_FOUND = {"error": {"message": "Website not found.", "code": "bad-request", "status": 400}}
HEADLESS_UA = DESKTOP_UA.replace("Chrome/", "HeadlessChrome/")


@pytest.fixture()
def pipeline(aws_env: dict[str, str]) -> Pipeline:
    return Pipeline(aws_env)


def post(
    pipeline: Pipeline,
    path: str,
    body: Any,
    *,
    user_agent: str = DESKTOP_UA,
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> Response:
    """A request as Umami's tracker sends it: application/json, from a browser on 127.0.0.1."""
    event = api_gateway_event(
        method,
        path,
        {
            "content-type": "application/json",
            "user-agent": user_agent,
            "cloudfront-viewer-address": "198.51.100.20:443",
            ORIGIN_HEADER: LOCAL_ORIGIN_SECRET,
            **(headers or {}),
        },
        b"" if body is None else json.dumps(body).encode(),
        "127.0.0.1",
    )
    result = pipeline.ingest_fn.invoke(event)
    return Response(result["statusCode"], result.get("headers", {}), result.get("body", ""))


def send(kind: str = "event", **payload: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "payload": {
            "website": SITE,
            "hostname": SITE,
            "language": "en-US",
            "screen": "1920x1080",
            "title": "Caf%C3%A9%20%E2%80%94%20Men%C3%BC",
            "url": "/",
            "referrer": "",
            **payload,
        },
    }


def events(pipeline: Pipeline) -> list[dict[str, Any]]:
    return pipeline.scan("events")


def test_pageview_and_named_event_are_stored_and_counted(pipeline: Pipeline) -> None:
    # Given a site
    key = pipeline.add_site(SITE)
    # When Umami's tracker sends a pageview (path-only url, percent-encoded title) and an event
    landing = post(
        pipeline,
        "/api/send",
        send(url="/pricing?utm_source=news", referrer="https://www.google.com/search?q=x"),
    )
    signup = post(
        pipeline, "/api/send", send(url="/pricing", name="signup", data={"plan": "pro", "n": 2})
    )
    # Then both get Umami's 200 JSON answer, from any origin
    for response in (landing, signup):
        assert response.status == 200
        assert response.headers["content-type"] == "application/json"
        assert response.headers["access-control-allow-origin"] == "*"
        assert set(response.json()) == {"cache", "sessionId", "visitId"}
    assert landing.json()["sessionId"] == signup.json()["sessionId"]
    # And they are stored as the pageview and custom event they describe
    # (two events in one millisecond have no order: take them by name)
    pageview, event = sorted(events(pipeline), key=lambda item: item["name"]["S"])
    assert pageview["name"] == {"S": "pageview"}
    assert pageview["page"] == {"S": "/pricing"}
    assert pageview["hostname"] == {"S": SITE}
    assert pageview["source"] == {"S": "news"}
    assert pageview["referrer"] == {"S": "https://www.google.com/search"}
    assert pageview["device"] == {"S": "Desktop"}  # 1920 px wide
    assert event["name"] == {"S": "signup"}
    assert event["props"] == {"M": {"plan": {"S": "pro"}, "n": {"S": "2"}}}
    assert "title" not in pageview and "language" not in pageview
    # And counted
    assert len(pipeline.pump()) == 2
    assert pipeline.realtime(SITE, key)["pageviews"] == 1


def test_spa_navigation_with_the_previous_path_as_referrer_keeps_the_visit_source(
    pipeline: Pipeline,
) -> None:
    pipeline.add_site(SITE)
    assert post(pipeline, "/api/send", send(url="/b", referrer="/a")).status == 200
    (item,) = events(pipeline)
    assert item["source"] == {"S": "Direct / None"}  # a self-referral is no source
    assert "referrer" not in item


def test_website_may_be_the_uuid_derived_from_the_domain(pipeline: Pipeline) -> None:
    pipeline.add_site(SITE)
    response = post(pipeline, "/api/send", send(website=website_id(SITE), hostname=f"www.{SITE}"))
    assert response.status == 200
    assert [i["site"]["S"] for i in events(pipeline)] == [SITE]


@pytest.mark.parametrize("user_agent", [DESKTOP_UA, HEADLESS_UA], ids=["browser", "bot"])
@pytest.mark.parametrize(
    "website", ["nowhere.example", website_id("nowhere.example")], ids=["domain", "uuid"]
)
def test_unknown_website_gets_400_with_umamis_body(
    pipeline: Pipeline, website: str, user_agent: str
) -> None:
    pipeline.add_site(SITE)
    response = post(pipeline, "/api/send", send(website=website), user_agent=user_agent)
    assert response.status == 400
    assert response.json() == NOT_FOUND
    assert events(pipeline) == []


def test_unknown_website_is_logged_with_its_drop_reason(pipeline: Pipeline, json_logs: Any) -> None:
    pipeline.add_site(SITE)
    assert post(pipeline, "/api/send", send(website="nowhere.example")).status == 400
    (line,) = [line for line in json_logs() if line["message"] == "events ingested"]
    assert line["dropped"] == ["unknown_site"]


@pytest.mark.parametrize("website", ["İ" * 253, "umami example", "bücher.de", "*"])
def test_website_that_is_no_domain_gets_400_naming_the_field(
    pipeline: Pipeline, website: str
) -> None:
    pipeline.add_site(SITE)
    response = post(pipeline, "/api/send", send(website=website))
    assert response.status == 400
    assert response.json()["error"]["message"].startswith("website: ")
    assert events(pipeline) == []


def test_bot_gets_beep_boop_and_nothing_is_stored(pipeline: Pipeline) -> None:
    pipeline.add_site(SITE)
    response = post(pipeline, "/api/send", send(), user_agent=HEADLESS_UA)
    assert (response.status, response.json()) == (200, {"beep": "boop"})
    assert "x-liveinsight-dropped" not in response.headers  # the reason: metrics and logs only
    assert events(pipeline) == []


def test_identify_is_answered_and_stores_nothing(pipeline: Pipeline) -> None:
    pipeline.add_site(SITE)
    response = post(pipeline, "/api/send", send("identify", id="user-42", data={"email": "a@b.c"}))
    assert response.status == 200 and "sessionId" in response.json()
    assert events(pipeline) == []


def test_preflight_allows_the_umami_cache_header_from_any_origin(pipeline: Pipeline) -> None:
    response = post(
        pipeline,
        "/api/send",
        None,
        method="OPTIONS",
        headers={
            "origin": "https://shop.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-umami-cache",
        },
    )
    assert response.status == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "x-umami-cache" in response.headers["access-control-allow-headers"]
    assert "POST" in response.headers["access-control-allow-methods"]


def test_cache_header_sent_back_by_the_tracker_is_accepted(pipeline: Pipeline) -> None:
    pipeline.add_site(SITE)
    first = post(pipeline, "/api/send", send())
    again = post(pipeline, "/api/send", send(url="/x"), headers={"x-umami-cache": first.body})
    assert again.status == 200 and len(events(pipeline)) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"type": "event"},
        {"type": "event", "payload": {"hostname": SITE, "url": "/"}},
        {"type": "event", "payload": {"website": SITE, "url": "javascript:alert(1)"}},
        {"type": "event", "payload": {"website": SITE, "url": "/", "data": [1]}},
        {"type": "other", "payload": {"website": SITE}},
    ],
    ids=["no-payload", "no-website", "javascript-url", "data-a-list", "unknown-type"],
)
def test_malformed_call_gets_400_with_umamis_error_shape(
    pipeline: Pipeline, body: dict[str, Any]
) -> None:
    pipeline.add_site(SITE)
    response = post(pipeline, "/api/send", body)
    assert response.status == 400
    error = response.json()["error"]
    assert error["status"] == 400 and error["code"] == "bad-request" and error["message"]
    assert events(pipeline) == []


def test_batch_answers_each_call_and_lists_the_failures(pipeline: Pipeline) -> None:
    # Given a batch of a pageview, a call for an unknown website, a bad call and an identify
    key = pipeline.add_site(SITE)
    batch = [
        send(url="/a"),
        send(website="nowhere.example"),
        {"type": "event"},
        send("identify", data={"plan": "pro"}),
        send(url="/a", name="signup"),
    ]
    # When it is posted to /api/batch
    response = post(pipeline, "/api/batch", batch)
    # Then Umami's summary says which failed and why
    assert response.status == 200
    summary = response.json()
    assert {k: summary[k] for k in ("size", "processed", "errors")} == {
        "size": 5,
        "processed": 3,
        "errors": 2,
    }
    assert [d["index"] for d in summary["details"]] == [1, 2]
    assert summary["details"][0]["response"] == NOT_FOUND
    # And the two events are stored and counted
    assert sorted(i["name"]["S"] for i in events(pipeline)) == ["pageview", "signup"]  # scan order
    pipeline.pump()
    assert pipeline.realtime(SITE, key)["pageviews"] == 1


@pytest.mark.parametrize("body", [{}, [], [send()] * 51], ids=["object", "empty", "over-50"])
def test_malformed_batch_gets_400(pipeline: Pipeline, body: Any) -> None:
    pipeline.add_site(SITE)
    response = post(pipeline, "/api/batch", body)
    assert response.status == 400 and "message" in response.json()["error"]
    assert events(pipeline) == []


def test_get_is_refused(pipeline: Pipeline) -> None:
    response = post(pipeline, "/api/send", None, method="GET")
    assert response.status == 405 and response.json()["error"]["status"] == 405
