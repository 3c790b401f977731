"""Sites under moto: settings are validated and updated in place, goals and hostnames kept as
lists, removal takes the site's keys and shared links with it, revocation works at once."""

from __future__ import annotations

import pytest

from core import keys
from core.aws import make_client
from core.sites import (
    GoalExists,
    GoalNotFound,
    SiteError,
    SiteExists,
    SiteNotFound,
    SiteStore,
)
from local import tables
from tests.integration.pipeline import Pipeline


@pytest.fixture()
def store(aws_env: dict[str, str]) -> SiteStore:
    return SiteStore(make_client("dynamodb"), aws_env["meta"], cache_seconds=0)


def test_site_is_added_with_goals_and_hostnames_and_read_back(store: SiteStore) -> None:
    store.add(
        "WWW.Example.com",
        tz="Europe/Berlin",
        hostnames=("example.com", "Shop.Example.net."),
        goals=("Signup", "Visit /pricing"),
    )

    site = store.get("example.com")

    assert site is not None
    assert (site.tz, site.public) == ("Europe/Berlin", False)
    assert site.hostnames == ("example.com", "shop.example.net")
    assert site.goals == ("Signup", "Visit /pricing")


def test_adding_a_site_twice_is_refused(store: SiteStore) -> None:
    store.add("example.com")
    with pytest.raises(SiteExists):
        store.add("example.com")


def test_update_changes_only_what_is_given(store: SiteStore) -> None:
    store.add("example.com", goals=("Signup",))

    updated = store.update("example.com", tz="America/New_York", public=True)

    assert (updated.tz, updated.public, updated.goals) == ("America/New_York", True, ("Signup",))
    assert store.get("example.com") == updated


def test_update_replaces_hostnames_and_an_empty_list_allows_any(store: SiteStore) -> None:
    store.add("example.com")
    assert store.update("example.com", hostnames=["a.example", "b.example"]).hostnames == (
        "a.example",
        "b.example",
    )
    assert store.update("example.com", hostnames=[]).hostnames == ()


@pytest.mark.parametrize(
    "change",
    [
        {"tz": "Mars/Olympus"},
        {"hostnames": ["https://example.com"]},
        {"hostnames": ["*.example.com"]},
        {"hostnames": ["example.com:8080"]},
        {"goals": ["Visit /blog/*"]},
        {"goals": ["Visit pricing"]},
        {"goals": ["Visit /a?b=1"]},
        {"goals": [""]},
        {"goals": ["pageview"]},
        {"goals": ["x" * 201]},
        {"goals": ["line\nbreak"]},
        {"goals": [f"Event {i}" for i in range(101)]},
    ],
)
def test_invalid_settings_are_refused_and_nothing_changes(
    store: SiteStore, change: dict[str, object]
) -> None:
    before = store.add("example.com")
    with pytest.raises(SiteError):
        store.update("example.com", **change)  # type: ignore[arg-type]
    assert store.get("example.com") == before


def test_update_of_an_unknown_site_is_not_found(store: SiteStore) -> None:
    with pytest.raises(SiteNotFound):
        store.update("nope.example", public=True)
    assert store.get("nope.example") is None  # no half-made item


def test_goals_are_added_listed_and_removed(store: SiteStore) -> None:
    store.add("example.com")
    store.add_goal("example.com", "Signup")
    store.add_goal("example.com", " Visit /pricing ")
    with pytest.raises(GoalExists):
        store.add_goal("example.com", "Signup")
    assert store.require("example.com").goals == ("Signup", "Visit /pricing")

    assert store.remove_goal("example.com", "Signup").goals == ("Visit /pricing",)
    with pytest.raises(GoalNotFound):
        store.remove_goal("example.com", "Signup")


def test_goals_are_stored_as_a_list_of_strings(store: SiteStore, aws_env: dict[str, str]) -> None:
    store.add("example.com")
    store.add_goal("example.com", "Visit /")
    item = make_client("dynamodb").get_item(
        TableName=aws_env["meta"], Key={"pk": {"S": keys.SITE_PK}, "sk": {"S": "example.com"}}
    )["Item"]
    assert item["goals"] == {"L": [{"S": "Visit /"}]}


def test_remove_takes_the_site_its_keys_and_its_shares(
    store: SiteStore, aws_env: dict[str, str]
) -> None:
    # Given two sites, each with keys and shared links
    for domain in ("gone.example", "kept.example"):
        store.add(domain)
    key = store.create_key("gone.example")
    store.create_key("gone.example")
    token, _ = store.create_share("gone.example", "press")
    kept_key = store.create_key("kept.example")
    kept_token, _ = store.create_share("kept.example")

    # When one site is removed
    removal = store.remove("gone.example")

    # Then it, its keys and its shares are gone, and nothing of the other site is
    assert (removal.keys, removal.shares) == (2, 1)
    assert store.get("gone.example") is None
    assert store.site_for_key(key) is None and store.site_for_share(token) is None
    assert store.list_keys("gone.example") == [] and store.list_shares("gone.example") == []
    assert store.site_for_key(kept_key) == "kept.example"
    assert store.site_for_share(kept_token) == "kept.example"
    left = {
        item["pk"]["S"]
        for item in tables.scan_all(make_client("dynamodb"), aws_env["meta"])
        if "gone.example" in item["pk"]["S"] or item.get("site", {}).get("S") == "gone.example"
    }
    assert left == set()


def test_removing_an_unknown_site_is_not_found(store: SiteStore) -> None:
    with pytest.raises(SiteNotFound):
        store.remove("nope.example")


def test_share_tokens_are_stored_only_as_hashes_and_revoked_by_id(
    store: SiteStore, aws_env: dict[str, str]
) -> None:
    store.add("example.com")
    token, link = store.create_share("example.com", "Weekly report")
    dump = str(tables.scan_all(make_client("dynamodb"), aws_env["meta"]))
    assert token not in dump
    assert store.list_shares("example.com") == [link]
    assert link.label == "Weekly report"

    assert store.revoke_share("example.com", link.id) == 1
    assert store.site_for_share(token) is None


def test_a_share_token_is_not_a_key_and_a_key_is_not_a_share_token(store: SiteStore) -> None:
    store.add("example.com")
    key = store.create_key("example.com")
    token, _ = store.create_share("example.com")
    assert store.site_for_key(token) is None
    assert store.site_for_share(key) is None


def test_hostname_not_allowed_gets_202_with_plausibles_drop_header(aws_env: dict[str, str]) -> None:
    # Given a site that accepts events from its own hostnames only
    pipeline = Pipeline(aws_env)
    pipeline.add_site("example.com")
    SiteStore(make_client("dynamodb"), aws_env["meta"]).update(
        "example.com", hostnames=["example.com"]
    )
    # When a page elsewhere sends an event for it, and a subdomain page sends one
    foreign = pipeline.send({"n": "pageview", "u": "https://copy.example/", "d": "example.com"})
    own = pipeline.send({"n": "pageview", "u": "https://blog.example.com/", "d": "example.com"})
    # Then the foreign one is dropped (its reason goes to the metrics), the other accepted
    assert foreign.status == 202
    assert foreign.headers["x-plausible-dropped"] == "1"
    assert "x-plausible-dropped" not in own.headers
    assert len(pipeline.read_stream()) == 1
