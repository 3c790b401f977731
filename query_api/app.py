"""The query API (FastAPI): realtime JSON, the Plausible realtime endpoint and dashboard cards."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from query_api import cards, funnels_api, stats_api
from query_api.deps import OVERRIDES, Deps, Now, Site
from query_api.errors import READ_ERRORS, QueryError
from query_api.reader import Realtime
from query_api.rendering import templates
from query_api.v2 import routes as v2_routes

# The routers' routes are handed over as built: `include_router` would build each route a second
# time for its include context (FastAPI 0.165), ~60 ms of a cold start (decision 0022). The
# routers set their prefix, tags, dependencies and responses themselves, so including adds nothing;
# dependency overrides (the tests' clock) are the one table the routes were built with.
app = FastAPI(
    title="LiveInsight query API",
    version="0.2.0",
    docs_url=None,
    redoc_url=None,
    openapi_url="/api/openapi.json",
    routes=[
        *stats_api.router.routes,
        *v2_routes.router.routes,
        *funnels_api.router.routes,
        *cards.router.routes,
    ],
)
app.dependency_overrides = OVERRIDES.dependency_overrides

# The admin side (sign-in, sites, keys, goals, links, funnels' definitions, imports, segments,
# alerts, reports) is built on the first request under these paths, or for the OpenAPI document:
# ~35 ms of a cold start that the stats, the dashboard's cards and the APIs never use (decision
# 0022). No route above matches any of these paths, so routes added later match every request as
# they would have from the start.
ADMIN_SIDE_PREFIXES = ("/api/admin/", "/api/auth/", "/api/reports/")
_admin_side_lock = threading.Lock()
_admin_side_built = False


def _admin_side_routes() -> list[BaseRoute]:
    from query_api import funnels_admin
    from query_api.admin import routes as admin_routes
    from query_api.alerts_api import alert_routes
    from query_api.imports_api import routes as import_routes
    from query_api.reports_api import public_routes, report_routes
    from query_api.v2.segments_api import segment_routes

    return [
        *admin_routes,
        *funnels_admin.routes,
        *import_routes,
        *segment_routes.routes,
        *alert_routes.routes,
        *report_routes.routes,
        *public_routes.routes,
    ]


def build_admin_side() -> None:
    """Adds the admin side's routes to the app, once."""
    global _admin_side_built
    with _admin_side_lock:
        if not _admin_side_built:
            app.router.routes.extend(_admin_side_routes())
            _admin_side_built = True


class _AdminSideOnDemand:
    """Builds the admin side before the first request that may need it reaches the router."""

    def __init__(self, asgi: ASGIApp) -> None:
        self.app = asgi

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _admin_side_built and scope.get("path", "").startswith(ADMIN_SIDE_PREFIXES):
            build_admin_side()
        await self.app(scope, receive, send)


app.add_middleware(_AdminSideOnDemand)


def openapi() -> dict[str, Any]:
    """The generated document, without FastAPI's 422s: invalid requests here get a 400."""
    build_admin_side()  # the document names every route
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, routes=app.routes)
        for path in document.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                responses.pop("422", None)
                content = responses.get("200", {}).get("content", {})
                if len(content) > 1:  # an HTML fragment, a CSV or a ZIP: not JSON
                    content.pop("application/json", None)
        schemas = document.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
    return app.openapi_schema


app.openapi = openapi  # type: ignore[method-assign]


@app.exception_handler(QueryError)
async def _query_error(_: Request, exc: QueryError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status)


@app.exception_handler(RequestValidationError)
async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
    return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, status_code=400)


@app.get("/api/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/v1/sites/public")
def public_sites(d: Deps) -> dict[str, list[dict[str, str]]]:
    return {"sites": [{"domain": s.domain} for s in d.sites.list() if s.public]}


@app.get("/api/v1/stats/realtime/visitors", responses=READ_ERRORS)
def realtime_visitors(site: Site, d: Deps, now: Now) -> int:
    """Plausible Stats API v1: a bare integer, visitors in the last 5 minutes."""
    return d.counters.realtime(site, now).current_visitors


@app.get("/api/realtime", responses=READ_ERRORS)
def realtime(site: Site, d: Deps, now: Now) -> dict[str, Any]:
    rt = d.counters.realtime(site, now)
    return {
        "site_id": rt.site,
        "as_of": rt.as_of.isoformat(),
        "current_visitors": rt.current_visitors,
        "pageviews": rt.pageviews,
        "per_minute": [
            {"minute": p.minute, "pageviews": p.pageviews, "visitors": p.visitors}
            for p in rt.per_minute
        ],
        "top_pages": [{"page": page, "pageviews": n} for page, n in rt.top_pages],
        "top_sources": [{"source": source, "visitors": n} for source, n in rt.top_sources],
    }


HTML_FRAGMENT: dict[int | str, dict[str, Any]] = {
    200: {"description": "An HTML fragment for htmx", "content": {"text/html": {}}},
    **READ_ERRORS,
}


@app.get("/api/realtime/card", responses=HTML_FRAGMENT)
def realtime_card(site: Site, d: Deps, now: Now) -> HTMLResponse:
    rt = d.counters.realtime(site, now)
    html = templates().get_template("realtime_card.html").render(rt=rt, chart=bar_chart(rt))
    return HTMLResponse(html, headers={"cache-control": "no-store"})


def bar_chart(rt: Realtime, width: int = 300, height: int = 60) -> dict[str, Any]:
    """Geometry of the per-minute bars, so the template only lays them out."""
    peak = max((p.pageviews for p in rt.per_minute), default=0) or 1
    step = width / max(len(rt.per_minute), 1)
    bars = []
    for i, point in enumerate(rt.per_minute):
        h = round(height * point.pageviews / peak, 2)
        bars.append(
            {
                "x": round(i * step + 1, 2),
                "y": round(height - h, 2),
                "w": round(step - 2, 2),
                "h": h,
                "label": point.minute[-5:],
                "value": point.pageviews,
            }
        )
    return {"width": width, "height": height, "bars": bars}
