"""The counters' fast path for v2: a question the v1 counters keep (no dimension, one property,
or one time dimension by hour, day or month; top-level `is`/`is_not`/`contains`/`contains_not`
filters, case-sensitive; whole site-local days; v1's metrics) is asked of them as a v1 `Query`.
Anything else, or anything they refuse (`counters.NotExact`), goes to the archive's v2 engine
(engine.py). Both give the same rows: tests/integration/test_v2_query.py asks both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from query_api import counters, parse
from query_api.errors import BadRequest
from query_api.metrics import Number
from query_api.v2.model import (
    CONTAINS,
    CONTAINS_NOT,
    IS,
    IS_NOT,
    Condition,
    Result,
    Row,
    V2Query,
)

# v2 metrics that v1's counters compute the same way
V1_METRICS = frozenset(parse.METRICS)
INTERVALS = {"hour": "hour", "day": "day", "month": "month"}  # time:week: the archive's


def v1_filters(query: V2Query) -> tuple[parse.Filter, ...] | None:
    """The filters as v1 ones, or None when v1 cannot say them."""
    out = []
    for tree in query.filters:
        if not isinstance(tree, Condition) or not tree.case_sensitive:
            return None
        if tree.op not in (IS, IS_NOT, CONTAINS, CONTAINS_NOT):
            return None
        if any("*" in v or not v for v in tree.values):  # v1's `*` is a wildcard
            return None
        try:
            prop = parse.parse_property(tree.dimension, filter_=True)
        except BadRequest:
            return None
        values = tree.values
        if tree.op in (CONTAINS, CONTAINS_NOT):
            values = tuple(f"*{v}*" for v in values)
        out.append(parse.Filter(prop, tree.negated, tuple(dict.fromkeys(values))))
    return tuple(out)


def whole_days(query: V2Query) -> bool:
    zone = ZoneInfo(query.site.tz)
    start = datetime.combine(query.first, time(), zone)
    end = datetime.combine(query.last + timedelta(days=1), time(), zone)
    return (int(start.timestamp() * 1000), int(end.timestamp() * 1000)) == (
        query.start_ms,
        query.end_ms,
    )


def _clocks_change(query: V2Query) -> bool:
    """The site's UTC offset changes within the range's days."""
    zone = ZoneInfo(query.site.tz)
    start = datetime.combine(query.first, time(), zone)
    end = datetime.combine(query.last + timedelta(days=1), time(), zone)
    return start.utcoffset() != end.utcoffset() or any(
        datetime.combine(day, time(), zone).utcoffset() != start.utcoffset()
        for day in parse.DateRange(query.first, query.last).each_day()
    )


def counters_result(engine: counters.CounterEngine, query: V2Query) -> Result | None:
    """The answer from the counters, or None when the question is not theirs."""
    filters = v1_filters(query)
    if filters is None or not whole_days(query) or not set(query.metrics) <= V1_METRICS:
        return None
    if parse.CONVERSION_RATE in query.metrics and any(f.prop.kind == parse.PROP for f in filters):
        return None  # v2's denominator drops props filters too, v1's only goal filters
    if query.time_dimension == "hour" and _clocks_change(query):
        return None  # v2 makes a repeated local hour one row, v1's series two points
    v1 = parse.Query(query.site, parse.DateRange(query.first, query.last), filters, query.metrics)
    others = [d for d in query.dimensions if not d.startswith("time")]
    timed = len(others) < len(query.dimensions)
    try:
        if not query.dimensions:
            values = engine.aggregate(v1)
            rows = [Row((), tuple(values[m]["value"] for m in query.metrics))]
        elif timed and not others and query.time_dimension in INTERVALS:
            series = engine.timeseries(v1, INTERVALS[query.time_dimension])
            rows = [_row((str(p["date"]),), p, query.metrics) for p in series]
        elif len(others) == 1 and not timed:
            prop = parse.parse_property(others[0])
            listed, _ = engine.breakdown(v1, prop, limit=1_000_000_000, page=1)
            rows = [_row((str(r[prop.key]),), r, query.metrics) for r in listed]
        else:
            return None
    except (counters.NotExact, BadRequest):
        return None
    if query.dimensions:
        rows = [r for r in rows if any(m for m in r.metrics)]  # no data: no row (Plausible's)
    return page_of(query, rows)


def _row(dims: tuple[str, ...], values: dict[str, Number | str], metrics: Sequence[str]) -> Row:
    return Row(dims, tuple(_number(values[m]) for m in metrics))


def _number(value: Number | str | None) -> float | int | None:
    return None if value is None or isinstance(value, str) else value


def page_of(query: V2Query, rows: list[Row]) -> Result:
    """Rows in the query's order (ties by the dimensions, ascending), then its page."""
    ordered = sorted(rows, key=lambda r: r.dimensions)
    for name, direction in reversed(query.order_by):
        if name in query.metrics:
            at = query.metrics.index(name)
            ordered.sort(key=lambda r: _metric_key(r.metrics[at]), reverse=direction == "desc")
        elif name in query.dimensions:
            at = query.dimensions.index(name)
            ordered.sort(key=lambda r: r.dimensions[at], reverse=direction == "desc")
    page = ordered[query.offset : query.offset + query.limit]
    return Result(tuple(page), len(ordered))


def _metric_key(value: float | int | None) -> float:
    return float("-inf") if value is None else float(value)
