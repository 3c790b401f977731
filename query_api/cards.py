"""Dashboard cards: one route per card, each an HTML fragment (Jinja2) that htmx swaps in.

Every card takes the stats parameters of /api/stats (`site_id`, `period`, `date`, `from`, `to`,
`filters`) and reads through the planner (query_api/plan.py), so a card shows exactly what the stats API returns.
A card that cannot answer for the current filters says why inside the card instead of failing
the page. Rows a visitor can filter by are buttons carrying `data-filter` (the shell adds the
filter to the URL); values from events are only ever rendered through autoescaping.

Exports: `/api/cards/breakdown.csv` (one card) and `/api/cards/export.zip` (every card).
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import replace
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from query_api import geo, imported, parse
from query_api.deps import OVERRIDES, Deps, Now, ReadableSite, signed_in
from query_api.errors import READ_ERRORS, BadRequest
from query_api.metrics import Number
from query_api.parse import View, ViewParams, build_query, long_property, parse_interval
from query_api.plan import ARCHIVE, Planner
from query_api.rendering import templates

router = APIRouter(prefix="/api/cards", dependency_overrides_provider=OVERRIDES)

HTML: dict[int | str, dict[str, Any]] = {
    200: {"description": "An HTML fragment for htmx", "content": {"text/html": {}}},
    **READ_ERRORS,
}
NO_STORE = {"cache-control": "no-store"}

Param = Annotated[str | None, Query(max_length=2000)]


# metric tiles: (metric, label, how to show the value)
TILES = (
    (parse.VISITORS, "Unique visitors", "count"),
    (parse.VISITS, "Total visits", "count"),
    (parse.PAGEVIEWS, "Total pageviews", "count"),
    (parse.VIEWS_PER_VISIT, "Views per visit", "ratio"),
    (parse.BOUNCE_RATE, "Bounce rate", "percent"),
    (parse.VISIT_DURATION, "Visit duration", "duration"),
)
# extra columns per kind of property, after visitors
COLUMNS = {
    parse.SESSION: (),
    parse.PAGE: (parse.PAGEVIEWS,),
    parse.HOSTNAME: (parse.PAGEVIEWS,),
    parse.NAME: (parse.EVENTS,),
    parse.GOAL: (parse.EVENTS, parse.CONVERSION_RATE),
    parse.PROP: (parse.EVENTS,),
}
LABELS = {
    parse.VISITORS: "Visitors",
    parse.PAGEVIEWS: "Pageviews",
    parse.EVENTS: "Events",
    parse.CONVERSION_RATE: "CR",
    parse.VISITS: "Visits",
    parse.BOUNCE_RATE: "Bounce rate",
    parse.VISIT_DURATION: "Visit duration",
    parse.VIEWS_PER_VISIT: "Views per visit",
    parse.TIME_ON_PAGE: "Time on page",
}
TOP_ROWS = 10


def fmt(value: Number | str | None, kind: str) -> str:
    if value is None or isinstance(value, str):
        return "—" if value is None else value
    if kind == "percent":
        return f"{value:g}%"
    if kind == "duration":
        seconds = int(value)
        return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
    if kind == "ratio":
        return f"{value:.2f}"
    number = float(value)
    if number >= 1_000_000:
        return f"{number / 1_000_000:.1f}M"
    if number >= 10_000:
        return f"{number / 1_000:.1f}k"
    return f"{int(number):,}"


def kind_of(metric: str) -> str:
    return {
        parse.BOUNCE_RATE: "percent",
        parse.CONVERSION_RATE: "percent",
        parse.VISIT_DURATION: "duration",
        parse.TIME_ON_PAGE: "duration",
        parse.VIEWS_PER_VISIT: "ratio",
    }.get(metric, "count")


def fragment(template: str, **context: Any) -> HTMLResponse:
    html = templates().get_template(f"cards/{template}").render(fmt=fmt, kind_of=kind_of, **context)
    return HTMLResponse(html, headers=NO_STORE)


def filter_value(value: str) -> str:
    """A value as the filter syntax spells it (`|` and `;` escaped)."""
    return value.replace("|", "\\|").replace(";", "\\;")


def answered_note(engine: Planner) -> str:
    """A card's footnote when the archive answered: where its numbers come from, and as of when
    (the counters' are live, so they need none)."""
    if engine.answered_from != ARCHIVE:
        return ""
    if engine.fresh_to is None:
        return "From the event archive, which has no events for these days yet."
    return f"From the event archive, as of {engine.fresh_to.strftime('%H:%M UTC')}."


def view_span(site: Any, now: datetime, v: View) -> parse.DateRange:
    """The view's period: read first where a card turns its own errors into a message, since a
    bad period or date is the request's error (a 400), not something a card cannot show."""
    return parse.parse_period(v.period, v.date, parse.today_in(site.tz, now))


# ---- cards -------------------------------------------------------------------------------------


@router.get("/metrics", responses=HTML)
def metrics_card(
    site: ReadableSite,
    d: Deps,
    now: Now,
    v: ViewParams,
    metric: Annotated[str, Query(max_length=40)] = parse.VISITORS,
    with_imported: Annotated[str | None, Query(max_length=5)] = None,
) -> HTMLResponse:
    """The metric row: each metric with its change against the previous period; with
    `with_imported=true`, imported data added for their days, and a note saying which."""
    engine = d.planner(site, now)
    tables = imported.tables_for(d.archive, site.domain, with_imported)
    tiles: list[dict[str, Any]] = []
    infos: list[imported.Imported] = []
    span = None
    for name, label, kind in TILES:
        try:
            query = build_query(
                site, now, period=v.period, date_param=v.date, metrics=name, filters=v.filters
            )
            span = query.span
            if tables is None:
                result = engine.aggregate(query, compare=True)[name]
            else:
                native = engine.aggregate(imported.augmented(query), compare=True)
                merged, info = imported.with_aggregate(tables, query, native, True)
                result = merged[name]
                infos.append(info)
            tiles.append({"metric": name, "label": label, "kind": kind, **result, "reason": ""})
        except BadRequest as exc:
            tiles.append({"metric": name, "label": label, "kind": kind, "reason": exc.message})
    if span is None:
        raise BadRequest(str(tiles[0]["reason"]))
    return fragment(
        "metrics.html",
        tiles=tiles,
        selected=metric,
        span=span,
        imported_note=imported.note(infos),
        imported_toggle=_imported_toggle(d, site.domain, span, with_imported, infos),
    )


def _imported_toggle(
    d: Any, domain: str, span: parse.DateRange, with_imported: str | None, infos: list[Any]
) -> str:
    """The metric row's switch for imported data, when the period holds some: "false" to leave
    them out, "true" to add them back, "" when there are none."""
    if any(i.included for i in infos):
        return "false"
    if with_imported != "false" or d.archive is None:
        return ""
    tables = imported.tables_for(d.archive, domain, "true")
    return "true" if tables is not None and tables.days_in(span) else ""


# the graph's comparison: `compare` → what its dataset and legend call it
COMPARISONS = {
    "previous_period": "previous period",
    "year_over_year": "same period last year",
}


def year_earlier(day: date) -> date:
    """The same date a year before; 29 February becomes the 28th."""
    if day.month == 2 and day.day == 29:
        return day.replace(year=day.year - 1, day=28)
    return day.replace(year=day.year - 1)


def comparison_span(span: parse.DateRange, compare: str) -> parse.DateRange:
    """The range the graph's comparison series covers. A year's span can lose a day (29 February
    has no twin): the series are matched point by point from the first."""
    if compare == "previous_period":
        return parse.previous_period(span)
    try:
        before = parse.DateRange(year_earlier(span.first), year_earlier(span.last))
    except ValueError:  # year 1 has no year before it
        raise BadRequest("There is no same period a year before this one.") from None
    if before.first < parse.FIRST_DAY:
        raise BadRequest("There is no same period a year before this one.")
    return before


def _point_label(when: str, interval: str) -> str:
    """How the graph's axis names a point: the hour alone within one day, else the date."""
    return when[11:16] if interval == "hour" else when


def _when(when: str, interval: str) -> str:
    """A point's date and, by the hour, its time: what the tooltip says of a comparison point."""
    return when[:16] if interval == "hour" else when


@router.get("/graph", responses=HTML)
def graph_card(
    site: ReadableSite,
    d: Deps,
    now: Now,
    v: ViewParams,
    metric: Annotated[str, Query(max_length=40)] = parse.VISITORS,
    compare: Annotated[
        str | None,
        Query(max_length=40, description="previous_period or year_over_year; none if absent"),
    ] = None,
    with_imported: Annotated[str | None, Query(max_length=5)] = None,
) -> HTMLResponse:
    """The selected metric over the period, as a Chart.js line (and a table for screen readers);
    with `compare`, a dashed second line for the previous period or the same dates a year
    earlier, whose dates the tooltip names."""
    if metric not in dict((t[0], t) for t in TILES):
        raise BadRequest(f"`{metric}` cannot be graphed; choose one of the metric row's metrics.")
    if compare and compare not in COMPARISONS:
        raise BadRequest(
            f"`compare={compare}` is not a comparison; use `previous_period` or `year_over_year`."
        )
    engine = d.planner(site, now)
    query = build_query(
        site, now, period=v.period, date_param=v.date, metrics=metric, filters=v.filters
    )
    interval = parse_interval(None, v.period)
    try:
        points = engine.timeseries(query, interval)
    except BadRequest:
        if interval != "hour":
            return fragment("unavailable.html", reason=_reason(engine, query, interval))
        interval = "day"  # hourly counters are site-wide only: a filtered day is one point
        points = engine.timeseries(query, interval)
    tables = imported.tables_for(d.archive, site.domain, with_imported)
    imported_note = ""
    if tables is not None:  # imported days added (decision 0035)
        native = engine.timeseries(imported.augmented(query), interval)
        points, info = imported.with_timeseries(tables, query, interval, native)
        imported_note = imported.note([info])
    answered = answered_note(engine)
    labels = [_point_label(str(p["date"]), interval) for p in points]
    values = [p[metric] for p in points]
    datasets: list[dict[str, Any]] = [{"label": LABELS[metric], "data": values, "fill": True}]
    against: list[tuple[str, Number | str]] = []
    note = ""
    if compare:
        try:
            span = comparison_span(query.span, compare)
            before = engine.timeseries(replace(query, span=span), interval)
        except BadRequest as exc:
            note = f"No comparison: {exc.message}"
        else:
            answered = answered or answered_note(engine)
            # point by point from the first; a longer comparison (January against February)
            # has no place on this axis past the current period's last point
            against = [(_when(str(p["date"]), interval), p[metric]) for p in before][: len(points)]
            datasets[0]["dates"] = [_when(str(p["date"]), interval) for p in points]
            datasets.append(
                {
                    "label": f"{LABELS[metric]}, {COMPARISONS[compare]}",
                    "data": [value for _, value in against],
                    # app.js shows these in the tooltip: the axis names the current period's
                    "dates": [when for when, _ in against],
                    "fill": False,
                    "borderDash": [6, 4],
                    "borderColor": "#9ca3af",  # gray-400: the current line stays the one to read
                    "backgroundColor": "rgba(156, 163, 175, 0.08)",
                    "borderWidth": 1.5,
                }
            )
    options: dict[str, Any] = {"scales": {"y": {"beginAtZero": True, "ticks": {"precision": 0}}}}
    if against:
        options["plugins"] = {"legend": {"display": True, "position": "bottom"}}
    chart = {"type": "line", "data": {"labels": labels, "datasets": datasets}, "options": options}
    rows = [
        (when, value, *(against[i] if i < len(against) else ("", None)))
        for i, (when, value) in enumerate(zip(labels, values, strict=True))
    ]
    return fragment(
        "graph.html",
        chart=chart,
        rows=rows,
        label=LABELS[metric],
        compared=COMPARISONS[compare] if compare and against else "",
        note=note,
        kind=kind_of(metric),
        interval=interval,
        answered=answered,
        imported_note=imported_note,
    )


def _reason(engine: Planner, query: parse.Query, interval: str) -> str:
    try:
        engine.timeseries(query, interval)
    except BadRequest as exc:
        return exc.message
    return ""


@router.get("/breakdown", responses=HTML)
def breakdown_card(
    site: ReadableSite,
    d: Deps,
    now: Now,
    v: ViewParams,
    property: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=1000)] = TOP_ROWS,
) -> HTMLResponse:
    """Top values of one property, each a button that filters the dashboard by it."""
    prop = parse.parse_property(long_property(property))
    columns = (parse.VISITORS, *COLUMNS[prop.kind])
    view_span(site, now, v)
    engine = d.planner(site, now)
    try:
        rows, folded = _breakdown(site, d, now, v, prop, columns, limit, engine)
    except BadRequest as exc:
        return fragment("unavailable.html", reason=exc.message)
    peak = max((float(r[parse.VISITORS]) for r in rows), default=0.0) or 1.0
    shown = [
        {
            "value": str(r[prop.key]),
            "label": geo.display(prop.name, str(r[prop.key])),  # a name, not a code
            "filter": None
            if r[prop.key] == "(other)"
            else f"{prop.name}=={filter_value(str(r[prop.key]))}",
            "width": round(100 * float(r[parse.VISITORS]) / peak, 1),
            "cells": [fmt(r[c], kind_of(c)) for c in columns],
        }
        for r in rows
    ]
    return fragment(
        "breakdown.html",
        rows=shown,
        headers=[LABELS[c] for c in columns],
        prop=prop,
        folded=folded,
        answered=answered_note(engine),
    )


