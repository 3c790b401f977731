"""Saved segments' admin routes: `/api/admin/sites/{domain}/segments` (list, create, get,
update, delete). A segment's filters are v2 filters, checked by the v2 parser when saved, so a
saved segment is always one `POST /api/v2/query` accepts (`["is", "segment", [id]]`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from core.segments import MAX_NAME_LENGTH, Segment, SegmentError, SegmentNotFound, SegmentStore
from core.sites import Site as SiteRecord
from query_api.admin import Domain, _domain, admin_router, site_errors
from query_api.deps import Deps, QueryDeps
from query_api.errors import BadRequest, NotFound

segment_routes = admin_router()
SegmentId = Annotated[int, Path(ge=1, le=99_999_999)]


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    filters: list[Any] = Field(min_length=1, max_length=50)


class SegmentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_LENGTH)
    filters: list[Any] | None = Field(default=None, min_length=1, max_length=50)


class SegmentOut(BaseModel):
    id: int
    name: str
    filters: list[Any]
    created_at: int


class SegmentsOut(BaseModel):
    segments: list[SegmentOut]


def store_of(d: QueryDeps) -> SegmentStore:
    return SegmentStore.beside(d.sites)


def check_filters(filters: list[Any], site: SiteRecord) -> None:
    """The filters as the v2 parser reads them: a 400 in its words if it would refuse them."""
    from query_api.v2 import parse as v2parse  # only when a segment is saved

    if _names_a_segment(filters):
        raise BadRequest("A segment's filters cannot use another segment.")
    v2parse.parse_filters(filters, site)


def _names_a_segment(value: Any, depth: int = 0) -> bool:
    if not isinstance(value, list) or depth > 20:
        return False
    if len(value) >= 2 and value[1] == "segment":
        return True
    return any(_names_a_segment(v, depth + 1) for v in value)


def _out(segment: Segment) -> SegmentOut:
    return SegmentOut(**segment.out())


@segment_routes.get("/sites/{domain}/segments", response_model=SegmentsOut)
def list_segments(domain: Domain, d: Deps) -> SegmentsOut:
    with site_errors():
        site = d.sites.require(_domain(domain))
    return SegmentsOut(segments=[_out(s) for s in store_of(d).list(site.domain)])


@segment_routes.post("/sites/{domain}/segments", response_model=SegmentOut, status_code=201)
def add_segment(domain: Domain, body: SegmentIn, d: Deps) -> SegmentOut:
    with site_errors():
        site = d.sites.require(_domain(domain))
    check_filters(body.filters, site)
    try:
        return _out(store_of(d).add(site.domain, body.name, body.filters))
    except SegmentError as exc:
        raise BadRequest(str(exc)) from None


@segment_routes.get("/sites/{domain}/segments/{segment_id}", response_model=SegmentOut)
def get_segment(domain: Domain, segment_id: SegmentId, d: Deps) -> SegmentOut:
    with site_errors():
        site = d.sites.require(_domain(domain))
    segment = store_of(d).get(site.domain, segment_id)
    if segment is None:
        raise NotFound(f"no segment {segment_id} for {site.domain}")
    return _out(segment)


@segment_routes.patch("/sites/{domain}/segments/{segment_id}", response_model=SegmentOut)
def update_segment(
    domain: Domain, segment_id: SegmentId, body: SegmentPatch, d: Deps
) -> SegmentOut:
    with site_errors():
        site = d.sites.require(_domain(domain))
    if body.filters is not None:
        check_filters(body.filters, site)
    try:
        return _out(store_of(d).update(site.domain, segment_id, body.name, body.filters))
    except SegmentNotFound as exc:
        raise NotFound(str(exc)) from None
    except SegmentError as exc:
        raise BadRequest(str(exc)) from None


@segment_routes.delete("/sites/{domain}/segments/{segment_id}", status_code=204)
def remove_segment(domain: Domain, segment_id: SegmentId, d: Deps) -> None:
    with site_errors():
        site = d.sites.require(_domain(domain))
    try:
        store_of(d).remove(site.domain, segment_id)
    except SegmentNotFound as exc:
        raise NotFound(str(exc)) from None
