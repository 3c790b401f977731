"""`POST /api/v2/query` (Plausible's Stats API v2, docs/compat.md §6) and the saved segments a
reader of the site can list.

A question goes to the counters when they keep it (fast.py) and to the event archive's v2 engine
otherwise; the answer is the same either way, and says which path gave it in the
`X-LiveInsight-Answered-From` header, as the v1 routes do.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import JSONResponse

from core.segments import SegmentStore
from core.sites import Site as SiteRecord
from query_api.deps import OVERRIDES, Deps, Now, ReadableSite, authorize
from query_api.errors import READ_ERRORS, BadRequest
from query_api.plan import ARCHIVE, COUNTERS, Planner
from query_api.v2 import answer, fast, geo_names
from query_api.v2 import imported as v2_imported
from query_api.v2 import parse as v2parse
from query_api.v2.model import FilterTree, Result, V2Query

router = APIRouter(dependency_overrides_provider=OVERRIDES)

ANSWERED_FROM = "x-liveinsight-answered-from"
NO_ARCHIVE = (
    "This query needs the event archive (two properties at once, `contains`, `matches`, `or`, "
    "`not`, `has_done`, a week dimension, or a metric the counters do not keep), and this "
    "deployment has none (LIVEINSIGHT_ARCHIVE_BUCKET)."
)


def segment_resolver(store: SegmentStore, site: SiteRecord) -> Callable[[str], Any]:
    """A segment id → its stored v2 filters (parsed by the v2 parser), None if unknown."""

    def resolve(segment_id: str) -> Any:
        try:
            number = int(segment_id)
        except (TypeError, ValueError):
            return None
        segment = store.get(site.domain, number) if number > 0 else None
        return None if segment is None else segment.filters

    return resolve


def run(planner: Planner, query: V2Query) -> Result:
    """The counters' answer when they keep the question, else the archive's."""
    result = fast.counters_result(planner.counters, query)
    if result is not None:
        planner.answered_from, planner.fresh_to = COUNTERS, planner.now
        return result
    if planner.archive is None:
        raise BadRequest(NO_ARCHIVE)
    from query_api.v2.engine import V2ArchiveEngine  # DuckDB: on the archive path only

    domain = planner.site.domain
    first = (query.first - timedelta(days=1)).isoformat()
    last = (query.last + timedelta(days=1)).isoformat()
    files = planner.archive.local_files(domain, first, last)
    result = V2ArchiveEngine(planner.site, files).run(query)
    planner.answered_from, planner.fresh_to = ARCHIVE, planner.archive.newest(domain)
    return result


@router.post("/api/v2/query", responses=READ_ERRORS, tags=["stats"])
def v2_query(
    request: Request,
    d: Deps,
    now: Now,
    body: Annotated[Any, Body()],
    authorization: Annotated[str | None, Header()] = None,
    auth: Annotated[str | None, Query(max_length=200, description="a shared link's token")] = None,
) -> JSONResponse:
    """Plausible's Stats API v2 query: `{"site_id", "metrics", "date_range", "dimensions",
    "filters", "order_by", "pagination", "include"}` → `{"results", "meta", "query"}`."""
    site = authorize(request, v2parse.site_id_of(body), authorization, auth, d, now)
    resolve = segment_resolver(SegmentStore.beside(d.sites), site)
    query = v2parse.parse_query(body, site, now, _parsed_segments(resolve, site, now))
    planner = d.planner(site, now)
    if geo_names.uses_names(query):  # the engines know the codes: names on the way out
        result = geo_names.named(query, run(planner, geo_names.coded(query)))
    else:
        result = run(planner, query)
    result, imported_meta = v2_imported.include(d.archive, query, result, lambda q: run(planner, q))
    fresh = planner.fresh_to.isoformat() if planner.fresh_to else None
    document = answer.render(query, result)
    document.setdefault("meta", {}).update(answered_from=planner.answered_from, fresh_to=fresh)
    document["meta"].update(imported_meta)  # include.imports: Plausible's meta (decision 0035)
    return JSONResponse(document, headers={ANSWERED_FROM: planner.answered_from})


def _parsed_segments(
    resolve: Callable[[str], Any], site: SiteRecord, now: Any
) -> Callable[[str], tuple[FilterTree, ...] | None]:
    """Segment id → its filters as trees (a segment's own segments are refused by the parser)."""

    def parsed(segment_id: str) -> tuple[FilterTree, ...] | None:
        raw = resolve(segment_id)
        if raw is None:
            return None
        return v2parse.parse_filters(list(raw), site)

    return parsed


@router.get("/api/stats/segments", responses=READ_ERRORS, tags=["stats"])
def list_segments(site: ReadableSite, d: Deps) -> dict[str, list[dict[str, Any]]]:
    """The site's saved segments, for the dashboard's filter bar (anyone who may read the
    site's stats may apply them)."""
    return {"segments": [s.out() for s in SegmentStore.beside(d.sites).list(site.domain)]}
