"""Imported data (Plausible's export, imports/) in the stats answers, as Plausible answers it.

Plausible's imported tables are daily aggregates per property, so they answer what one table
holds: totals; a breakdown by one property; either with filters on that same property. Visitors
over a range are the sum of the days' visitors (as our own counters count them). A question they
cannot answer (two properties, a filter on one property with a breakdown by another, a metric
they do not keep, hours) is answered without them and says so in a warning, in Plausible's words.

An import answers only for its own days (imports/service.py: days before the site's native
stats, not taken by an earlier import), so adding its numbers to the native ones never counts a
day twice. Rates and means are recomputed from the sums: native visits, pageviews and visitors
are exact counts; a native rate is weighted by its visits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from core.observability import logger
from imports.store import PLAUSIBLE, ImportStore, Manifest
from query_api import parse
from query_api.errors import BadRequest
from query_api.metrics import Number, change
from query_api.parse import DateRange, Filter, Property, Query

log = logger("query")

WARNING = (
    "Imported stats are not included in the results because query parameters are not "
    "supported. For more information, see: https://plausible.io/docs/stats-api#filtering-imported-stats"
)
INTERVAL_WARNING = (
    "Imported stats are not included because the time dimension (i.e. the interval) is too short."
)

# property → (table, column)
PROPERTIES: dict[str, tuple[str, str]] = {
    "visit:source": ("sources", "source"),
    "visit:referrer": ("sources", "referrer"),
    "visit:utm_source": ("sources", "utm_source"),
    "visit:utm_medium": ("sources", "utm_medium"),
    "visit:utm_campaign": ("sources", "utm_campaign"),
    "visit:utm_content": ("sources", "utm_content"),
    "visit:utm_term": ("sources", "utm_term"),
    "visit:device": ("devices", "device"),
    "visit:browser": ("browsers", "browser"),
    "visit:browser_version": ("browsers", "browser_version"),
    "visit:os": ("operating_systems", "os"),
    "visit:os_version": ("operating_systems", "os_version"),
    "visit:country": ("locations", "country"),
    "visit:region": ("locations", "region"),
    "visit:city": ("locations", "city"),
    "event:page": ("pages", "page"),
    "visit:entry_page": ("entry_pages", "entry_page"),
    "visit:exit_page": ("exit_pages", "exit_page"),
    "event:name": ("custom_events", "name"),
    "event:goal": ("custom_events", "name"),
}
SESSION_COUNTERS = ("visitors", "visits", "pageviews", "bounces", "visit_duration")
COUNTERS: dict[str, tuple[str, ...]] = {
    "visitors": (*SESSION_COUNTERS, "events"),
    "pages": ("visitors", "pageviews", "visits", "bounces", "visit_duration"),
    "custom_events": ("visitors", "events"),
}
# What each kind of question can give, by metric.
SESSION_METRICS = {
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
}
METRICS_OF: dict[str, set[str]] = {
    "visitors": SESSION_METRICS | {"events"},
    "pages": {"visitors", "visits", "pageviews", "bounce_rate", "visit_duration"},
    "custom_events": {"visitors", "events"},
}
DERIVED = {"views_per_visit", "bounce_rate", "visit_duration"}

Cell = dict[str, int]


@dataclass
class Imported:
    """What a route says about imported data: included or not, their days, and why not."""

    included: bool = False
    first: str | None = None  # the imported days the answer holds
    last: str | None = None
    warning: str | None = None
    skip_reason: str | None = None  # v2's imports_skip_reason

    def out(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Shape:
    """A question the imported tables answer: one table, one column or none, its filters."""

    table: str
    column: str | None
    filters: tuple[Filter, ...] = ()
    metrics: tuple[str, ...] = field(default_factory=tuple)


def shape_of(query: Query, prop: Property | None) -> Shape | None:
    """The imported question for a v1 query and breakdown property, None if they cannot answer."""
    named = {f.prop.name for f in query.filters}
    if prop is not None:
        if prop.name not in PROPERTIES or named - {prop.name}:
            return None
        table, column = PROPERTIES[prop.name]
        return _checked(Shape(table, column, query.filters, query.metrics))
    if not named:
        return _checked(Shape("visitors", None, (), query.metrics))
    if len(named) > 1 or next(iter(named)) not in PROPERTIES:
        return None
    table, _ = PROPERTIES[next(iter(named))]
    return _checked(Shape(table, None, query.filters, query.metrics))


def _checked(shape: Shape) -> Shape | None:
    kept = METRICS_OF.get(shape.table, SESSION_METRICS)
    return shape if set(shape.metrics) <= kept else None


class ImportedTables:
    """A site's Plausible imports, read for a question."""

    def __init__(self, store: ImportStore, site: str) -> None:
        self.store = store
        self.site = site
        self.manifests = [m for m in store.manifests(site) if m.kind == PLAUSIBLE]

    def days_in(self, span: DateRange) -> tuple[str, str] | None:
        """The first and last imported day within the span, None if none."""
        first, last = span.first.isoformat(), span.last.isoformat()
        found = [
            (max(a, first), min(b, last))
            for m in self.manifests
            for a, b in m.ranges
            if a <= last and b >= first
        ]
        if not found:
            return None
        return min(a for a, _ in found), max(b for _, b in found)

    def rows(self, shape: Shape, span: DateRange) -> list[tuple[date, str, Cell]]:
        """(day, value, counters) of the span's imported days, filtered; value "" without a
        column."""
        out: list[tuple[date, str, Cell]] = []
        for manifest in self.manifests:
            out += self._rows_of(manifest, shape, span)
        return out

    def _rows_of(
        self, manifest: Manifest, shape: Shape, span: DateRange
    ) -> list[tuple[date, str, Cell]]:
        ranges = [
            (max(a, span.first.isoformat()), min(b, span.last.isoformat()))
            for a, b in manifest.ranges
            if a <= span.last.isoformat() and b >= span.first.isoformat()
        ]
        if not ranges or shape.table not in manifest.tables:
            return []
        rows = self._read(manifest, shape.table, shape, ranges)
        if shape.table == "pages":  # visits of a page: the visits entering on it (as ours)
            entries = self._read(
                manifest, "entry_pages", Shape("entry_pages", "entry_page", ()), ranges
            )
            by_key = {(d, v): c for d, v, c in entries}
            rows = [
                (
                    d,
                    v,
                    {
                        **c,
                        **{
                            k: by_key.get((d, v), {}).get(k, 0)
                            for k in ("visits", "bounces", "visit_duration")
                        },
                    },
                )
                for d, v, c in rows
            ]
        if shape.table == "visitors" and "custom_events" in manifest.tables:
            custom = self._read(manifest, "custom_events", Shape("custom_events", None, ()), ranges)
            events = {d: c.get("events", 0) for d, _, c in custom}
            rows = [
                (d, v, {**c, "events": c.get("pageviews", 0) + events.get(d, 0)})
                for d, v, c in rows
            ]
        return rows

    def _read(
        self,
        manifest: Manifest,
        table: str,
        shape: Shape,
        ranges: list[tuple[str, str]],
    ) -> list[tuple[date, str, Cell]]:
        from archive import parquet  # DuckDB: only when imported data is asked for

        files = self.store.local_files(self.site, [manifest.id], table)
        if not files:
            return []
        counters = {
            "custom_events": ("visitors", "events"),
            "pages": ("visitors", "pageviews"),
        }.get(table, SESSION_COUNTERS)
        columns = [f.prop.name for f in shape.filters]
        filter_columns = sorted({PROPERTIES[n][1] for n in columns})
        group = [
            c for c in dict.fromkeys([*([shape.column] if shape.column else []), *filter_columns])
        ]
        where = " OR ".join(f"date BETWEEN DATE '{a}' AND DATE '{b}'" for a, b in ranges)
        select = ", ".join(["date", *group, *(f"sum({c})::BIGINT" for c in counters)])
        sql = (
            f"SELECT {select} FROM read_parquet({[str(f) for f in files]}) WHERE {where} "
            f"GROUP BY {', '.join(['date', *group])}"
        )
        con = parquet.connect()
        out: list[tuple[date, str, Cell]] = []
        for record in con.execute(sql).fetchall():
            values = dict(zip(group, record[1 : 1 + len(group)], strict=True))
            if not all(
                f.matches(str(values[PROPERTIES[f.prop.name][1]] or "")) for f in shape.filters
            ):
                continue
            cell = dict(zip(counters, (int(n or 0) for n in record[1 + len(group) :]), strict=True))
            key = str(values[shape.column] or "") if shape.column else ""
            out.append((record[0], key, cell))
        return out


