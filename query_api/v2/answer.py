"""A v2 answer as Plausible returns it (docs/compat.md §6): `results` (each row's `metrics` and
`dimensions` in the order asked), `meta` (its keys sorted, as Plausible sorts them) and `query`,
the question as it was run: the resolved date range as ISO datetimes in the site's offset, the
resolved time dimension, segments replaced by their filters, the order with its default.

Time labels are Plausible's: `2026-01-05` for days, the week's Monday (or the range's first day
when the range starts mid-week) for weeks, `2026-01-01` for months, and the local wall-clock
start of each hour (`2026-01-05 13:00:00`) for hours: 23 on a day clocks spring forward, 25 on
one they fall back, the repeated hour twice, as v1's hourly series.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from query_api.counters import local_hours
from query_api.parse import DateRange
from query_api.v2.model import Behaviour, Condition, FilterTree, Junction, Result, V2Query

HOUR_MS = 3_600_000
# Plausible's `meta.imports_skip_reason` when no imported data meet the range; query_api/v2/
# imported.py says more when some do (decision 0035).
NO_IMPORTED_DATA = "no_imported_data"


def render(
    query: V2Query,
    result: Result,
    *,
    time_labels: list[str] | None = None,
    warnings: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The response body. `time_labels` (when `include.time_labels`) default to every bucket of
    the range; `warnings` are `meta.metric_warnings` ({metric: {"code": …, "warning": …}})."""
    meta: dict[str, Any] = {}
    if query.include.imports:
        meta["imports_included"] = False
        meta["imports_skip_reason"] = NO_IMPORTED_DATA
    if warnings:
        meta["metric_warnings"] = {k: dict(v) for k, v in warnings.items()}
    if query.include.time_labels:
        meta["time_labels"] = time_labels if time_labels is not None else _time_labels(query)
    if query.include.total_rows:
        meta["total_rows"] = result.total_rows
    return {
        "results": [
            {"metrics": list(row.metrics), "dimensions": list(row.dimensions)}
            for row in result.rows
        ],
        "meta": dict(sorted(meta.items())),
        "query": query_echo(query),
    }


def query_echo(query: V2Query) -> dict[str, Any]:
    include = {
        "imports": query.include.imports,
        "time_labels": query.include.time_labels,
        "total_rows": query.include.total_rows,
    }
    return {
        "site_id": query.site.domain,
        "metrics": list(query.metrics),
        "date_range": list(query.date_range_echo),
        "filters": [filter_json(f) for f in query.filters],
        "dimensions": list(query.dimensions),
        "order_by": [[key, direction] for key, direction in query.order_by],
        "include": {k: v for k, v in include.items() if v},  # Plausible echoes the ones set
        "pagination": {"limit": query.limit, "offset": query.offset},
    }


def filter_json(tree: FilterTree) -> list[Any]:
    """A filter tree in the API's JSON form."""
    if isinstance(tree, Condition):
        out: list[Any] = [tree.op, tree.dimension, list(tree.values)]
        return out if tree.case_sensitive else [*out, {"case_sensitive": False}]
    if isinstance(tree, Junction):
        return [tree.op, [filter_json(c) for c in tree.children]]
    if isinstance(tree, Behaviour):
        return ["has_done" if tree.done else "has_not_done", filter_json(tree.child)]
    return ["not", filter_json(tree.child)]


# ---- time labels -------------------------------------------------------------------------------


def time_labels(query: V2Query) -> list[str]:
    """Every bucket label of the query's range for its time dimension (none without one)."""
    return _time_labels(query)


def _time_labels(query: V2Query) -> list[str]:
    days = DateRange(query.first, query.last)
    if query.time_dimension == "hour":
        zone = ZoneInfo(query.site.tz)
        return [
            _hour_label(hour, zone)
            for day in days.each_day()
            for hour in local_hours(day, zone)
            if _overlaps(hour, query)
        ]
    if query.time_dimension == "day":
        return [day.isoformat() for day in days.each_day()]
    if query.time_dimension == "week":
        return _week_labels(query.first, query.last)
    if query.time_dimension == "month":
        return _month_labels(query.first, query.last)
    return []


def _overlaps(hour: datetime, query: V2Query) -> bool:
    start = int(hour.timestamp() * 1000)
    return start < query.end_ms and start + HOUR_MS > query.start_ms


def _hour_label(hour: datetime, zone: ZoneInfo) -> str:
    return hour.astimezone(zone).strftime("%Y-%m-%d %H:00:00")  # as v1's hourly series


def week_label(day: date, first: date, last: date) -> str:
    """The label of the week holding `day` in a range: its Monday, or the range's first day
    for a first week that starts before the range does."""
    del last  # a week's Monday is never after the range's last day when the day is in it
    return max(day - timedelta(days=day.weekday()), first).isoformat()


def _week_labels(first: date, last: date) -> list[str]:
    monday = first - timedelta(days=first.weekday())
    weeks = (last - monday).days // 7
    return [week_label(first + timedelta(weeks=n), first, last) for n in range(weeks + 1)]


def _month_labels(first: date, last: date) -> list[str]:
    index, end = first.year * 12 + first.month - 1, last.year * 12 + last.month - 1
    return [date(i // 12, i % 12 + 1, 1).isoformat() for i in range(index, end + 1)]


def time_label_of(query: V2Query, ts_ms: int) -> str:
    """The time dimension's label of an instant inside the range (for engines and tests)."""
    local = datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(ZoneInfo(query.site.tz))
    if query.time_dimension == "hour":
        return local.strftime("%Y-%m-%d %H:00:00")
    if query.time_dimension == "week":
        return week_label(local.date(), query.first, query.last)
    if query.time_dimension == "month":
        return local.date().replace(day=1).isoformat()
    return local.date().isoformat()
