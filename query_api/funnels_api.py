"""Funnels and journeys (issue 19): the stats routes that count a site's funnels over the event
archive (query_api/funnels.py has the definitions), and the models the admin routes that define
them share (query_api/funnels_admin.py, built only when the admin side is: decision 0022).

Admin (the admin's session cookie; CSRF token on changes, as every `/api/admin/*` route):
    GET    /api/admin/sites/{domain}/funnels               {"funnels": [Funnel]}
    POST   /api/admin/sites/{domain}/funnels               {"name": "...", "steps": ["Visit /", "Signup"]}
    GET    /api/admin/sites/{domain}/funnels/{funnel_id}   Funnel
    DELETE /api/admin/sites/{domain}/funnels/{funnel_id}   {"removed": "<id>"}
Stats (a read key, a shared link, the admin's session, or a public site):
    GET /api/stats/funnels?site_id=                        {"funnels": [Funnel]}
    GET /api/stats/funnel?site_id=&funnel_id=&period=&date=&filters=
    GET /api/stats/journeys?site_id=&period=&date=&filters=&entry=|exit=&steps=&limit=
A Funnel is {"id", "name", "steps": [{"label", "kind": "page"|"event", "value"}], "created_at"}.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from core.funnels import Funnel, FunnelNotFound, FunnelStore
from core.sites import Site as SiteRecord
from query_api import parse
from query_api.deps import OVERRIDES, Deps, Now, QueryDeps, ReadableSite
from query_api.errors import READ_ERRORS, BadRequest, ErrorOut, NotFound
from query_api.parse import Param, ViewParams, build_query
from query_api.stats_api import ANSWERED_FROM, Span

if TYPE_CHECKING:
    from query_api.funnels import PathEngine

router = APIRouter(dependency_overrides_provider=OVERRIDES)

NEEDS_ARCHIVE = (
    "Funnels and journeys are counted from the event archive, and this deployment has none "
    "(LIVEINSIGHT_ARCHIVE_BUCKET)."
)
FUNNEL_NOT_FOUND = "Funnel not found"  # Plausible's words
MAX_JOURNEYS = 100


def funnel_store(d: Deps) -> FunnelStore:
    return FunnelStore.beside(d.sites)


Funnels = Annotated[FunnelStore, Depends(funnel_store)]


# ---- models ------------------------------------------------------------------------------------


class FunnelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # loose bounds that keep a request small; core/funnels.py says what is valid, in words
    name: str = Field(max_length=1000)
    steps: list[str] = Field(max_length=100)


class StepOut(BaseModel):
    label: str  # "Visit /path" or the event name, as goals are written
    kind: str  # "page" | "event"
    value: str  # the path (`*`: any characters) or the event name


class FunnelOut(BaseModel):
    id: str
    name: str
    steps: list[StepOut]
    created_at: int


class FunnelsOut(BaseModel):
    funnels: list[FunnelOut]


class FunnelRemoved(BaseModel):
    removed: str


class StepFigures(StepOut):
    visitors: int  # visitors whose visit reached this step after the ones before, in order
    conversion_rate: float  # % of the first step's visitors
    conversion_rate_step: float  # % of the previous step's visitors
    dropoff: int  # the previous step's visitors who did not reach this one
    dropoff_percentage: float  # % of the previous step's visitors


class FunnelAnswer(BaseModel):
    site_id: str
    funnel_id: str
    name: str
    range: Span
    answered_from: str  # always "archive"
    fresh_to: datetime | None  # the newest archived batch (None: nothing archived yet)
    steps: list[StepFigures]
    entering_visitors: int  # the first step's visitors
    converted_visitors: int  # the last step's visitors
    conversion_rate: float  # the last step's, of the first's: the funnel's conversion, %


class JourneyOut(BaseModel):
    path: list[str]  # 2 to `steps` pages; fewer than `steps`: the visit ended (began) there
    visitors: int
    visits: int


class JourneysAnswer(BaseModel):
    site_id: str
    range: Span
    answered_from: str
    fresh_to: datetime | None
    entry: str | None
    exit: str | None
    steps: int
    limit: int
    results: list[JourneyOut]


def _funnel_out(funnel: Funnel) -> FunnelOut:
    return FunnelOut(
        id=funnel.id,
        name=funnel.name,
        steps=[StepOut(label=s.label, kind=s.kind, value=s.value) for s in funnel.steps],
        created_at=funnel.created_at,
    )


# ---- stats -------------------------------------------------------------------------------------

STATS_ERRORS: dict[int | str, dict[str, Any]] = {
    **READ_ERRORS,
    404: {"model": ErrorOut, "description": "No such funnel for the site"},
}


def _engine(
    d: QueryDeps, site: SiteRecord, span: parse.DateRange
) -> tuple[PathEngine, datetime | None]:
    """The path engine over the archive's files of the range and a day on each side (visits
    over midnight), and how fresh the archive is."""
    from query_api.funnels import PathEngine  # DuckDB: imported on these routes only

    if d.archive is None:
        raise BadRequest(NEEDS_ARCHIVE)
    first = (span.first - timedelta(days=1)).isoformat()
    last = (span.last + timedelta(days=1)).isoformat()
    files = d.archive.local_files(site.domain, first, last)
    return PathEngine(site, files), d.archive.newest(site.domain)


@router.get("/api/stats/funnels", response_model=FunnelsOut, responses=READ_ERRORS)
def readable_funnels(site: ReadableSite, funnels: Funnels) -> FunnelsOut:
    """The site's funnels, for whoever may read its stats (the dashboard's funnel picker)."""
    return FunnelsOut(funnels=[_funnel_out(f) for f in funnels.list(site.domain)])


@router.get("/api/stats/funnel", response_model=FunnelAnswer, responses=STATS_ERRORS)
def funnel_stats(
    response: Response,
    site: ReadableSite,
    d: Deps,
    now: Now,
    funnels: Funnels,
    funnel_id: Annotated[str, Query(min_length=1, max_length=64)],
    v: ViewParams,
) -> FunnelAnswer:
    """Visitors reaching each step of the funnel within one visit, in order, over the period
    and filters (the v1 syntax); shaped as Plausible's funnel (`steps[]` with `label`,
    `visitors`, `conversion_rate`, `conversion_rate_step`, `dropoff`, `dropoff_percentage`),
    its percentages as numbers with two decimals where Plausible sends strings ("50.00").
    Session filters keep visits by their first event; event filters keep the events that can
    be steps; `event:page` and `event:goal` filters are refused, as Plausible refuses them."""
    try:
        funnel = funnels.get(site.domain, funnel_id)
    except FunnelNotFound:
        raise NotFound(FUNNEL_NOT_FOUND) from None
    query = build_query(
        site, now, period=v.period, date_param=v.date, metrics=None, filters=v.filters
    )
    engine, fresh_to = _engine(d, site, query.span)
    result = engine.funnel(funnel, query)
    response.headers[ANSWERED_FROM] = "archive"
    return FunnelAnswer(
        site_id=site.domain,
        funnel_id=funnel.id,
        name=funnel.name,
        range=Span(first=query.span.first, last=query.span.last, tz=site.tz),
        answered_from="archive",
        fresh_to=fresh_to,
        steps=[
            StepFigures(
                label=s.step.label,
                kind=s.step.kind,
                value=s.step.value,
                visitors=s.visitors,
                conversion_rate=s.conversion_rate,
                conversion_rate_step=s.conversion_rate_step,
                dropoff=s.dropoff,
                dropoff_percentage=s.dropoff_percentage,
            )
            for s in result.steps
        ],
        entering_visitors=result.entering_visitors,
        converted_visitors=result.converted_visitors,
        conversion_rate=result.conversion_rate,
    )


@router.get("/api/stats/journeys", response_model=JourneysAnswer, responses=READ_ERRORS)
def journeys(
    response: Response,
    site: ReadableSite,
    d: Deps,
    now: Now,
    v: ViewParams,
    entry: Annotated[str | None, Query(max_length=500)] = None,
    exit: Annotated[str | None, Query(max_length=500)] = None,
    steps: Param = None,
    limit: Param = None,
) -> JourneysAnswer:
    """The most common paths of consecutive distinct pages within a visit (a page viewed again
    right after itself is one page), from the visit's entry page `entry` (its first `steps`
    pages) or to its exit page `exit` (its last `steps` pages); `*` in the page matches any
    characters. A shorter path is a visit that ended (or, to an exit, began) there. Rows by
    visitors, descending, then by path; `visits` beside. Filters keep visits: session filters
    by the visit's first event, event filters the visits holding a matching event."""
    if (entry is None) == (exit is None):
        raise BadRequest("Give one of `entry` (an entry page) or `exit` (an exit page).")
    page = (entry if entry is not None else exit) or ""
    if not page.startswith("/"):
        raise BadRequest("`entry` and `exit` are pages: paths starting with '/'.")
    chosen_steps = _whole(steps, "steps", 3, 2, 5)
    chosen_limit = _whole(limit, "limit", 10, 1, MAX_JOURNEYS)
    query = build_query(
        site, now, period=v.period, date_param=v.date, metrics=None, filters=v.filters
    )
    engine, fresh_to = _engine(d, site, query.span)
    rows = engine.journeys(
        query, page, from_entry=entry is not None, steps=chosen_steps, limit=chosen_limit
    )
    response.headers[ANSWERED_FROM] = "archive"
    return JourneysAnswer(
        site_id=site.domain,
        range=Span(first=query.span.first, last=query.span.last, tz=site.tz),
        answered_from="archive",
        fresh_to=fresh_to,
        entry=entry,
        exit=exit,
        steps=chosen_steps,
        limit=chosen_limit,
        results=[JourneyOut(path=list(j.path), visitors=j.visitors, visits=j.visits) for j in rows],
    )


def _whole(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    if raw.isdigit() and low <= int(raw) <= high:
        return int(raw)
    raise BadRequest(f"`{name}` is a whole number from {low} to {high}.")