def _breakdown(
    site: Any,
    d: Any,
    now: datetime,
    v: View,
    prop: parse.Property,
    columns: tuple[str, ...],
    limit: int,
    engine: Planner | None = None,
) -> tuple[list[dict[str, Number | str]], bool]:
    query = build_query(
        site,
        now,
        period=v.period,
        date_param=v.date,
        metrics=",".join(columns),
        filters=v.filters,
        prop=prop,
    )
    return (engine or d.planner(site, now)).breakdown(query, prop, limit, 1)


@router.get("/props", responses=HTML)
def props_card(site: ReadableSite, d: Deps, now: Now, v: ViewParams) -> HTMLResponse:
    """The custom prop keys sent in the period, most used first: the dashboard's props tabs."""
    keys = d.planner(site, now).prop_keys(view_span(site, now, v))
    return fragment("props.html", keys=keys)


@router.get("/sites", responses=HTML)
def sites_card(request: Request, d: Deps, now: Now) -> HTMLResponse:
    """The sites the caller may see (all when signed in, else the public ones) with their
    current visitors."""
    admin = signed_in(request, d, now) is not None
    visible = [site for site in d.sites.list() if admin or site.public]
    rows = [
        {
            "domain": site.domain,
            "public": site.public,
            "current": d.counters.current_visitors(site.domain, now),
        }
        for site in sorted(visible, key=lambda s: s.domain)
    ]
    return fragment("sites.html", sites=rows, admin=admin)


