"""The query app holds its routes as built, not routers to include (decision 0022): FastAPI builds
an included router's routes a second time, ~60 ms of a cold start. The routers' routes must still
honour the app's dependency overrides, as an included router's do. The admin side's routes are
built on the first request under its paths (or for the OpenAPI document), not on import."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from query_api import deps
from query_api.app import app


def test_every_route_of_the_query_app_is_a_built_route() -> None:
    app.openapi()  # builds the admin side too
    assert app.routes
    # Starlette's own routes (the OpenAPI document) are plain Routes; none is an included router.
    assert all(
        isinstance(r, APIRoute) or type(r).__module__.startswith("starlette") for r in app.routes
    )
    assert {r.path for r in app.routes if isinstance(r, APIRoute)} >= {
        "/api/stats/aggregate",
        "/api/cards/metrics",
        "/api/auth/login",
        "/api/admin/sites",
    }


def test_an_override_set_on_the_app_reaches_a_router_route() -> None:
    # Given the app's clock overridden (as the integration tests pin it)
    seen: list[datetime] = []
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def pinned() -> datetime:
        seen.append(moment)
        return moment

    app.dependency_overrides[deps.clock] = pinned
    app.dependency_overrides[deps.deps] = object  # no stores: a request without a cookie needs none
    try:
        # When a router's route that reads the clock is asked
        response = TestClient(app).get("/api/auth/me")
    finally:
        app.dependency_overrides.pop(deps.clock, None)
        app.dependency_overrides.pop(deps.deps, None)
    # Then it answered with the overrides: no session, and the pinned clock was read
    assert response.status_code == 401
    assert seen == [moment]


FRESH = """
import sys
from fastapi.testclient import TestClient
from query_api import deps
from query_api.app import app
app.dependency_overrides[deps.deps] = object  # no stores: a request without a cookie needs none
built_on_import = "query_api.admin" in sys.modules
paths = {r.path for r in app.routes}
client = TestClient(app)
stats = client.get("/api/health")  # a request elsewhere builds none of the admin side
after_stats = "query_api.admin" in sys.modules
me = client.get("/api/auth/me")  # no session: 401 from the sign-in route, built on demand
print(built_on_import, "/api/auth/me" in paths, stats.status_code, after_stats, me.status_code,
      "/api/admin/sites/{domain}/funnels" in {r.path for r in app.routes})
"""


def test_the_admin_side_is_built_by_the_first_request_under_its_paths_not_on_import() -> None:
    # Given a fresh interpreter (this process may have built the admin side already)
    done = subprocess.run(
        [sys.executable, "-c", FRESH], capture_output=True, text=True, check=True, timeout=120
    )
    built_on_import, listed, stats, after_stats, me, funnels = done.stdout.split()
    # Then importing the app built none of it, a request elsewhere neither
    assert (built_on_import, listed, after_stats) == ("False", "False", "False")
    assert stats == "200"
    # And the first sign-in request found its route, with the rest of the admin side
    assert (me, funnels) == ("401", "True")


def test_the_openapi_document_names_the_admin_side_before_any_request_to_it() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from query_api.app import app; p = app.openapi()['paths']; "
            "print('/api/admin/sites' in p, '/api/reports/unsubscribe' in p, "
            "'/api/stats/aggregate' in p)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert done.stdout.split() == ["True", "True", "True"]


def test_the_admin_side_lies_under_its_prefixes_and_nothing_built_on_import_does() -> None:
    # A route of the admin side outside ADMIN_SIDE_PREFIXES would answer 404 until some other
    # admin request built it; a route built on import under them could shadow one added later.
    from query_api.app import ADMIN_SIDE_PREFIXES, _admin_side_routes

    built_on_demand = {r.path for r in _admin_side_routes() if isinstance(r, APIRoute)}
    assert built_on_demand
    assert all(p.startswith(ADMIN_SIDE_PREFIXES) for p in built_on_demand)
    app.openapi()  # every route present
    on_import = {r.path for r in app.routes if isinstance(r, APIRoute)} - built_on_demand
    assert on_import >= {"/api/stats/aggregate", "/api/v2/query", "/api/stats/funnel"}
    assert not any(p.startswith(ADMIN_SIDE_PREFIXES) for p in on_import)
