"""The admin routes that define a site's funnels (GET, POST /api/admin/sites/{domain}/funnels,
GET, DELETE …/{funnel_id}); the models and the stats routes are query_api/funnels_api.py's.
Apart from them so the query function builds the admin side only when a request needs it
(query_api/app.py, decision 0022)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from query_api.admin import Domain, _domain, admin_router, site_errors
from query_api.deps import Deps, QueryDeps
from query_api.funnels_api import (
    FunnelIn,
    FunnelOut,
    FunnelRemoved,
    Funnels,
    FunnelsOut,
    _funnel_out,
)

# ---- routes -------------------------------------------------------------------------------------

admin = admin_router("/sites/{domain}/funnels")
FunnelId = Annotated[str, Path(min_length=1, max_length=64)]


def _site_domain(d: QueryDeps, domain: str) -> str:
    with site_errors():
        return d.sites.require(_domain(domain)).domain


@admin.get("", response_model=FunnelsOut)
def list_funnels(domain: Domain, d: Deps, funnels: Funnels) -> FunnelsOut:
    site = _site_domain(d, domain)
    return FunnelsOut(funnels=[_funnel_out(f) for f in funnels.list(site)])


@admin.post("", response_model=FunnelOut, status_code=201)
def add_funnel(domain: Domain, body: FunnelIn, d: Deps, funnels: Funnels) -> FunnelOut:
    """Steps as goals are written: "Visit /path" (`*` matches any characters) or a custom
    event's name; 2 to 8 of them, each once; a name of 1 to 120 characters, unique per site."""
    site = _site_domain(d, domain)
    with site_errors():
        return _funnel_out(funnels.add(site, body.name, body.steps))


@admin.get("/{funnel_id}", response_model=FunnelOut)
def get_funnel(domain: Domain, funnel_id: FunnelId, d: Deps, funnels: Funnels) -> FunnelOut:
    site = _site_domain(d, domain)
    with site_errors():
        return _funnel_out(funnels.get(site, funnel_id))


@admin.delete("/{funnel_id}", response_model=FunnelRemoved)
def remove_funnel(domain: Domain, funnel_id: FunnelId, d: Deps, funnels: Funnels) -> FunnelRemoved:
    site = _site_domain(d, domain)
    with site_errors():
        return FunnelRemoved(removed=funnels.remove(site, funnel_id).id)


routes = admin.routes