# ---- exports -----------------------------------------------------------------------------------

EXPORTS = (
    "visit:source",
    "visit:referrer",
    "visit:utm_source",
    "visit:utm_medium",
    "visit:utm_campaign",
    "visit:utm_content",
    "visit:utm_term",
    "event:page",
    "visit:entry_page",
    "visit:exit_page",
    "event:hostname",
    "visit:country",
    "visit:region",
    "visit:city",
    "visit:channel",
    "visit:device",
    "visit:browser",
    "visit:browser_version",
    "visit:os",
    "visit:os_version",
    "event:goal",
)


# A cell starting with one of these is run as a formula by spreadsheets (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """The value as a spreadsheet shows it: a would-be formula is written as text."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([_cell(c) for c in header])  # a prop key is event text too
    for row in rows:
        writer.writerow([_cell(c) for c in row])
    return out.getvalue()


def breakdown_csv_text(
    site: Any,
    d: Any,
    now: datetime,
    v: View,
    prop: parse.Property,
    engine: Planner | None = None,
) -> str:
    columns = (parse.VISITORS, *COLUMNS[prop.kind])
    rows, _ = _breakdown(site, d, now, v, prop, columns, 1000, engine)
    return _csv([prop.key, *columns], [[r[prop.key], *(r[c] for c in columns)] for r in rows])


