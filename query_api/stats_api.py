"""Stats routes: the Plausible Stats API v1 (COMPAT.md §3) and our own JSON stats API.

Both parse the same parameters into a `stats.Query` and ask the planner (query_api/plan.py); the v1 routes
keep Plausible's response shapes and error messages, ours adds the resolved range, the time zone
and the comparison period, and names properties without their `event:`/`visit:` prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from core.sites import PAGEVIEW_GOAL_PREFIX
from core.sites import Site as SiteRecord
from query_api import stats
from query_api.deps import OVERRIDES, Deps, Now, ReadableSite
from query_api.errors import READ_ERRORS, BadRequest
from query_api.plan import Planner

router = APIRouter(dependency_overrides_provider=OVERRIDES)

Number = int | float


ERRORS = READ_ERRORS
ANSWERED_FROM = "x-liveinsight-answered-from"  # every stats response: counters or archive


def answered(planner: Planner, response: Response) -> dict[str, Any]:
    response.headers[ANSWERED_FROM] = planner.answered_from
    return {"answered_from": planner.answered_from, "fresh_to": planner.fresh_to}


Param = Annotated[str | None, Query(max_length=2000)]


class V1Aggregate(BaseModel):
    results: dict[str, dict[str, Number | None]]


class V1Rows(BaseModel):
    results: list[dict[str, Number | str]]
    warning: str | None = None


# ---- parsing shared by both APIs ---------------------------------------------------------------


def build_query(
    site: SiteRecord,
    now: Any,
    *,
    period: str | None,
    date_param: str | None,
    metrics: str | None,
    filters: str | None,
    prop: stats.Property | None = None,
    default_metrics: str = stats.VISITORS,
) -> stats.Query:
    span = stats.parse_period(period, date_param, stats.today_in(site.tz, now))
    parsed_filters = stats.parse_filters(filters)
    _check_goals(site, parsed_filters)
    parsed_metrics = stats.parse_metrics(metrics or default_metrics, prop, parsed_filters)
    return stats.Query(site, span, parsed_filters, parsed_metrics)


def _check_goals(site: SiteRecord, filters: tuple[stats.Filter, ...]) -> None:
    """A goal filter names a configured goal (any event name while none are configured, so
    then a pageview goal is never one)."""
    for f in filters:
        if f.prop.kind != stats.GOAL:
            continue
        for goal in f.values:
            if "*" in goal or goal in site.goals:
                continue
            if not site.goals and not goal.startswith(PAGEVIEW_GOAL_PREFIX):
                continue  # an event name, configured by being sent
            if goal.startswith(PAGEVIEW_GOAL_PREFIX):
                path = goal.removeprefix(PAGEVIEW_GOAL_PREFIX)
                first = (
                    f"The pageview goal for the pathname `{path}` is not configured for this site. "
                )
            else:
                first = f"The goal `{goal}` is not configured for this site. "
            raise BadRequest(
                first + "Find out how to configure goals here: "
                "https://plausible.io/docs/stats-api#filtering-by-goals"
            )


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return 100
    if raw.isdigit() and 1 <= int(raw) <= 1000:
        return int(raw)
    raise BadRequest("Please provide limit as a number between 1 and 1000.")


def parse_page(raw: str | None) -> int:
    if raw is None:
        return 1
    if raw.isdigit() and 1 <= int(raw) <= 1_000_000:
        return int(raw)
    raise BadRequest("Please provide page as a positive number.")


def parse_interval(raw: str | None, period: str | None) -> str:
    period = period or "30d"
    if raw is None:
        if period in ("6mo", "12mo", "year"):
            return "month"
        return "hour" if period == "day" else "day"
    interval = "day" if raw == "date" else raw
    if interval == "hour" and period == "day":
        return interval
    if interval not in ("day", "month"):
        raise BadRequest(
            f"Error parsing `interval` parameter: invalid interval `{raw}`. Valid intervals are "
            "`day`, `month`"
        )
    return interval


def parse_breakdown_property(raw: str | None) -> stats.Property:
    if not raw:
        raise BadRequest(
            "The `property` parameter is required. Please provide at least one property to show "
            "a breakdown by."
        )
    return stats.parse_property(raw)


def _v1_period(period: str | None) -> str | None:
    if period is not None and period not in stats.V1_PERIODS:
        raise BadRequest(
            f"Error parsing `period` parameter: invalid period `{period}`. Please find accepted "
            f"values in our docs: {stats.DOCS}#time-periods"
        )
    return period


FOLDED = (
    "Some values had more distinct neighbours than are kept per day and were counted as "
    '"(other)", which is listed as a row of its own.'
)


# ---- Plausible Stats API v1 --------------------------------------------------------------------


@router.get("/api/v1/stats/aggregate", response_model=V1Aggregate, responses=ERRORS)
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
) -> V1Aggregate:
    query = build_query(
        site, now, period=_v1_period(period), date_param=date, metrics=metrics, filters=filters
    )
    if compare not in (None, "previous_period"):
        raise BadRequest(f"Invalid value `{compare}` for `compare`: use `previous_period`.")
    planner = d.planner(site, now)
    results = planner.aggregate(query, compare=compare is not None)
    answered(planner, response)
    return V1Aggregate(results=results)


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
) -> V1Rows:
    chosen = parse_interval(interval, _v1_period(period))
    query = build_query(site, now, period=period, date_param=date, metrics=metrics, filters=filters)
    planner = d.planner(site, now)
    rows = planner.timeseries(query, chosen)
    answered(planner, response)
    return V1Rows(results=rows)


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
) -> V1Rows:
    _v1_period(period)
    prop = parse_breakdown_property(property)
    query = build_query(
        site, now, period=period, date_param=date, metrics=metrics, filters=filters, prop=prop
    )
    rows, folded = d.planner(site, now).breakdown(query, prop, parse_limit(limit), parse_page(page))
    return V1Rows(results=rows, warning=FOLDED if folded else None)


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
    counters, the newest archived batch for the archive (None: nothing archived yet)."""

    answered_from: str
    fresh_to: datetime | None


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
SHORT_PROPERTIES = {
    **{v: k for k, v in stats.SESSION_PROPERTIES.items()},
    "page": "event:page",
    "hostname": "event:hostname",
    "name": "event:name",
    "goal": "event:goal",
}


