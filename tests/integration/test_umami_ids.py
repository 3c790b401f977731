"""Umami website ids attached to sites (docs/compat.md §7): the store, the admin API and the CLI.

A site holds at most one attached id beside the one derived from its domain; an id names one
site at a time (409 otherwise); a removed site releases its ids; a bad id is a clear 400 (exit 2
from the CLI). What ingest does with them is in test_umami_ingest.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core import keys
from core.sites import SiteStore, UmamiIdTaken, derived_umami_id
from tests.integration.admin_client import Browser
from tests.integration.pipeline import Pipeline
from tests.integration.test_cli import Cli

ATTACHED = "50429a93-8479-4073-be80-d5d29c09c2ec"
OTHER = "9d0c7f1e-3b4a-4c5d-8e6f-7a8b9c0d1e2f"


def lookups(pipeline: Pipeline) -> dict[str, str]:
    """Every Umami id's lookup item in the meta table: id -> site."""
    prefix = keys.umami_website_pk("")
    return {
        item["pk"]["S"].removeprefix(prefix): item["site"]["S"]
        for item in pipeline.scan("meta")
        if item["pk"]["S"].startswith(prefix)
    }


@pytest.fixture()
def store(pipeline: Pipeline) -> SiteStore:
    return SiteStore(pipeline.ddb, pipeline.names["meta"], cache_seconds=0)


def test_attach_replace_detach_and_remove_keep_one_lookup_item_per_id(
    pipeline: Pipeline, store: SiteStore
) -> None:
    # Given two sites: each has its derived id's lookup item from the start
    store.add("a.example")
    store.add("b.example")
    derived = {derived_umami_id(d): d for d in ("a.example", "b.example")}
    assert lookups(pipeline) == derived
    # When a.example attaches an id, spelt in capitals in braces
    site = store.update("a.example", umami_id="{" + ATTACHED.upper() + "}")
    # Then it is stored in its canonical form and names a.example
    assert site.umami_id == ATTACHED
    assert store.site_for_umami_id(ATTACHED) == site
    assert lookups(pipeline) == {**derived, ATTACHED: "a.example"}
    # And b.example cannot take it, nor a.example's derived id
    for taken in (ATTACHED, derived_umami_id("a.example")):
        with pytest.raises(UmamiIdTaken, match=r"attached to site a\.example"):
            store.update("b.example", umami_id=taken, tz="Europe/Berlin")
    assert store.require("b.example").tz == "UTC"  # nothing of the refused change was made
    # When a.example attaches another id, the first is released
    store.update("a.example", umami_id=OTHER)
    assert lookups(pipeline) == {**derived, OTHER: "a.example"}
    assert store.site_for_umami_id(ATTACHED) is None
    # When it detaches it, only its derived id is left
    assert store.update("a.example", umami_id=None).umami_id is None
    assert lookups(pipeline) == derived
    # And a removed site releases its ids, attached and derived
    store.update("b.example", umami_id=ATTACHED)
    store.remove("b.example")
    assert lookups(pipeline) == {derived_umami_id("a.example"): "a.example"}
    assert store.site_for_umami_id(ATTACHED) is None
    assert store.update("a.example", umami_id=ATTACHED).umami_id == ATTACHED


def test_a_lookup_by_umami_id_is_cached_like_a_site(pipeline: Pipeline) -> None:
    # Given an ingest-like store that caches, and a site with an attached id
    SiteStore(pipeline.ddb, pipeline.names["meta"], cache_seconds=0).add("a.example")
    SiteStore(pipeline.ddb, pipeline.names["meta"], cache_seconds=0).update(
        "a.example", umami_id=ATTACHED
    )
    reads: list[dict[str, Any]] = []

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(pipeline.ddb, name)

        def get_item(self, **kwargs: Any) -> Any:
            reads.append(kwargs["Key"])
            return pipeline.ddb.get_item(**kwargs)

    cached = SiteStore(Counting(), pipeline.names["meta"], cache_seconds=30)
    # When it is looked up three times, and an unknown id twice
    for _ in range(3):
        site = cached.site_for_umami_id(ATTACHED)
        assert site is not None and site.domain == "a.example"
    for _ in range(2):
        assert cached.site_for_umami_id(OTHER) is None
    # Then the id, the site and the unknown id were each read once
    assert [k["pk"]["S"] for k in reads] == [
        keys.umami_website_pk(ATTACHED),
        keys.SITE_PK,
        keys.umami_website_pk(OTHER),
    ]


@pytest.fixture()
def admin(browser: Browser) -> Browser:
    assert browser.login().status == 200
    for domain in ("a.example", "b.example"):
        created = browser.request("POST", "/api/admin/sites", json_body={"domain": domain})
        assert created.status == 201
    return browser