def tables_for(archive: Any, site: str, with_imported: str | None) -> ImportedTables | None:
    """The site's imported tables when a caller asks for them (`with_imported=true`, as
    Plausible's v1), None otherwise or without an archive (imports live in its bucket).
    `archive`: the query deps' (query_api/deps.py Archive) or None."""
    if with_imported in (None, "false"):
        return None
    if with_imported != "true":
        raise BadRequest(
            f"Invalid value `{with_imported}` for `with_imported`: use `true` or `false`."
        )
    if archive is None:
        return None
    try:
        return ImportedTables(archive.imports, site)
    except (BotoCoreError, ClientError) as exc:
        # A deployment whose query role may not read imports/ yet (decision 0035): the native
        # numbers, never a failed card.
        log.warning("imports unreadable", extra={"error": type(exc).__name__})
        return None


def note(infos: list[Imported]) -> str:
    """What a dashboard card says of the imported data it holds ("" when none)."""
    held = [i for i in infos if i.included and i.first and i.last]
    if not held:
        return ""
    first = min(str(i.first) for i in held)
    last = max(str(i.last) for i in held)
    return f"Includes imported data from {first} to {last}."


# ---- adding imported numbers to native answers ---------------------------------------------------


def augmented(query: Query) -> Query:
    """The native query with the counts a derived metric is weighted by."""
    extra = [m for m in ("visits", "pageviews") if m not in query.metrics]
    if not set(query.metrics) & DERIVED:
        return query
    return replace(query, metrics=(*query.metrics, *extra))