def long_property(name: str) -> str:
    """`source` → `visit:source`, `prop:plan` → `event:props:plan`; v1 names pass through."""
    if name.startswith("prop:"):
        return "event:props:" + name.removeprefix("prop:")
    return SHORT_PROPERTIES.get(name, name)


def _span(site: SiteRecord, span: stats.DateRange) -> Span:
    return Span(first=span.first, last=span.last, tz=site.tz)


@dataclass(frozen=True)
class View:
    """The period and filters of our stats API and the dashboard cards; a custom period may come
    as `from`/`to` as well as Plausible's `date=first,last`."""

    period: str | None
    date: str | None
    filters: str | None


def view(
    period: Annotated[
        str | None,
        Query(max_length=20, description="day, 7d, 30d, month, 6mo, 12mo, year or custom"),
    ] = None,
    date: Param = None,
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    to: Annotated[str | None, Query(max_length=10)] = None,
    filters: Param = None,
) -> View:
    if period == "custom" and from_ and to and not date:
        date = f"{from_},{to}"
    return View(period, date, filters)


ViewParams = Annotated[View, Depends(view)]


@router.get("/api/stats/aggregate", response_model=Aggregate, responses=ERRORS)
def aggregate(
    response: Response,
    site: ReadableSite,
    d: Deps,
    now: Now,
    v: ViewParams,
    metrics: Param = None,
    compare: bool = True,
) -> Aggregate:
    query = build_query(
        site,
        now,
        period=v.period,
        date_param=v.date,
        metrics=metrics,
        filters=v.filters,
        default_metrics=DASHBOARD_METRICS if not v.filters else stats.VISITORS + ",pageviews",
    )
    planner = d.planner(site, now)
    results = planner.aggregate(query, compare=compare)
    return Aggregate(
        **answered(planner, response),
        site_id=site.domain,
        range=_span(site, query.span),
        previous_range=_span(site, stats.previous_period(query.span)) if compare else None,
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
    planner = d.planner(site, now)
    rows = planner.timeseries(query, chosen)
    return Timeseries(
        **answered(planner, response),
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
) -> Breakdown:
    prop = stats.parse_property(long_property(property))
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
    planner = d.planner(site, now)
    rows, folded = planner.breakdown(query, prop, chosen_limit, chosen_page)
    return Breakdown(
        **answered(planner, response),
        site_id=site.domain,
        range=_span(site, query.span),
        property=prop.name,
        page=chosen_page,
        limit=chosen_limit,
        folded=folded,
        results=rows,
    )