def attachment(name: str) -> str:
    """A Content-Disposition for any file name (a prop key is event text): an ASCII fallback
    without quotes, backslashes, slashes or control characters, and the exact name as RFC 5987's
    percent-encoded UTF-8 (RFC 6266). A raw name could end the header, or not be Latin-1."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\/' else "_" for c in name
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _download(body: bytes, media: str, name: str) -> Response:
    return Response(
        body, media_type=media, headers={**NO_STORE, "content-disposition": attachment(name)}
    )


CSV = {200: {"description": "CSV", "content": {"text/csv": {}}}, **READ_ERRORS}
ZIP = {200: {"description": "ZIP of CSVs", "content": {"application/zip": {}}}, **READ_ERRORS}


@router.get("/breakdown.csv", responses=CSV)
def breakdown_csv(
    site: ReadableSite,
    d: Deps,
    now: Now,
    v: ViewParams,
    property: Annotated[str, Query(min_length=1, max_length=200)],
) -> Response:
    prop = parse.parse_property(long_property(property))
    text = breakdown_csv_text(site, d, now, v, prop)
    return _download(text.encode(), "text/csv; charset=utf-8", f"{site.domain}-{prop.key}.csv")


@router.get("/export.zip", responses=ZIP)
def export_zip(site: ReadableSite, d: Deps, now: Now, v: ViewParams) -> Response:
    """Every card for the period and filters; a card the filters rule out is left out."""
    view_span(site, now, v)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        engine = d.planner(site, now)
        metrics = ",".join(t[0] for t in TILES)
        try:
            query = build_query(
                site, now, period=v.period, date_param=v.date, metrics=metrics, filters=v.filters
            )
            points = engine.timeseries(
                query, parse_interval(None, v.period) if v.period != "day" else "day"
            )
            names = [t[0] for t in TILES]
            archive.writestr(
                "visitors.csv",
                _csv(["date", *names], [[p["date"], *(p[n] for n in names)] for p in points]),
            )
        except BadRequest:
            pass
        for name in EXPORTS:
            prop = parse.parse_property(name)
            try:
                # one engine for every card: each segment's pending slots are read once
                text = breakdown_csv_text(site, d, now, v, prop, engine)
                archive.writestr(f"{prop.key}.csv", text)
            except BadRequest:
                continue
    return _download(buffer.getvalue(), "application/zip", f"{site.domain}-export.zip")