def combine(metric: str, native: dict[str, Any], imported: Cell) -> Number:
    """A metric of native values (as the engines answer them) and imported counters."""
    visits_n = int(native.get("visits", 0) or 0)
    visits = visits_n + imported.get("visits", 0)
    if metric == "bounce_rate":
        bounces = float(native.get(metric, 0) or 0) * visits_n / 100 + imported.get("bounces", 0)
        return round(100 * bounces / visits) if visits else 0
    if metric == "visit_duration":
        seconds = float(native.get(metric, 0) or 0) * visits_n + imported.get("visit_duration", 0)
        return round(seconds / visits) if visits else 0
    if metric == "views_per_visit":
        pageviews = int(native.get("pageviews", 0) or 0) + imported.get("pageviews", 0)
        return round(pageviews / visits, 2) if visits else 0.0
    value = native.get(metric, 0) or 0
    return value + imported.get(metric, 0)


def total(
    rows: list[tuple[date, str, Cell]], keep: Callable[[date], bool] = lambda _d: True
) -> Cell:
    out: Cell = {}
    for day, _value, cell in rows:
        if keep(day):
            for name, n in cell.items():
                out[name] = out.get(name, 0) + n
    return out


def by_value(rows: list[tuple[date, str, Cell]]) -> dict[str, Cell]:
    out: dict[str, Cell] = {}
    for _day, value, cell in rows:
        into = out.setdefault(value, {})
        for name, n in cell.items():
            into[name] = into.get(name, 0) + n
    return out


