"""Funnels over HTTP: the admin defines them (signed in, with CSRF), clear 4xx errors for bad
definitions, and the stats routes count them, and journeys, from the archive the real ingest
and aggregator wrote, as the plain-Python recount does from the stored events."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from core.funnels import FunnelStore
from query_api import parse
from tests import funnel_oracle
from tests.faults import stored_events
from tests.integration.admin_client import Browser
from tests.integration.stats_world import FIRST, LAST, SITE, TZ, World

SPAN = f"{FIRST.isoformat()},{LAST.isoformat()}"


@pytest.fixture()
def admin(browser: Browser) -> Browser:
    assert browser.login().status == 200
    created = browser.request("POST", "/api/admin/sites", json_body={"domain": "shop.example"})
    assert created.status == 201, created.body
    return browser


FUNNELS = "/api/admin/sites/shop.example/funnels"


def test_a_funnel_goes_through_its_whole_life_over_http(admin: Browser) -> None:
    created = admin.request(
        "POST",
        FUNNELS,
        json_body={"name": " Checkout ", "steps": ["Visit /", "Visit /product/*", "Purchase"]},
    )
    assert created.status == 201, created.body
    funnel = created.json()
    assert funnel["name"] == "Checkout" and len(funnel["id"]) == 12
    assert funnel["steps"] == [
        {"label": "Visit /", "kind": "page", "value": "/"},
        {"label": "Visit /product/*", "kind": "page", "value": "/product/*"},
        {"label": "Purchase", "kind": "event", "value": "Purchase"},
    ]
    assert admin.request("GET", FUNNELS).json() == {"funnels": [funnel]}
    assert admin.request("GET", f"{FUNNELS}/{funnel['id']}").json() == funnel
    removed = admin.request("DELETE", f"{FUNNELS}/{funnel['id']}")
    assert removed.status == 200 and removed.json() == {"removed": funnel["id"]}
    assert admin.request("GET", FUNNELS).json() == {"funnels": []}
    gone = admin.request("GET", f"{FUNNELS}/{funnel['id']}")
    assert gone.status == 404 and "no funnel" in gone.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x", "steps": ["Visit /"]}, "2 to 8 steps"),
        ({"name": "x", "steps": [f"Visit /{i}" for i in range(9)]}, "2 to 8 steps"),
        ({"name": " ", "steps": ["Visit /", "Signup"]}, "1 to 120 characters"),
        ({"name": "n" * 121, "steps": ["Visit /", "Signup"]}, "1 to 120 characters"),
        ({"name": "x", "steps": ["Visit /", "Visit /"]}, "twice"),
        ({"name": "x", "steps": ["Visit /", "pageview"]}, "not a custom event"),
        ({"name": "x", "steps": ["Visit pricing", "Signup"]}, "starting with '/'"),
        ({"name": "x", "steps": ["Visit /a b", "Signup"]}, "no spaces"),
        ({"name": "x", "steps": ["Visit /" + "*" * 11, "Signup"]}, "wildcards"),
        ({"name": "x", "steps": ["Visit /", "Sign\nup"]}, "control characters"),
        ({"name": "x", "steps": ["Visit /", 3]}, "steps"),
        ({"name": "x", "steps": "Visit /"}, "steps"),
        ({"name": "x", "steps": ["Visit /", "Signup"], "kind": "strict"}, "kind"),
        ({"steps": ["Visit /", "Signup"]}, "name"),
    ],
)
def test_an_invalid_funnel_is_a_400_saying_why(
    admin: Browser, body: dict[str, Any], message: str
) -> None:
    reply = admin.request("POST", FUNNELS, json_body=body)
    assert reply.status == 400, reply.body
    assert message in reply.json()["error"]


def test_a_second_funnel_of_the_same_name_is_a_409(admin: Browser) -> None:
    body = {"name": "Signup", "steps": ["Visit /", "Signup"]}
    assert admin.request("POST", FUNNELS, json_body=body).status == 201
    again = admin.request("POST", FUNNELS, json_body=body)
    assert again.status == 409 and "already" in again.json()["error"]


def test_unknown_sites_and_funnels_are_404s(admin: Browser) -> None:
    assert admin.request("GET", "/api/admin/sites/nowhere.example/funnels").status == 404
    body = {"name": "x", "steps": ["Visit /", "Signup"]}
    assert (
        admin.request("POST", "/api/admin/sites/nowhere.example/funnels", json_body=body).status
        == 404
    )
    for funnel_id in ("0123456789ab", "not-an-id", "x" * 64):
        assert admin.request("GET", f"{FUNNELS}/{funnel_id}").status == 404
        assert admin.request("DELETE", f"{FUNNELS}/{funnel_id}").status == 404


def test_funnel_admin_needs_the_sign_in_and_the_csrf_token(browser: Browser) -> None:
    assert browser.request("GET", FUNNELS).status == 401
    assert browser.login().status == 200
    browser.request("POST", "/api/admin/sites", json_body={"domain": "shop.example"})
    body = {"name": "x", "steps": ["Visit /", "Signup"]}
    refused = browser.request("POST", FUNNELS, json_body=body, with_csrf=False)
    assert refused.status == 403 and "CSRF" in refused.json()["error"]
    keyed = browser.request("GET", FUNNELS, headers={"authorization": "Bearer li_x"})
    assert keyed.status == 403


def test_removing_a_site_removes_its_funnels(admin: Browser) -> None:
    body = {"name": "x", "steps": ["Visit /", "Signup"]}
    assert admin.request("POST", FUNNELS, json_body=body).status == 201
    assert admin.request("DELETE", "/api/admin/sites/shop.example").status == 200
    admin.request("POST", "/api/admin/sites", json_body={"domain": "shop.example"})
    assert admin.request("GET", FUNNELS).json() == {"funnels": []}


# ---- counting, on the stats world's traffic ----------------------------------------------


STEPS = ("Signup", "Visit /blog*")  # the stats world has few long visits


@pytest.fixture(scope="module")
def funnel_id(world: World) -> str:
    store = FunnelStore(world.pipeline.ddb, world.pipeline.names["meta"])
    return store.add(SITE, "Blog signups", list(STEPS)).id


def test_the_funnel_counts_what_the_recount_counts(world: World, funnel_id: str) -> None:
    events = stored_events(world.pipeline.ddb, world.pipeline.names)
    reached = []
    for filters in ("", "visit:browser==Chrome", "event:props:plan!=pro"):
        status, body = world.get(
            "/api/stats/funnel", funnel_id=funnel_id, period="custom", date=SPAN, filters=filters
        )
        assert status == 200, body
        want = funnel_oracle.funnel_visitors(
            events, TZ, FIRST, LAST, STEPS, parse.parse_filters(filters)
        )
        assert [s["visitors"] for s in body["steps"]] == want
        assert body["entering_visitors"] == want[0] and body["converted_visitors"] == want[-1]
        reached.append(want[-1])
    assert reached[0], f"the traffic should go through the funnel: {reached}"
    assert body["answered_from"] == "archive" and body["name"] == "Blog signups"
    assert body["range"] == {"first": FIRST.isoformat(), "last": LAST.isoformat(), "tz": TZ}
    assert [s["label"] for s in body["steps"]] == list(STEPS)
    first = body["steps"][0]["visitors"]
    for before, step in zip(body["steps"], body["steps"][1:], strict=False):
        assert step["dropoff"] == before["visitors"] - step["visitors"]
        assert step["conversion_rate"] == round(100 * step["visitors"] / first, 2)
    assert body["conversion_rate"] == body["steps"][-1]["conversion_rate"]


def test_journeys_count_what_the_recount_counts(world: World) -> None:
    events = stored_events(world.pipeline.ddb, world.pipeline.names)
    for side, page in (("entry", "/"), ("exit", "/blog*")):
        status, body = world.get(
            "/api/stats/journeys",
            period="custom",
            date=SPAN,
            steps="3",
            limit="100",
            **{side: page},
        )
        assert status == 200, body
        want = funnel_oracle.journeys(events, TZ, FIRST, LAST, page, side == "entry", 3)
        assert want, "the traffic should have paths from / and to /blog*"
        ordered = sorted(want, key=lambda p: (-want[p][0], p))
        assert body["results"] == [
            {"path": list(p), "visitors": want[p][0], "visits": want[p][1]} for p in ordered
        ]
        assert (body["steps"], body["limit"], body[side]) == (3, 100, page)


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/stats/funnel?funnel_id=0123456789ab", 404, "Funnel not found"),
        ("/api/stats/funnel?funnel_id=nope", 404, "Funnel not found"),
        ("/api/stats/funnel?funnel_id={id}&filters=event:page%3D%3D/", 400, "pages"),
        ("/api/stats/funnel?funnel_id={id}&filters=event:goal%3D%3DSignup", 400, "goals"),
        ("/api/stats/funnel?funnel_id={id}&period=realtime", 400, "period"),
        ("/api/stats/funnel?funnel_id={id}&filters=visit:nope%3D%3Dx", 400, "filter"),
        ("/api/stats/funnel", 400, "funnel_id"),
        ("/api/stats/journeys?period=7d", 400, "`entry`"),
        ("/api/stats/journeys?entry=/&exit=/", 400, "`entry`"),
        ("/api/stats/journeys?entry=blog", 400, "paths starting"),
        ("/api/stats/journeys?entry=/&steps=6", 400, "`steps`"),
        ("/api/stats/journeys?entry=/&steps=1", 400, "`steps`"),
        ("/api/stats/journeys?entry=/&limit=0", 400, "`limit`"),
        ("/api/stats/journeys?entry=/&limit=x", 400, "`limit`"),
    ],
)
def test_bad_stats_requests_are_clear_4xx(
    world: World, funnel_id: str, path: str, status: int, message: str
) -> None:
    path = path.replace("{id}", funnel_id)
    response = world.pipeline.get(f"{path}{'&' if '?' in path else '?'}site_id={SITE}", world.key)
    assert response.status == status, response.body
    assert message in response.json()["error"]


def test_funnels_need_the_archive(world: World, funnel_id: str, without_archive: None) -> None:
    for path in (f"/api/stats/funnel?funnel_id={funnel_id}", "/api/stats/journeys?entry=/"):
        response = world.pipeline.get(f"{path}&site_id={SITE}", world.key)
        assert response.status == 400
        assert "event archive" in response.json()["error"]


def test_funnels_are_read_with_the_stats_credentials(world: World, funnel_id: str) -> None:
    listed = world.pipeline.get(f"/api/stats/funnels?site_id={SITE}", world.key)
    assert [f["id"] for f in listed.json()["funnels"]] == [funnel_id]
    for key in (None, "li_wrong"):
        response = world.pipeline.get(
            f"/api/stats/funnel?site_id={SITE}&funnel_id={funnel_id}", key
        )
        assert response.status == 401
    other = world.pipeline.get(f"/api/stats/funnels?site_id={quote('other.example')}", world.key)
    assert other.status == 401
