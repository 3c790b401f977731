"""`include: {"imports": true}` in v2 (decision 0035): Plausible's imported tables added to a
question they can answer — no dimension, or one they keep (a property or the time by day or
month), filters `is` on that same property, and metrics that add up (visitors, visits,
pageviews, events); anything else is answered without them, and `meta` says so in Plausible's
words (`imports_included`, `imports_skip_reason`, `imports_warning`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

from query_api.imported import PROPERTIES, WARNING, Cell, Shape, tables_for
from query_api.parse import DateRange, Filter, Property
from query_api.v2.model import Condition, Result, Row, V2Query

ADDITIVE = {"visitors", "visits", "pageviews", "events"}
TIMES = {"time", "time:day", "time:month"}
MAX_ROWS = 10_000


def _shape(query: V2Query) -> tuple[Shape, str | None] | None:
    """The imported question and its time dimension, None if the tables cannot answer."""
    if not set(query.metrics) <= ADDITIVE or len(query.dimensions) > 1:
        return None
    dimension = query.dimensions[0] if query.dimensions else None
    time = None
    if dimension in TIMES:
        time = query.time_dimension or dimension.removeprefix("time:")
        if time not in ("day", "month"):
            return None
        dimension = None
    filtered = set()
    filters = []
    for tree in query.filters:
        if not (isinstance(tree, Condition) and tree.op == "is" and tree.case_sensitive):
            return None
        filtered.add(tree.dimension)
        filters.append(Filter(Property(tree.dimension, "", ""), False, tuple(tree.values)))
    named = filtered | ({dimension} if dimension else set())
    if len(named) > 1 or not named <= set(PROPERTIES):
        return None
    table = PROPERTIES[next(iter(named))][0] if named else "visitors"
    column = PROPERTIES[dimension][1] if dimension else None
    allowed = {"custom_events": {"visitors", "events"}, "visitors": ADDITIVE}.get(
        table, {"visitors", "visits", "pageviews"}
    )
    if not set(query.metrics) <= allowed:
        return None
    return Shape(table, column, tuple(filters), query.metrics), time


def include(
    archive: Any, query: V2Query, result: Result, ask: Callable[[V2Query], Result]
) -> tuple[Result, dict[str, Any]]:
    """The result with imported numbers added when asked and possible, and the meta to say so.
    `archive`: the query deps' (query_api/deps.py Archive), None without one; `ask` answers a
    question natively (for every row, when imported rows must be merged before the page)."""
    if not query.include.imports:
        return result, {}
    tables = tables_for(archive, query.site.domain, "true")
    span = DateRange(query.first, query.last)
    days = tables.days_in(span) if tables is not None else None
    if tables is None or days is None:
        return result, {"imports_included": False, "imports_skip_reason": "no_imported_data"}
    shaped = _shape(query)
    if shaped is None:
        return result, {
            "imports_included": False,
            "imports_skip_reason": "unsupported_query",
            "imports_warning": WARNING,
        }
    shape, time = shaped
    native = ask(replace(query, limit=MAX_ROWS, offset=0)) if _paged(query, result) else result
    rows: dict[tuple[str, ...], dict[str, float | int]] = {
        row.dimensions: dict(zip(query.metrics, (m or 0 for m in row.metrics), strict=True))
        for row in native.rows
    }
    for day, value, cell in tables.rows(shape, span):
        key = _key(query, day, value, time)
        into = rows.setdefault(key, dict.fromkeys(query.metrics, 0))
        for metric in query.metrics:
            into[metric] += _value(metric, cell)
    ordered = sorted(rows.items(), key=_order(query))
    page = ordered[query.offset : query.offset + query.limit]
    merged = Result(
        tuple(Row(k, tuple(v[m] for m in query.metrics)) for k, v in page), len(ordered)
    )
    return merged, {"imports_included": True}


def _paged(query: V2Query, result: Result) -> bool:
    return query.offset > 0 or result.total_rows > len(result.rows)


def _value(metric: str, cell: Cell) -> int:
    return cell.get(metric, 0)


def _key(query: V2Query, day: date, value: str, time: str | None) -> tuple[str, ...]:
    if not query.dimensions:
        return ()
    if time == "month":
        return (day.replace(day=1).isoformat(),)
    if time == "day":
        return (day.isoformat(),)
    return (value,)


def _order(query: V2Query) -> Callable[[tuple[tuple[str, ...], dict[str, Any]]], tuple[Any, ...]]:
    def key(item: tuple[tuple[str, ...], dict[str, Any]]) -> tuple[Any, ...]:
        dims, values = item
        out: list[Any] = []
        for name, direction in query.order_by:
            if name in values:
                number = float(values[name])
                out.append(-number if direction == "desc" else number)
            elif name in query.dimensions:
                text = dims[query.dimensions.index(name)]
                out.append(_Reversed(text) if direction == "desc" else text)
        return (*out, *dims)

    return key


class _Reversed:
    """A string that sorts backwards (a descending dimension)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __lt__(self, other: _Reversed) -> bool:
        return self.text > other.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)