def test_admin_api_attaches_shows_refuses_and_detaches_an_umami_id(admin: Browser) -> None:
    path = "/api/admin/sites/a.example"
    # Every site shows its derived id, and no attached one yet
    site = admin.request("GET", path).json()
    assert (site["umami_id"], site["umami_derived_id"]) == (None, derived_umami_id("a.example"))
    # Attach
    attached = admin.request("PATCH", path, json_body={"umami_id": ATTACHED.upper()})
    assert attached.status == 200, attached.body
    assert attached.json()["umami_id"] == ATTACHED
    assert admin.request("GET", path).json()["umami_id"] == ATTACHED
    listed = admin.request("GET", "/api/admin/sites").json()["sites"]
    assert {s["domain"]: s["umami_id"] for s in listed} == {
        "a.example": ATTACHED,
        "b.example": None,
    }
    # A patch without the field keeps it
    assert admin.request("PATCH", path, json_body={"public": True}).json()["umami_id"] == ATTACHED
    # Another site cannot take it: 409, naming who holds it
    taken = admin.request("PATCH", "/api/admin/sites/b.example", json_body={"umami_id": ATTACHED})
    assert taken.status == 409
    assert "attached to site a.example" in taken.json()["error"]
    # null detaches; then the other site may take it
    detached = admin.request("PATCH", path, json_body={"umami_id": None})
    assert (detached.status, detached.json()["umami_id"]) == (200, None)
    moved = admin.request("PATCH", "/api/admin/sites/b.example", json_body={"umami_id": ATTACHED})
    assert (moved.status, moved.json()["umami_id"]) == (200, ATTACHED)
    # Removing the site releases it
    assert admin.request("DELETE", "/api/admin/sites/b.example").status == 200
    again = admin.request("PATCH", path, json_body={"umami_id": ATTACHED})
    assert (again.status, again.json()["umami_id"]) == (200, ATTACHED)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("not-a-uuid", "is not a UUID"),
        ("", "is not a UUID"),
        ("50429a93-8479-4073-be80-d5d29c09c2e", "is not a UUID"),
        ("x" * 65, "umami_id"),
        (42, "umami_id"),
    ],
    ids=["words", "empty", "short", "long", "number"],
)
def test_admin_api_refuses_a_bad_umami_id_with_a_clear_400(
    admin: Browser, value: Any, words: str
) -> None:
    reply = admin.request("PATCH", "/api/admin/sites/a.example", json_body={"umami_id": value})
    assert reply.status == 400, reply.body
    assert words in reply.json()["error"]
    assert admin.request("GET", "/api/admin/sites/a.example").json()["umami_id"] is None


@pytest.fixture()
def cli(aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Cli:
    return Cli(capsys, tmp_path)


def test_cli_attaches_lists_refuses_and_detaches_an_umami_id(cli: Cli) -> None:
    cli.ok("site", "add", "a.example")
    cli.ok("site", "add", "b.example")
    # Attach: shown by update and by list
    updated = cli.ok("site", "update", "a.example", "--umami-id", ATTACHED)
    assert (updated["umami_id"], updated["umami_derived_id"]) == (
        ATTACHED,
        derived_umami_id("a.example"),
    )
    assert {s["domain"]: s["umami_id"] for s in cli.ok("site", "list")["sites"]} == {
        "a.example": ATTACHED,
        "b.example": None,
    }
    # Another site cannot take it; a bad id is refused; both exit 2 with a JSON error
    code, out, err = cli.run("site", "update", "b.example", "--umami-id", ATTACHED, "--json")
    assert (code, out) == (2, None)
    assert "attached to site a.example" in json.loads(err)["error"]
    code, out, err = cli.run("site", "update", "b.example", "--umami-id", "nope", "--json")
    assert (code, out) == (2, None)
    assert "is not a UUID" in json.loads(err)["error"]
    # Detach; then removal of the site that takes it releases it again
    assert cli.ok("site", "update", "a.example", "--no-umami-id")["umami_id"] is None
    assert cli.ok("site", "update", "b.example", "--umami-id", ATTACHED)["umami_id"] == ATTACHED
    cli.ok("site", "remove", "b.example")
    assert cli.ok("site", "update", "a.example", "--umami-id", ATTACHED)["umami_id"] == ATTACHED


def test_cli_refuses_attaching_and_detaching_at_once(cli: Cli) -> None:
    cli.ok("site", "add", "a.example")
    with pytest.raises(SystemExit) as exited:
        cli.run("site", "update", "a.example", "--umami-id", ATTACHED, "--no-umami-id")
    assert exited.value.code == 2