def with_aggregate(
    tables: ImportedTables, query: Query, native: dict[str, dict[str, Any]], compare: bool
) -> tuple[dict[str, dict[str, Number | None]], Imported]:
    shape = shape_of(query, None)
    spans = [query.span, parse.previous_period(query.span)] if compare else [query.span]
    days = _days(tables, spans)
    if days is None:
        return _trim(native, query.metrics), Imported(skip_reason="no_imported_data")
    if shape is None:
        return _trim(native, query.metrics), Imported(
            warning=WARNING, skip_reason="unsupported_query"
        )
    current = total(tables.rows(shape, query.span))
    values = {
        m: combine(m, {k: v["value"] for k, v in native.items()}, current) for m in query.metrics
    }
    if not compare:
        return {m: {"value": v} for m, v in values.items()}, _included(days)
    previous_cell = total(tables.rows(shape, spans[1]))
    previous = {
        m: combine(m, {k: v.get("comparison_value") for k, v in native.items()}, previous_cell)
        for m in query.metrics
    }
    return (
        {
            m: {
                "value": values[m],
                "comparison_value": previous[m],
                "change": change(m, values[m], previous[m]),
            }
            for m in query.metrics
        },
        _included(days),
    )


def with_timeseries(
    tables: ImportedTables, query: Query, interval: str, native: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], Imported]:
    days = _days(tables, [query.span])
    if days is None:
        return [_trim_row(r, query.metrics) for r in native], Imported(
            skip_reason="no_imported_data"
        )
    shape = shape_of(query, None)
    if interval == "hour":
        return [_trim_row(r, query.metrics) for r in native], Imported(
            warning=INTERVAL_WARNING, skip_reason="unsupported_interval"
        )
    if shape is None:
        return [_trim_row(r, query.metrics) for r in native], Imported(
            warning=WARNING, skip_reason="unsupported_query"
        )
    per_label: dict[str, Cell] = {}
    for day, _value, cell in tables.rows(shape, query.span):
        label = day.replace(day=1).isoformat() if interval == "month" else day.isoformat()
        into = per_label.setdefault(label, {})
        for name, n in cell.items():
            into[name] = into.get(name, 0) + n
    out = []
    for row in native:
        cell = per_label.get(str(row["date"]), {})
        out.append({"date": row["date"], **{m: combine(m, row, cell) for m in query.metrics}})
    return out, _included(days)


def with_breakdown(
    tables: ImportedTables,
    query: Query,
    prop: Property,
    native: list[dict[str, Any]],
    limit: int,
    page: int,
) -> tuple[list[dict[str, Any]], Imported]:
    """Native rows (every one: the caller asks for all) with the imported ones added, sorted by
    the first metric and cut to the page."""
    days = _days(tables, [query.span])
    if days is None:
        return _page([_trim_row(r, query.metrics) for r in native], limit, page), Imported(
            skip_reason="no_imported_data"
        )
    shape = shape_of(query, prop)
    if shape is None:
        return _page([_trim_row(r, query.metrics) for r in native], limit, page), Imported(
            warning=WARNING, skip_reason="unsupported_query"
        )
    imported = by_value(tables.rows(shape, query.span))
    merged: dict[str, dict[str, Any]] = {str(r[prop.key]): r for r in native}
    rows = []
    for value in sorted(set(merged) | set(imported)):
        native_row = merged.get(value, {})
        cell = imported.get(value, {})
        rows.append({prop.key: value, **{m: combine(m, native_row, cell) for m in query.metrics}})
    first = query.metrics[0]
    rows.sort(key=lambda r: (-float(r[first]), str(r[prop.key])))
    return _page(rows, limit, page), _included(days)


def _page(rows: list[dict[str, Any]], limit: int, page: int) -> list[dict[str, Any]]:
    start = (page - 1) * limit
    return rows[start : start + limit]


def _trim(native: dict[str, dict[str, Any]], metrics: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    return {m: native[m] for m in metrics}


def _trim_row(row: dict[str, Any], metrics: tuple[str, ...]) -> dict[str, Any]:
    extra = {"visits", "pageviews"} - set(metrics)
    return {k: v for k, v in row.items() if k not in extra}


def _days(tables: ImportedTables, spans: list[DateRange]) -> tuple[str, str] | None:
    found = [d for d in (tables.days_in(s) for s in spans) if d is not None]
    if not found:
        return None
    return min(a for a, _ in found), max(b for _, b in found)


def _included(days: tuple[str, str]) -> Imported:
    return Imported(included=True, first=days[0], last=days[1])
