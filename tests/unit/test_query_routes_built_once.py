"""The query app holds its routes as built, not routers to include (decision 0022): FastAPI builds
an included router's routes a second time, ~60 ms of a cold start. The routers' routes must still
honour the app's dependency overrides, as an included router's do."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from query_api import deps
from query_api.app import app


def test_every_route_of_the_query_app_is_a_built_route() -> None:
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
