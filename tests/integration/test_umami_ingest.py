"""Umami's collect API (docs/compat.md §2) through the real ingest handler, stored and
aggregated."""

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


# ---- Umami website ids attached to a site, and @umami/node (docs/compat.md §7) --------------

# Any UUID an Umami server issued: no domain derives to it
ATTACHED = "50429a93-8479-4073-be80-d5d29c09c2ec"
# @umami/node's own user agent (0.4.0, as tests/e2e/test_trackers_e2e.py runs it:
# `Mozilla/5.0 Umami/${process.version}`); the real client is tested there
NODE_UA = "Mozilla/5.0 Umami/v20.20.2"


def attach(pipeline: Pipeline, domain: str, website: str | None) -> None:
    from core.sites import SiteStore

    SiteStore(pipeline.ddb, pipeline.names["meta"], cache_seconds=0).update(
        domain, umami_id=website
    )


def node_track(pipeline: Pipeline, payload: dict[str, Any]) -> Response:
    """The request @umami/node makes, emulated from its published source (the package is not
    installed here): POST {type, payload} as JSON with its own user agent, from a server (no
    Origin, no x-umami-cache). `umami.track("signup", data)` sends {website, name, data};
    `umami.track({...})` the object as given. Neither names a hostname."""
    return post(pipeline, "/api/send", {"type": "event", "payload": payload}, user_agent=NODE_UA)


def test_snippet_with_an_attached_uuid_is_counted_on_its_site(pipeline: Pipeline) -> None:
    # Given a site with an existing Umami snippet's website id attached
    key = pipeline.add_site(SITE)
    attach(pipeline, SITE, ATTACHED)
    # When Umami's tracker sends that id, spelt as the snippet has it (any case)
    response = post(pipeline, "/api/send", send(website=ATTACHED.upper(), url="/pricing"))
    # Then it is the site's pageview, answered as Umami answers
    assert response.status == 200, response.body
    assert set(response.json()) == {"cache", "sessionId", "visitId"}
    (item,) = events(pipeline)
    assert (item["site"]["S"], item["page"]["S"]) == (SITE, "/pricing")
    pipeline.pump()
    assert pipeline.realtime(SITE, key)["pageviews"] == 1


@pytest.mark.parametrize("website", ["attached", "derived"])
def test_umami_node_calls_without_hostname_are_counted(pipeline: Pipeline, website: str) -> None:
    # Given a site with an attached id, and the id derived from its domain
    key = pipeline.add_site(SITE)
    attach(pipeline, SITE, ATTACHED)
    uuid = ATTACHED if website == "attached" else website_id(SITE)
    # When @umami/node tracks a page (an object payload) and a named event with data
    page = node_track(pipeline, {"website": uuid, "url": "/checkout", "title": "Checkout"})
    signup = node_track(pipeline, {"website": uuid, "name": "signup", "data": {"plan": "pro"}})
    # Then both are answered as Umami answers
    for response in (page, signup):
        assert response.status == 200, response.body
        assert set(response.json()) == {"cache", "sessionId", "visitId"}
    # And stored for the site: the page at its path, the event (no url) at "/", as Umami does
    stored = sorted(events(pipeline), key=lambda item: item["name"]["S"])
    assert [(i["site"]["S"], i["name"]["S"], i["page"]["S"]) for i in stored] == [
        (SITE, "pageview", "/checkout"),
        (SITE, "signup", "/"),
    ]
    assert stored[1]["props"] == {"M": {"plan": {"S": "pro"}}}
    # And counted
    pipeline.pump()
    assert pipeline.realtime(SITE, key)["pageviews"] == 1


@pytest.mark.parametrize("user_agent", [NODE_UA, DESKTOP_UA, HEADLESS_UA])
def test_unknown_uuid_without_hostname_gets_website_not_found(
    pipeline: Pipeline, user_agent: str
) -> None:
    pipeline.add_site(SITE)
    attach(pipeline, SITE, ATTACHED)
    unknown = {"website": "0b9a4e0e-8c0e-4a55-9a41-5f0a8f3c7d21", "url": "/"}
    response = post(
        pipeline, "/api/send", {"type": "event", "payload": unknown}, user_agent=user_agent
    )
    assert response.status == 400
    assert response.json() == NOT_FOUND
    assert events(pipeline) == []


def test_a_detached_or_released_uuid_is_not_found_any_more(pipeline: Pipeline) -> None:
    from core.sites import SiteStore
    from tests.conftest import _clear_composition_roots

    # Given an id attached to one site, then detached; and another attached to a site removed
    pipeline.add_site(SITE)
    pipeline.add_site("gone.example")
    attach(pipeline, SITE, ATTACHED)
    attach(pipeline, "gone.example", website_id("old.example"))
    attach(pipeline, SITE, None)
    SiteStore(pipeline.ddb, pipeline.names["meta"], cache_seconds=0).remove("gone.example")
    _clear_composition_roots()  # a fresh ingest instance: nothing cached from before
    # When @umami/node sends either, or the removed site's derived id
    for uuid in (ATTACHED, website_id("old.example"), website_id("gone.example")):
        response = node_track(pipeline, {"website": uuid, "name": "signup"})
        # Then Umami's "Website not found."
        assert (response.status, response.json()) == (400, NOT_FOUND), uuid
    assert events(pipeline) == []


def test_a_site_added_before_umami_ids_gets_its_derived_id_with_any_update(
    pipeline: Pipeline,
) -> None:
    from core import keys
    from core.sites import SiteStore
    from tests.conftest import _clear_composition_roots

    # Given a site stored before its derived id had a lookup item
    pipeline.add_site(SITE)
    pipeline.ddb.delete_item(
        TableName=pipeline.names["meta"],
        Key={"pk": {"S": keys.umami_website_pk(website_id(SITE))}, "sk": {"S": keys.NO_SORT}},
    )
    payload = {"website": website_id(SITE), "name": "signup"}
    assert node_track(pipeline, payload).status == 400  # no hostname: nothing to derive from
    # (a browser snippet, which sends the hostname, works all along)
    assert post(pipeline, "/api/send", send(website=website_id(SITE))).status == 200
    # When the site is updated, with no change at all (`liveinsight site update DOMAIN`)
    SiteStore(pipeline.ddb, pipeline.names["meta"], cache_seconds=0).update(SITE)
    _clear_composition_roots()
    # Then @umami/node's calls with the derived id are counted
    assert node_track(pipeline, payload).status == 200
    assert len(events(pipeline)) == 2
