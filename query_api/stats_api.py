"""Stats routes: the Plausible Stats API v1 (docs/compat.md §3) and our own JSON stats API.

Both parse the same parameters into a `stats.Query` and ask the planner (query_api/plan.py); the v1 routes
keep Plausible's response shapes and error messages, ours adds the resolved range, the time zone
and the comparison period, and names properties without their `event:`/`visit:` prefix.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from core.sites import Site as SiteRecord
from query_api import imported, parse
from query_api.deps import OVERRIDES, Deps, Now, ReadableSite
from query_api.errors import READ_ERRORS, BadRequest
from query_api.parse import (
    Param,
    ViewParams,
    _v1_period,
    build_query,
    long_property,
    parse_breakdown_property,
    parse_interval,
    parse_limit,
    parse_page,
)
from query_api.plan import Planner

router = APIRouter(dependency_overrides_provider=OVERRIDES)

Number = int | float


ERRORS = READ_ERRORS
ANSWERED_FROM = "x-liveinsight-answered-from"  # every stats response: counters or archive


def answered(planner: Planner, response: Response) -> dict[str, Any]:
    response.headers[ANSWERED_FROM] = planner.answered_from
    return {"answered_from": planner.answered_from, "fresh_to": planner.fresh_to}


class V1Aggregate(BaseModel):
    results: dict[str, dict[str, Number | None]]
    warning: str | None = None


class V1Rows(BaseModel):
    results: list[dict[str, Number | str]]
    warning: str | None = None


# ---- parsing shared by both APIs ---------------------------------------------------------------


def imported_tables(
    d: Deps, site: SiteRecord, with_imported: str | None
) -> imported.ImportedTables | None:
    return imported.tables_for(d.archive, site.domain, with_imported)


ALL_ROWS = 1000  # a breakdown's page of native rows, read until the last when imports are added
MAX_NATIVE_PAGES = 10


def all_native_rows(
    planner: Planner, query: parse.Query, prop: parse.Property
) -> tuple[list[dict[str, Number | str]], bool]:
    rows: list[dict[str, Number | str]] = []
    folded = False
    for page in range(1, MAX_NATIVE_PAGES + 1):
        chunk, folded_here = planner.breakdown(query, prop, ALL_ROWS, page)
        rows += chunk
        folded = folded or folded_here
        if len(chunk) < ALL_ROWS:
            break
    return rows, folded


FOLDED = (
    "Some values had more distinct neighbours than are kept per day and were counted as "
    '"(other)", which is listed as a row of its own.'
)


# ---- Plausible Stats API v1 --------------------------------------------------------------------


@router.get(
    "/api/v1/stats/aggregate",
    response_model=V1Aggregate,
    responses=ERRORS,
    response_model_exclude_none=True,
)
def v1_aggregate(
    response: Response,
    site: ReadableSite,
    d: Deps,
    now: Now,
    period: Param = None,
    date: Param = None,
    metrics: Param = None,
    filters: Param = None,
    compare: Param = None,
    with_imported: Param = None,
) -> V1Aggregate:
    query = build_query(
        site, now, period=_v1_period(period), date_param=date, metrics=metrics, filters=filters
    )
    if compare not in (None, "previous_period"):
        raise BadRequest(f"Invalid value `{compare}` for `compare`: use `previous_period`.")
    tables = imported_tables(d, site, with_imported)
    planner = d.planner(site, now)
    if tables is None:
        results = planner.aggregate(query, compare=compare is not None)
        answered(planner, response)
        return V1Aggregate(results=results)
    native = planner.aggregate(imported.augmented(query), compare=compare is not None)
    results, info = imported.with_aggregate(tables, query, native, compare is not None)
    answered(planner, response)
    return V1Aggregate(results=results, warning=info.warning)


@router.get(
    "/api/v1/stats/timeseries",
    response_model=V1Rows,
    responses=ERRORS,
    response_model_exclude_none=True,
)
def v1_timeseries(
    response: Response,
    site: ReadableSite,
    d: Deps,
    now: Now,
    period: Param = None,
    date: Param = None,
    metrics: Param = None,
    filters: Param = None,
    interval: Param = None,
    with_imported: Param = None,
) -> V1Rows:
    chosen = parse_interval(interval, _v1_period(period))
    query = build_query(site, now, period=period, date_param=date, metrics=metrics, filters=filters)
    tables = imported_tables(d, site, with_imported)
    planner = d.planner(site, now)
    if tables is None:
        rows = planner.timeseries(query, chosen)
        answered(planner, response)
        return V1Rows(results=rows)
    native = planner.timeseries(imported.augmented(query), chosen)
    rows, info = imported.with_timeseries(tables, query, chosen, native)
    answered(planner, response)
    return V1Rows(results=rows, warning=info.warning)


@router.get(
    "/api/v1/stats/breakdown",
    response_model=V1Rows,
    responses=ERRORS,
    response_model_exclude_none=True,
)
def v1_breakdown(
    response: Response,
    site: ReadableSite,
    d: Deps,
    now: Now,
    period: Param = None,
    date: Param = None,
    metrics: Param = None,
    filters: Param = None,
    property: Param = None,
    limit: Param = None,
    page: Param = None,
    with_imported: Param = None,
) -> V1Rows:
    _v1_period(period)
    prop = parse_breakdown_property(property)
    query = build_query(
        site, now, period=period, date_param=date, metrics=metrics, filters=filters, prop=prop
    )
    tables = imported_tables(d, site, with_imported)
    planner = d.planner(site, now)
    if tables is None:
        rows, folded = planner.breakdown(query, prop, parse_limit(limit), parse_page(page))
        answered(planner, response)
        return V1Rows(results=rows, warning=FOLDED if folded else None)
    native, folded = all_native_rows(planner, imported.augmented(query), prop)
    rows, info = imported.with_breakdown(
        tables, query, prop, native, parse_limit(limit), parse_page(page)
    )
    answered(planner, response)
    return V1Rows(results=rows, warning=info.warning or (FOLDED if folded else None))


# ---- our own stats API (the dashboard's) -------------------------------------------------------


class Span(BaseModel):
    first: date
    last: date
    tz: str


class MetricValue(BaseModel):
    value: Number
    comparison_value: Number | None = None
    change: Number | None = None


class Answered(BaseModel):
    """Which path answered (query_api/plan.py) and the time its data reaches: now for the
    counters, the newest archived batch for the archive (None: nothing archived yet).
    `imported` (asked with `with_imported`): whether imported data are included, their days, or
    why not (query_api/imported.py)."""

    answered_from: str
    fresh_to: datetime | None
    imported: dict[str, Any] | None = None


class Aggregate(Answered):
    site_id: str
    range: Span
    previous_range: Span | None = None
    results: dict[str, MetricValue]


class Timeseries(Answered):
    site_id: str
    range: Span
    interval: str
    results: list[dict[str, Number | str]]


class Breakdown(Answered):
    site_id: str
    range: Span
    property: str
    page: int
    limit: int
    folded: bool  # some values were counted under "(other)"
    results: list[dict[str, Number | str]]


DASHBOARD_METRICS = "visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration"


def _span(site: SiteRecord, span: parse.DateRange) -> Span:
    return Span(first=span.first, last=span.last, tz=site.tz)


@router.get("/api/stats/aggregate", response_model=Aggregate, responses=ERRORS)
def aggregate(
    response: Response,
    site: ReadableSite,
    d: Deps,
    now: Now,
    v: ViewParams,
    metrics: Param = None,
    compare: bool = True,
    with_imported: Param = None,
) -> Aggregate:
    query = build_query(
        site,
        now,
        period=v.period,
        date_param=v.date,
        metrics=metrics,
        filters=v.filters,
        default_metrics=DASHBOARD_METRICS if not v.filters else parse.VISITORS + ",pageviews",
    )
    tables = imported_tables(d, site, with_imported)
    planner = d.planner(site, now)
    info = None
    if tables is None:
        results = planner.aggregate(query, compare=compare)
    else:
        native = planner.aggregate(imported.augmented(query), compare=compare)
        results, info = imported.with_aggregate(tables, query, native, compare)
    return Aggregate(
        **answered(planner, response),
        imported=info.out() if info else None,
        site_id=site.domain,
        range=_span(site, query.span),
        previous_range=_span(site, parse.previous_period(query.span)) if compare else None,
        results={m: MetricValue.model_validate(v) for m, v in results.items()},
    )


@router.get("/api/stats/timeseries", response_model=Timeseries, responses=ERRORS)
def timeseries(
    response: Response,
    site: ReadableSite,
    d: Deps,
    now: Now,
    v: ViewParams,
    metrics: Param = None,
    interval: Param = None,
    with_imported: Param = None,
) -> Timeseries:
    chosen = parse_interval(interval, v.period)
    query = build_query(
        site,
        now,
        period=v.period,
        date_param=v.date,
        metrics=metrics,
        filters=v.filters,
    )
    if chosen == "hour" and query.span.days > 1:
        raise BadRequest("`interval=hour` is available for one day at a time.")
    tables = imported_tables(d, site, with_imported)
    planner = d.planner(site, now)
    info = None
    if tables is None:
        rows = planner.timeseries(query, chosen)
    else:
        native = planner.timeseries(imported.augmented(query), chosen)
        rows, info = imported.with_timeseries(tables, query, chosen, native)
    return Timeseries(
        **answered(planner, response),
        imported=info.out() if info else None,
        site_id=site.domain,
        range=_span(site, query.span),
        interval=chosen,
        results=rows,
    )


@router.get("/api/stats/breakdown", response_model=Breakdown, responses=ERRORS)
def breakdown(
    response: Response,
    site: ReadableSite,
    d: Deps,
    now: Now,
    property: Annotated[str, Query(min_length=1, max_length=200)],
    v: ViewParams,
    metrics: Param = None,
    limit: Param = None,
    page: Param = None,
    with_imported: Param = None,
) -> Breakdown:
    prop = parse.parse_property(long_property(property))
    query = build_query(
        site,
        now,
        period=v.period,
        date_param=v.date,
        metrics=metrics,
        filters=v.filters,
        prop=prop,
    )
    chosen_limit, chosen_page = parse_limit(limit), parse_page(page)
    tables = imported_tables(d, site, with_imported)
    planner = d.planner(site, now)
    info = None
    if tables is None:
        rows, folded = planner.breakdown(query, prop, chosen_limit, chosen_page)
    else:
        native, folded = all_native_rows(planner, imported.augmented(query), prop)
        rows, info = imported.with_breakdown(tables, query, prop, native, chosen_limit, chosen_page)
    return Breakdown(
        **answered(planner, response),
        imported=info.out() if info else None,
        site_id=site.domain,
        range=_span(site, query.span),
        property=prop.name,
        page=chosen_page,
        limit=chosen_limit,
        folded=folded,
        results=rows,
    )
