"""Site administration over HTTP, signed in as the admin: sites, keys, goals and shared links;
clear 4xx errors; shared links read one site's stats and open nothing else."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.integration.admin_client import Browser


@pytest.fixture()
def admin(browser: Browser) -> Browser:
    assert browser.login().status == 200
    return browser


def test_a_site_goes_through_its_whole_life_over_http(admin: Browser) -> None:
    # Create: the site and a first read key
    created = admin.request(
        "POST",
        "/api/admin/sites",
        json_body={"domain": "www.Example.com", "tz": "Europe/Berlin", "goals": ["Signup"]},
    )
    assert created.status == 201, created.body
    site = created.json()["site"]
    assert (site["domain"], site["tz"], site["goals"]) == (
        "example.com",
        "Europe/Berlin",
        ["Signup"],
    )
    assert created.json()["key"].startswith("li_")
    assert 'data-domain="example.com"' in created.json()["snippet"]
    assert [s["domain"] for s in admin.request("GET", "/api/admin/sites").json()["sites"]] == [
        "example.com"
    ]
    # Update: time zone, public flag, allowed hostnames
    patched = admin.request(
        "PATCH",
        "/api/admin/sites/example.com",
        json_body={"tz": "UTC", "public": True, "hostnames": ["example.com", "shop.example"]},
    )
    assert patched.status == 200
    assert patched.json() | {"created_at": 0} == {
        "domain": "example.com",
        "tz": "UTC",
        "public": True,
        "created_at": 0,
        "goals": ["Signup"],
        "hostnames": ["example.com", "shop.example"],
        "retention_months": 24,
        "umami_id": None,
        "umami_derived_id": "cfbff0d1-9375-5685-968c-48ce8b15ae17",  # uuid5(DNS, domain)
    }
    # Goals: add, list, remove
    assert admin.request(
        "POST", "/api/admin/sites/example.com/goals", json_body={"goal": "Visit /pricing"}
    ).json() == {"goals": ["Signup", "Visit /pricing"]}
    assert admin.request("DELETE", "/api/admin/sites/example.com/goals?goal=Signup").json() == {
        "goals": ["Visit /pricing"]
    }
    assert admin.request("GET", "/api/admin/sites/example.com/goals").json() == {
        "goals": ["Visit /pricing"]
    }
    # Keys: create, list, revoke by id
    key = admin.request("POST", "/api/admin/sites/example.com/keys").json()
    listed = admin.request("GET", "/api/admin/sites/example.com/keys").json()["keys"]
    assert key["id"] in {k["id"] for k in listed} and len(listed) == 2
    assert "key" not in listed[0]  # a key is shown once, at creation
    revoked = admin.request("DELETE", f"/api/admin/sites/example.com/keys/{key['id']}")
    assert revoked.json() == {"revoked": 1}
    # Shared links: create, list, revoke
    share = admin.request(
        "POST", "/api/admin/sites/example.com/shares", json_body={"label": "Board"}
    ).json()
    assert share["token"].startswith("lis_") and share["label"] == "Board"
    assert parse_qs(urlsplit(share["url"]).query) == {
        "site": ["example.com"],
        "auth": [share["token"]],
    }
    assert [
        s["id"]
        for s in admin.request("GET", "/api/admin/sites/example.com/shares").json()["shares"]
    ] == [share["id"]]
    # Remove: the site, its keys and its shares
    removed = admin.request("DELETE", "/api/admin/sites/example.com")
    assert removed.json() == {
        "removed": "example.com",
        "keys": 1,
        "shares": 1,
        "aggregates_kept": True,
    }
    assert admin.request("GET", "/api/admin/sites").json() == {"sites": []}
    assert admin.request("GET", "/api/admin/sites/example.com").status == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("POST", "/api/admin/sites", {"domain": "not a domain"}, 400, "not a valid domain"),
        ("POST", "/api/admin/sites", {"domain": "x.example", "tz": "Mars/Base"}, 400, "time zone"),
        ("POST", "/api/admin/sites", {"domain": "x.example", "color": "red"}, 400, "color"),
        ("POST", "/api/admin/sites", {}, 400, "domain"),
        ("POST", "/api/admin/sites", {"domain": "a.example"}, 409, "already exists"),
        ("PATCH", "/api/admin/sites/a.example", {"hostnames": ["*.a.example"]}, 400, "hostname"),
        ("PATCH", "/api/admin/sites/a.example", {"goals": ["Visit /x/*"]}, 400, "exact paths"),
        ("PATCH", "/api/admin/sites/a.example", {"public": "maybe"}, 400, "public"),
        ("PATCH", "/api/admin/sites/nope.example", {"public": True}, 404, "no site"),
        ("DELETE", "/api/admin/sites/nope.example", None, 404, "no site"),
        ("GET", "/api/admin/sites/nope.example/keys", None, 404, "no site"),
        ("POST", "/api/admin/sites/nope.example/shares", None, 404, "no site"),
        ("DELETE", "/api/admin/sites/a.example/keys/0123456789ab", None, 404, "no key"),
        ("DELETE", "/api/admin/sites/a.example/keys/li_x", None, 400, "key_id"),
        ("DELETE", "/api/admin/sites/a.example/shares/0123456789ab", None, 404, "shared link"),
        ("POST", "/api/admin/sites/a.example/goals", {"goal": "Signup"}, 409, "already a goal"),
        ("POST", "/api/admin/sites/a.example/goals", {"goal": "Visit me"}, 400, "Visit /path"),
        ("DELETE", "/api/admin/sites/a.example/goals?goal=Nope", None, 404, "not a goal"),
        ("DELETE", "/api/admin/sites/a.example/goals", None, 400, "goal"),
    ],
)
def test_bad_admin_requests_get_a_clear_json_error(
    admin: Browser, method: str, path: str, body: Any, status: int, words: str
) -> None:
    admin.request(
        "POST", "/api/admin/sites", json_body={"domain": "a.example", "goals": ["Signup"]}
    )
    reply = admin.request(method, path, json_body=body)
    assert reply.status == status, reply.body
    assert words in reply.json()["error"]


def test_admin_session_reads_the_stats_of_any_site(admin: Browser) -> None:
    admin.pipeline.add_site("private.example")
    assert admin.request("GET", "/api/realtime?site_id=private.example").status == 200
    admin.jar.clear()
    assert admin.request("GET", "/api/realtime?site_id=private.example").status == 401


# ---- shared links --------------------------------------------------------------------------------


@pytest.fixture()
def shared(admin: Browser) -> tuple[Browser, str, str]:
    """Two private sites; a shared link of the first. Returns a signed-out browser and the token."""
    for domain in ("a.example", "b.example"):
        admin.request("POST", "/api/admin/sites", json_body={"domain": domain})
    share = admin.request("POST", "/api/admin/sites/a.example/shares").json()
    visitor = Browser(admin.pipeline, ip="203.0.113.80")
    return visitor, share["token"], share["id"]


def test_share_token_reads_its_own_site_only(shared: tuple[Browser, str, str]) -> None:
    visitor, token, _ = shared
    assert visitor.request("GET", f"/api/realtime?site_id=a.example&auth={token}").status == 200
    assert visitor.request("GET", f"/api/realtime?site_id=b.example&auth={token}").status == 401
    assert visitor.request("GET", "/api/realtime?site_id=a.example&auth=lis_forged").status == 401


def test_revoked_share_token_stops_working_at_once(
    admin: Browser, shared: tuple[Browser, str, str]
) -> None:
    visitor, token, share_id = shared
    path = f"/api/realtime/card?site_id=a.example&auth={token}"
    assert visitor.request("GET", path).status == 200
    assert admin.request("DELETE", f"/api/admin/sites/a.example/shares/{share_id}").status == 200
    assert visitor.request("GET", path).status == 401


def admin_operations(browser: Browser) -> list[tuple[str, str]]:
    """Every admin route of the app's OpenAPI document, with its path parameters filled in."""
    schema = browser.request("GET", "/api/openapi.json").json()
    fill = {"{domain}": "a.example", "{key_id}": "all", "{share_id}": "all"}
    operations = []
    for path, methods in schema["paths"].items():
        if not path.startswith("/api/admin/"):
            continue
        for name, value in fill.items():
            path = path.replace(name, value)
        operations.extend((method.upper(), path) for method in methods)
    return operations


def test_share_token_opens_no_admin_endpoint(shared: tuple[Browser, str, str]) -> None:
    visitor, token, _ = shared
    operations = admin_operations(visitor)
    assert len(operations) >= 12
    for method, path in operations:
        sep = "&" if "?" in path else "?"
        for attempt in (
            visitor.request(method, f"{path}{sep}auth={token}", json_body={}),
            visitor.request(
                method, path, json_body={}, headers={"authorization": f"Bearer {token}"}
            ),
        ):
            assert attempt.status in (401, 403), (method, path, attempt.status)
    # And nothing was changed by trying
    assert visitor.request("GET", f"/api/realtime?site_id=a.example&auth={token}").status == 200


def test_signed_out_browser_opens_no_admin_endpoint(browser: Browser) -> None:
    for method, path in admin_operations(browser):
        assert browser.request(method, path, json_body={}).status == 401, (method, path)
