"""Saved segments over HTTP: the admin saves, renames and deletes them; a reader of the site lists
them; v2 applies one as `["is", "segment", [id]]` exactly as its filters; filters the v2 parser
refuses are refused when saved; a removed site takes its segments with it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.admin_client import Browser


@pytest.fixture()
def admin(browser: Browser) -> Browser:
    assert browser.login().status == 200
    created = browser.request(
        "POST", "/api/admin/sites", json_body={"domain": "seg.example", "goals": ["Signup"]}
    )
    assert created.status == 201, created.body
    return browser


def save(admin: Browser, name: str, filters: list[Any]) -> Any:
    return admin.request(
        "POST",
        "/api/admin/sites/seg.example/segments",
        json_body={"name": name, "filters": filters},
    )


def test_a_segment_goes_through_its_life(admin: Browser) -> None:
    google = save(admin, "From Google", [["is", "visit:source", ["Google"]]])
    assert google.status == 201, google.body
    german = save(
        admin,
        "German blog readers",
        [["is", "visit:country", ["DE"]], ["contains", "event:page", ["/blog"]]],
    )
    assert (google.json()["id"], german.json()["id"]) == (1, 2)  # numbered, as v2 names them
    listed = admin.request("GET", "/api/admin/sites/seg.example/segments").json()["segments"]
    assert [(s["id"], s["name"]) for s in listed] == [
        (1, "From Google"),
        (2, "German blog readers"),
    ]
    renamed = admin.request(
        "PATCH", "/api/admin/sites/seg.example/segments/1", json_body={"name": "Google"}
    )
    assert renamed.json()["name"] == "Google"
    assert renamed.json()["filters"] == [["is", "visit:source", ["Google"]]]
    assert admin.request("DELETE", "/api/admin/sites/seg.example/segments/1").status == 204
    assert admin.request("GET", "/api/admin/sites/seg.example/segments/1").status == 404
    assert admin.request("DELETE", "/api/admin/sites/seg.example/segments/1").status == 404
    # the next number is past the largest in use
    assert save(admin, "again", [["is", "visit:source", ["Bing"]]]).json()["id"] == 3


@pytest.mark.parametrize(
    "filters",
    [
        [["is", "visit:nonsense", ["x"]]],
        [["equals", "visit:source", ["x"]]],
        [["is", "segment", [1]]],  # a segment inside a segment
        "visit:source==Google",
        [],
    ],
)
def test_filters_v2_would_refuse_are_refused_when_saved(admin: Browser, filters: Any) -> None:
    save(admin, "base", [["is", "visit:source", ["Google"]]])
    reply = save(admin, "bad", filters)
    assert reply.status == 400, reply.body
    assert isinstance(reply.json()["error"], str) and reply.json()["error"]
    assert (
        len(admin.request("GET", "/api/admin/sites/seg.example/segments").json()["segments"]) == 1
    )


def test_a_removed_site_takes_its_segments(admin: Browser) -> None:
    save(admin, "From Google", [["is", "visit:source", ["Google"]]])
    assert admin.request("DELETE", "/api/admin/sites/seg.example").status == 200
    assert (
        admin.request("POST", "/api/admin/sites", json_body={"domain": "seg.example"}).status == 201
    )
    assert admin.request("GET", "/api/admin/sites/seg.example/segments").json() == {"segments": []}


def test_segments_need_the_admin(browser: Browser) -> None:
    reply = browser.request("GET", "/api/admin/sites/seg.example/segments")
    assert reply.status == 401
