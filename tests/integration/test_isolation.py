"""Isolation (DESIGN.md invariant 6) on every route that reads a site's data.

The routes are taken from the app's OpenAPI document: every operation with a `site_id`
parameter, so a stats route added later is covered without touching this file.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from core.aws import make_client
from core.funnels import FunnelStore
from core.sites import SiteStore
from tests.integration.admin_client import Browser
from tests.integration.pipeline import Pipeline

# Parameters a stats route may require, valid for every one of them; unknown ones are ignored.
COMMON = {"period": "day", "metrics": "visitors", "property": "event:page"}


def site_routes() -> list[tuple[str, str]]:
    from query_api.app import app

    routes = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            names = {p["name"] for p in operation.get("parameters", [])}
            if "site_id" in names:
                routes.append((method.upper(), path))
    return routes


ROUTES = site_routes()


def test_the_known_read_routes_are_enumerated() -> None:
    paths = {path for _, path in ROUTES}
    assert {
        "/api/realtime",
        "/api/realtime/card",
        "/api/v1/stats/realtime/visitors",
    } <= paths
    assert not any(path.startswith(("/api/admin", "/api/auth")) for path in paths)


class World:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.sites = SiteStore(make_client("dynamodb"), pipeline.names["meta"], cache_seconds=0)
        self.key_a = pipeline.add_site("a.example")
        self.key_b = pipeline.add_site("b.example")
        self.token_b, _ = self.sites.create_share("b.example")
        # the parameters a funnel and journeys need: a funnel of site A, an entry page
        funnel = FunnelStore.beside(self.sites).add("a.example", "Home", ["Visit /", "Signup"])
        self.params = {"funnel_id": funnel.id, "entry": "/"}
        pipeline.send({"n": "pageview", "u": "https://a.example/", "d": "a.example"})
        pipeline.pump()
        self.browser = Browser(pipeline)

    def call(
        self, method: str, path: str, site: str, *, key: str | None = None, auth: str | None = None
    ) -> int:
        query: dict[str, Any] = {**COMMON, **self.params, "site_id": site}
        if auth is not None:
            query["auth"] = auth
        headers = {"authorization": f"Bearer {key}"} if key else {}
        reply = self.browser.request(
            method, f"{path.replace('{site_id}', site)}?{urlencode(query)}", headers=headers
        )
        return reply.status


@pytest.fixture()
def world(pipeline: Pipeline) -> World:
    return World(pipeline)


# Each test walks every route with one world: building a world (tables, two sites, a pumped
# pageview) costs about a second, the calls a few milliseconds; a failure names its route.


def test_credentials_of_site_b_never_read_site_a(world: World) -> None:
    for method, path in ROUTES:
        route = f"{method} {path}"

        def status(site: str, **credential: str | None) -> int:
            return world.call(method, path, site, **credential)  # noqa: B023 (called at once)

        # Site A's own key reads it (so the parameters are right and a 401 below means something)
        assert status("a.example", key=world.key_a) == 200, route
        # Site B's key, site B's shared link, no credential or a made-up one: 401
        assert status("a.example", key=world.key_b) == 401, route
        assert status("a.example", auth=world.token_b) == 401, route
        assert status("a.example") == 401, route
        assert status("a.example", key="li_made-up") == 401, route
        assert status("a.example", auth="lis_made-up") == 401, route
        # A shared link is not a key and a key is not a shared link
        assert status("b.example", key=world.token_b) == 401, route
        assert status("b.example", auth=world.key_b) == 401, route


def test_revoked_key_and_share_token_stop_working_at_once(world: World) -> None:
    for method, path in ROUTES:
        route = f"{method} {path}"
        key = world.sites.create_key("a.example")
        token, link = world.sites.create_share("a.example")
        assert world.call(method, path, "a.example", key=key) == 200, route
        assert world.call(method, path, "a.example", auth=token) == 200, route

        world.sites.revoke_key("a.example", key)
        world.sites.revoke_share("a.example", link.id)

        assert world.call(method, path, "a.example", key=key) == 401, route
        assert world.call(method, path, "a.example", auth=token) == 401, route


def test_removed_site_takes_its_credentials_with_it(world: World) -> None:
    token, _ = world.sites.create_share("a.example")
    assert all(world.call(m, p, "a.example", auth=token) == 200 for m, p in ROUTES)
    world.sites.remove("a.example")
    # Even once the domain is added again, the old key and link open nothing
    world.sites.add("a.example", public=False)
    for method, path in ROUTES:
        route = f"{method} {path}"
        assert world.call(method, path, "a.example", key=world.key_a) == 401, route
        assert world.call(method, path, "a.example", auth=token) == 401, route
