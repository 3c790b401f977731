"""A v2 request body (`POST /api/v2/query`, docs/compat.md §6) → a validated `V2Query`, with
Plausible's validation messages word for word where it has them.

The body is checked in Plausible's order: first its shape (Plausible validates a JSON schema and
answers `#/<path>: <what>` lines, every problem found), then each part's meaning (date range,
filters and segments, order, metrics against dimensions and filters). Anything malformed is a
`BadRequest`, never an exception of another kind: every value is type-checked before use, filter
trees are walked with a depth and size cap, and messages quote values through a bounded
`inspect` (Elixir's, as Plausible's messages print them).

Ranges are site-local days as v1's (`query_api/parse.py`): a day starts at the first instant
whose local date is that day (after a DST gap: the gap's end), so `start_ms`/`end_ms` cut the
archive where v1's days and hours do. `Nd` is the N days before today, `Nmo` the N whole months
before this one (today excluded, as Plausible resolves them since 2025); `day`, `month` and
`year` are whole calendar units holding today; `24h` and datetime pairs are exact instants.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.events import MAX_PROP_KEY_BYTES
from core.sites import Site
from query_api.errors import BadRequest
from query_api.parse import (
    FIRST_DAY,
    LAST_DAY,
    SESSION_PROPERTIES,
    goal_configured,
    last_of_month,
    today_in,
)
from query_api.v2.model import (
    CONDITION_OPERATORS,
    CONTAINS,
    CONTAINS_NOT,
    IS,
    IS_NOT,
    MATCHES,
    MATCHES_NOT,
    TIME_DIMENSIONS,
    Behaviour,
    Condition,
    FilterTree,
    Include,
    Junction,
    Negation,
    V2Query,
)

Segments = Callable[[str], tuple[FilterTree, ...] | None]

METRICS = (
    "visitors",
    "visits",
    "pageviews",
    "events",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "time_on_page",
    "scroll_depth",
    "conversion_rate",
    "group_conversion_rate",
    "percentage",
)
# Plausible's table split (TableDecider): a session metric cannot be grouped by an event
# dimension (event:page alone excepted: by the visit's entry page), an event metric not by a
# session-only dimension.
SESSION_ONLY_METRICS = ("bounce_rate", "visit_duration", "views_per_visit")
EVENT_ONLY_METRICS = ("pageviews", "events", "scroll_depth")
SESSION_ONLY_DIMENSIONS = (
    "visit:entry_page",
    "visit:exit_page",
    "visit:entry_page_hostname",
    "visit:exit_page_hostname",
)

EVENT_DIMENSIONS = ("event:name", "event:page", "event:hostname")
PROPS = "event:props:"
GOAL = "event:goal"
SEGMENT = "segment"
# Dimensions Plausible knows that the archive does not store yet (docs/compat.md §6).
NOT_STORED = (
    "visit:screen",
    "visit:entry_page_hostname",
    "visit:exit_page_hostname",
)
# Display names of stored codes, answered by query_api/v2/geo_names.py
NAME_DIMENSIONS = ("visit:country_name", "visit:region_name", "visit:city_name")
SIMPLE_DIMENSIONS = (*EVENT_DIMENSIONS, *SESSION_PROPERTIES, *NAME_DIMENSIONS, *NOT_STORED)
TIME_GRANULARITIES = {
    "time:hour": "hour",
    "time:day": "day",
    "time:week": "week",
    "time:month": "month",
}

FIELDS = (
    "site_id",
    "metrics",
    "date_range",
    "dimensions",
    "filters",
    "order_by",
    "include",
    "pagination",
)
INCLUDE_KEYS = ("total_rows", "time_labels", "imports")
CASE_OPERATORS = (IS, IS_NOT, CONTAINS, CONTAINS_NOT)  # the ones taking {"case_sensitive": …}

MAX_LIMIT = 10_000
MAX_OFFSET = 1_000_000_000  # ours: the engines page in 64-bit integers
MAX_DAYS_BACK, MAX_MONTHS_BACK = 5_000, 100  # Plausible's bounds on `Nd` and `Nmo`
MAX_RANGE_DAYS = 5_000  # ours: what a range may span (`all` is bounded by retention)
MAX_SEGMENTS = 10  # Plausible's
# Ours: bounds on what one body may ask of the engines.
MAX_DIMENSIONS = 10
MAX_ORDER_BY = 30
MAX_FILTER_DEPTH = 10
MAX_FILTER_NODES = 500
MAX_CLAUSES = 1_000
MAX_PATTERN_LENGTH = 1_000  # an RE2 pattern of `matches`: RE2 runs in linear time, but its
MAX_VALUE_LENGTH = 2_000  # compiled program grows with the pattern

DATE_RE = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])")
DATETIME_RE = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?"
    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?"
)
RELATIVE_RE = re.compile(r"(\d+)(d|mo)")
RELATIVE_RANGES = ("day", "24h", "month", "year", "all")

GOALS_DOCS = "https://plausible.io/docs/stats-api#filtering-by-goals"


# ---- messages ----------------------------------------------------------------------------------


def inspect(value: Any, *, limit: int = 500) -> str:
    """A JSON value as Elixir's `inspect` prints it (Plausible quotes values so): `"a"`, `[1, 2]`,
    `%{"k" => true}`, `nil`; lists past 50 items end in `...`, and the whole is cut at `limit`
    characters (ours: a message must stay small whatever the body)."""
    text = _inspect(value, 0)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _inspect(value: Any, depth: int) -> str:
    if depth > 20:
        return "..."
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        items = [_inspect(v, depth + 1) for v in value[:50]]
        return "[" + ", ".join(items + (["..."] if len(value) > 50 else [])) + "]"
    if isinstance(value, dict):
        pairs = [f"{_inspect(k, depth + 1)} => {_inspect(v, depth + 1)}" for k, v in value.items()]
        return "%{" + ", ".join(pairs[:50] + (["..."] if len(pairs) > 50 else [])) + "}"
    return repr(value)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    names = {float: "Number", str: "String", list: "Array", dict: "Object"}
    return names.get(type(value), "Null")


def _mismatch(path: str, expected: str, value: Any) -> str:
    return f"{path}: Type mismatch. Expected {expected} but got {_json_type(value)}."


def _unique(items: list[Any]) -> bool:
    try:
        keys = [json.dumps(item, sort_keys=True, default=str) for item in items]
    except (RecursionError, ValueError):  # nested past json's depth: not a duplicate of anything
        return True
    return len(set(keys)) == len(keys)


# ---- the body's shape (Plausible's JSON schema) --------------------------------------------------


def site_id_of(body: Any) -> str:
    """The `site_id` a body names (the route resolves the site before parsing the rest)."""
    if not isinstance(body, dict):
        raise BadRequest(_mismatch("#", "Object", body))
    if "site_id" not in body:
        raise BadRequest("#: Required property site_id was not present.")
    site_id = body["site_id"]
    if not isinstance(site_id, str):
        raise BadRequest(_mismatch("#/site_id", "String", site_id))
    return site_id


def _schema_errors(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return [_mismatch("#", "Object", body)]
    errors = []
    missing = [name for name in ("site_id", "metrics", "date_range") if name not in body]
    if len(missing) == 1:
        errors.append(f"#: Required property {missing[0]} was not present.")
    elif missing:
        errors.append(f"#: Required properties {', '.join(missing)} were not present.")
    for key in body:
        if key not in FIELDS:
            errors.append(f"#/{str(key)[:100]}: Schema does not allow additional properties.")
    if "site_id" in body and not isinstance(body["site_id"], str):
        errors.append(_mismatch("#/site_id", "String", body["site_id"]))
    checks: dict[str, Callable[[Any], list[str]]] = {
        "metrics": _metrics_errors,
        "date_range": _date_range_errors,
        "dimensions": _dimensions_errors,
        "filters": _filters_errors,
        "order_by": _order_by_errors,
        "include": _include_errors,
        "pagination": _pagination_errors,
    }
    for name, check in checks.items():
        if name in body:
            errors += check(body[name])
    return errors


def _list_errors(path: str, value: Any, *, min_items: int = 0, unique: bool = False) -> list[str]:
    if not isinstance(value, list):
        return [_mismatch(path, "Array", value)]
    if len(value) < min_items:
        return [f"{path}: Expected a minimum of {min_items} items but got {len(value)}."]
    if unique and not _unique(value):
        return [f"{path}: Expected items to be unique but they were not."]
    return []


def _metrics_errors(metrics: Any) -> list[str]:
    errors = _list_errors("#/metrics", metrics, min_items=1, unique=True)
    if isinstance(metrics, list):
        errors += [
            f"#/metrics/{i}: Invalid metric {inspect(m)}"
            for i, m in enumerate(metrics[:100])
            if m not in METRICS
        ]
    return errors


def _date_range_errors(value: Any) -> list[str]:
    if isinstance(value, str) and (value in RELATIVE_RANGES or RELATIVE_RE.fullmatch(value)):
        return []
    pair = isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)
    if pair and any(all(form.fullmatch(v) for v in value) for form in (DATE_RE, DATETIME_RE)):
        return []
    return [f"#/date_range: Invalid date range {inspect(value)}"]


def _known_dimension(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    if name.startswith(PROPS):
        return _prop_key_ok(name)
    return name in SIMPLE_DIMENSIONS or name == GOAL or name in TIME_DIMENSIONS


def _prop_key_ok(dimension: str) -> bool:
    """A prop key ingest could have stored (1 to 300 bytes): a longer one names nothing, and
    would make a counter key past DynamoDB's 2,048 bytes."""
    return 0 < len(dimension.removeprefix(PROPS).encode()) <= MAX_PROP_KEY_BYTES


def _dimensions_errors(dimensions: Any) -> list[str]:
    errors = _list_errors("#/dimensions", dimensions, unique=True)
    if isinstance(dimensions, list):
        errors += [
            f"#/dimensions/{i}: Invalid dimension {inspect(d)}"
            for i, d in enumerate(dimensions[:100])
            if not _known_dimension(d)
        ]
    return errors


def _order_by_errors(order_by: Any) -> list[str]:
    errors = _list_errors("#/order_by", order_by)
    if errors:
        return errors
    for i, entry in enumerate(order_by[:100]):
        path = f"#/order_by/{i}"
        if not isinstance(entry, list):
            errors.append(_mismatch(path, "Array", entry))
        elif len(entry) != 2:
            size = "minimum" if len(entry) < 2 else "maximum"
            errors.append(f"{path}: Expected a {size} of 2 items but got {len(entry)}.")
        else:
            if entry[0] not in METRICS and not _known_dimension(entry[0]):
                errors.append(f"{path}/0: Invalid value in order_by {inspect(entry[0])}")
            if entry[1] not in ("asc", "desc"):
                errors.append(f"{path}/1: Value is not allowed in enum.")
    return errors


def _include_errors(include: Any) -> list[str]:
    if not isinstance(include, dict):
        return [_mismatch("#/include", "Object", include)]
    errors = []
    for key, value in include.items():
        if key not in INCLUDE_KEYS:
            errors.append(
                f"#/include/{str(key)[:100]}: Schema does not allow additional properties."
            )
        elif not isinstance(value, bool):
            errors.append(_mismatch(f"#/include/{key}", "Boolean", value))
    return errors


def _pagination_errors(pagination: Any) -> list[str]:
    if not isinstance(pagination, dict):
        return [_mismatch("#/pagination", "Object", pagination)]
    bounds = {"limit": (1, MAX_LIMIT), "offset": (0, MAX_OFFSET)}
    errors = []
    for key, value in pagination.items():
        path = f"#/pagination/{str(key)[:100]}"
        if key not in bounds:
            errors.append(f"{path}: Schema does not allow additional properties.")
        elif not isinstance(value, int) or isinstance(value, bool):
            errors.append(_mismatch(path, "Integer", value))
        elif value < bounds[key][0]:
            errors.append(f"{path}: Expected the value to be >= {bounds[key][0]}")
        elif value > bounds[key][1]:
            errors.append(f"{path}: Expected the value to be <= {bounds[key][1]}")
    return errors


def _filters_errors(filters: Any) -> list[str]:
    errors = _list_errors("#/filters", filters)
    if errors:
        return errors
    budget = _Budget()
    return [
        f"#/filters/{i}: Invalid filter {inspect(f)}"
        for i, f in enumerate(filters)
        if not _tree_shape_ok(f, 0, budget)
    ]


class _Budget:
    """Counts a filter list's nodes as they are walked: a body may not hold more than
    MAX_FILTER_NODES of them."""

    def __init__(self) -> None:
        self.nodes = 0

    def take(self) -> None:
        self.nodes += 1
        if self.nodes > MAX_FILTER_NODES:
            raise BadRequest(
                f"Invalid filters. A query may hold at most {MAX_FILTER_NODES} filters and "
                "operators in all."
            )


def _tree_shape_ok(node: Any, depth: int, budget: _Budget) -> bool:
    if depth > MAX_FILTER_DEPTH:
        raise BadRequest(f"Invalid filters. Filters may be nested at most {MAX_FILTER_DEPTH} deep.")
    budget.take()
    if not isinstance(node, list) or not node or not isinstance(node[0], str):
        return False
    op = node[0]
    if op in ("and", "or"):
        children = node[1] if len(node) == 2 else None
        return (
            isinstance(children, list)
            and bool(children)
            and all(_tree_shape_ok(c, depth + 1, budget) for c in children)
        )
    if op in ("not", "has_done", "has_not_done"):
        return len(node) == 2 and _tree_shape_ok(node[1], depth + 1, budget)
    return op in CONDITION_OPERATORS and _leaf_shape_ok(node)


def _leaf_shape_ok(node: list[Any]) -> bool:
    if len(node) not in (3, 4):
        return False
    op, dimension, clauses = node[0], node[1], node[2]
    if not _filter_dimension_ok(op, dimension) or not isinstance(clauses, list):
        return False
    if not all(isinstance(c, str | int) and not isinstance(c, bool) for c in clauses):
        return False
    if len(node) == 3:
        return True
    modifiers = node[3]
    return (
        op in CASE_OPERATORS
        and isinstance(modifiers, dict)
        and all(k == "case_sensitive" and isinstance(v, bool) for k, v in modifiers.items())
    )


def _filter_dimension_ok(op: str, dimension: Any) -> bool:
    if not isinstance(dimension, str):
        return False
    if dimension == GOAL:
        return op in (IS, CONTAINS)
    if dimension == SEGMENT:
        return op == IS
    if dimension.startswith(PROPS):
        return _prop_key_ok(dimension)
    return dimension in SIMPLE_DIMENSIONS


# ---- filters: meaning --------------------------------------------------------------------------


@dataclass(frozen=True)
class _SegmentRef:
    """`["is", "segment", [ids]]` until the saved segments are read (ids are integers, as
    Plausible's; `segments` is asked with their decimal strings)."""

    ids: tuple[str, ...]


_Parsed = FilterTree | _SegmentRef


def parse_filters(raw: Any, site: Site) -> tuple[FilterTree, ...]:
    """A saved segment's `filters` (no segment inside) → its filter trees, refused in the words a
    query with them would be refused (shape, values, behavioural filters, goals, top-level-only
    dimensions)."""
    errors = _filters_errors(raw)
    if errors:
        raise BadRequest("\n".join(errors))
    parsed = tuple(_parse_tree(f) for f in raw)
    if any(True for _ in _segment_refs(parsed)):
        raise BadRequest("A segment's filters cannot use another segment.")
    filters = _resolve_segments(parsed, lambda _: None)
    _check_toplevel_only(filters)
    _check_behavioural(filters)
    _check_goals(filters, site)
    return filters


def _parse_tree(node: list[Any]) -> _Parsed:
    op = node[0]
    if op in ("and", "or"):
        return Junction(op, tuple(_parse_tree(c) for c in node[1]))  # type: ignore[misc]
    if op == "not":
        return Negation(_parse_tree(node[1]))  # type: ignore[arg-type]
    if op in ("has_done", "has_not_done"):
        return Behaviour(op == "has_done", _parse_tree(node[1]))  # type: ignore[arg-type]
    return _parse_condition(node)


def _parse_condition(node: list[Any]) -> _Parsed:
    op, dimension, clauses = node[0], node[1], node[2]
    if dimension == SEGMENT:
        if clauses and all(isinstance(c, int) for c in clauses):
            return _SegmentRef(tuple(str(c) for c in clauses))
        raise BadRequest(f"Invalid filter '{inspect(node)}'.")
    if not all(isinstance(c, str) for c in clauses):
        raise BadRequest(f"Invalid filter '{inspect(node)}'.")
    if dimension == "visit:country" and op in (IS, IS_NOT) and any(len(c) != 2 for c in clauses):
        raise BadRequest(
            "Invalid visit:country filter, visit:country needs to be a valid 2-letter country code."
        )
    if dimension in NOT_STORED:
        raise BadRequest(
            f"Invalid filters. Filtering by `{dimension}` is not supported yet: this server does "
            "not store it."
        )
    _check_clause_sizes(op, clauses)
    case_sensitive = node[3].get("case_sensitive", True) if len(node) == 4 else True
    return Condition(op, dimension, tuple(clauses), case_sensitive)


def _check_clause_sizes(op: str, clauses: list[str]) -> None:
    if len(clauses) > MAX_CLAUSES:
        raise BadRequest(f"Invalid filters. A filter may list at most {MAX_CLAUSES:,} values.")
    longest = max((len(c) for c in clauses), default=0)
    if op in (MATCHES, MATCHES_NOT) and longest > MAX_PATTERN_LENGTH:
        raise BadRequest(
            f"Invalid filters. A `{op}` pattern may be at most {MAX_PATTERN_LENGTH:,} characters "
            "long."
        )
    if longest > MAX_VALUE_LENGTH:
        raise BadRequest(
            f"Invalid filters. A filter value may be at most {MAX_VALUE_LENGTH:,} characters long."
        )


def _segment_refs(trees: Sequence[Any]) -> Iterator[_SegmentRef]:
    stack = list(trees)
    while stack:
        node = stack.pop()
        if isinstance(node, _SegmentRef):
            yield node
        elif isinstance(node, Junction):
            stack.extend(node.children)
        elif isinstance(node, Negation | Behaviour):
            stack.append(node.child)


def _resolve_segments(trees: tuple[_Parsed, ...], segments: Segments) -> tuple[FilterTree, ...]:
    """Each `["is", "segment", [ids]]` becomes its segments' filters, as Plausible resolves them:
    one segment at the top level joins the top-level filters, elsewhere it is their `and`;
    several ids are the `or` of each one's `and`."""
    ids = [i for ref in _segment_refs(trees) for i in ref.ids]
    if len(ids) > MAX_SEGMENTS:
        raise BadRequest(
            f"Invalid filters. You can only use up to {MAX_SEGMENTS} segment filters in a query."
        )
    if not ids:
        return trees  # type: ignore[return-value]
    found = {i: segments(i) for i in dict.fromkeys(ids)}
    if any(f is None for f in found.values()):
        raise BadRequest("Invalid filters. Some segments don't exist or aren't accessible.")
    filters = {i: f for i, f in found.items() if f is not None}
    out: list[FilterTree] = []
    for tree in trees:
        if isinstance(tree, _SegmentRef) and len(tree.ids) == 1:
            out.extend(filters[tree.ids[0]])
        else:
            out.append(_replace_refs(tree, filters))
    return tuple(out)


def _replace_refs(node: _Parsed, filters: dict[str, tuple[FilterTree, ...]]) -> FilterTree:
    if isinstance(node, _SegmentRef):
        joined = [_and(filters[i]) for i in node.ids]
        return joined[0] if len(joined) == 1 else Junction("or", tuple(joined))
    if isinstance(node, Junction):
        return Junction(node.op, tuple(_replace_refs(c, filters) for c in node.children))
    if isinstance(node, Negation):
        return Negation(_replace_refs(node.child, filters))
    if isinstance(node, Behaviour):
        return Behaviour(node.done, _replace_refs(node.child, filters))
    return node


def _and(trees: tuple[FilterTree, ...]) -> FilterTree:
    return trees[0] if len(trees) == 1 else Junction("and", trees)


def conditions(
    trees: Sequence[FilterTree], *, behavioural: bool = True
) -> Iterator[tuple[Condition, int, int]]:
    """Each condition of a filter list in order, with its depth (0: a top-level filter; each
    `and`, `or`, `not`, `has_done` adds one) and how many behavioural filters hold it
    (`behavioural=False`: skip what they hold, as Plausible's checks do)."""
    stack: list[tuple[FilterTree, int, int]] = [(t, 0, 0) for t in reversed(trees)]
    while stack:
        node, depth, inside = stack.pop()
        if isinstance(node, Condition):
            yield node, depth, inside
        elif isinstance(node, Junction):
            stack.extend((c, depth + 1, inside) for c in reversed(node.children))
        elif isinstance(node, Negation):
            stack.append((node.child, depth + 1, inside))
        elif behavioural:
            stack.append((node.child, depth + 1, inside + 1))


def _filtering_on(trees: Sequence[FilterTree], dimension: str) -> bool:
    return any(c.dimension == dimension for c, _, _ in conditions(trees, behavioural=False))


# ---- date ranges -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Span:
    first: date
    last: date
    start_ms: int
    end_ms: int


def _day_start_ms(day: date, zone: ZoneInfo) -> int:
    """The first instant of a local day (fold 0: after a DST gap, the gap's end)."""
    return int(datetime.combine(day, time(), zone).timestamp() * 1000)


def _local_date(ms: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(ms / 1000, zone).date()


def _month_start(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month + 1, 1)


def _date_range(raw: Any, site: Site, now: datetime) -> _Span:
    zone = ZoneInfo(site.tz)
    if isinstance(raw, list):
        return _explicit_range(raw, zone)
    if raw == "24h":
        end_ms = int(now.timestamp()) * 1000 + 1000  # Plausible's last second: now, inclusive
        return _instants(end_ms - 86_400_000 - 1000, end_ms, zone)
    first, last = _relative_days(raw, site, today_in(site.tz, now), zone)
    return _days(first, last, zone, raw)


def _relative_days(raw: str, site: Site, today: date, zone: ZoneInfo) -> tuple[date, date]:
    if raw == "day":
        return today, today
    if raw == "month":
        return today.replace(day=1), last_of_month(today)
    if raw == "year":
        return date(today.year, 1, 1), date(today.year, 12, 31)
    if raw == "all":
        return _stats_start(site, today, zone), today
    match = RELATIVE_RE.fullmatch(raw)
    assert match  # the shape check let nothing else through
    n, unit = int(match[1]), match[2]
    if not 0 < n <= (MAX_DAYS_BACK if unit == "d" else MAX_MONTHS_BACK):
        raise BadRequest(f"Invalid date_range {inspect(raw)}")
    if unit == "d":
        return today - timedelta(days=n), today - timedelta(days=1)
    return _month_start(today, -n), last_of_month(_month_start(today, -1))


def _stats_start(site: Site, today: date, zone: ZoneInfo) -> date:
    """`all` starts on the site's first day (its creation, local), or where its retention begins
    if that is later (the archive holds nothing before it); never after today."""
    kept_from = _month_start(today, -site.retention_months)
    if site.created_at <= 0:
        return kept_from
    created = datetime.fromtimestamp(site.created_at, UTC).astimezone(zone).date()
    return min(max(created, kept_from), today)


def _explicit_range(raw: list[str], zone: ZoneInfo) -> _Span:
    if DATE_RE.fullmatch(raw[0]):
        try:
            first, last = date.fromisoformat(raw[0]), date.fromisoformat(raw[1])
        except ValueError:
            raise BadRequest(f"Invalid date_range '{inspect(raw)}'.") from None
        return _days(first, last, zone, raw)
    try:
        start, end = datetime.fromisoformat(raw[0]), datetime.fromisoformat(raw[1])
    except ValueError:
        raise BadRequest(f"Invalid date_range '{inspect(raw)}'.") from None
    if start.tzinfo is None or end.tzinfo is None:
        raise BadRequest(f"Invalid date_range '{inspect(raw)}'.")
    # Plausible keeps whole seconds, the last one included
    start_ms, end_ms = int(start.timestamp()) * 1000, int(end.timestamp()) * 1000 + 1000
    if end_ms <= start_ms:
        raise BadRequest(f"Invalid date_range '{inspect(raw)}': it ends before it starts.")
    return _instants(start_ms, end_ms, zone, raw)


def _instants(start_ms: int, end_ms: int, zone: ZoneInfo, raw: Any = "24h") -> _Span:
    first, last = _local_date(start_ms, zone), _local_date(end_ms - 1000, zone)
    _check_days(first, last, raw)
    return _Span(first, last, start_ms, end_ms)


def _days(first: date, last: date, zone: ZoneInfo, raw: Any) -> _Span:
    _check_days(first, last, raw)
    return _Span(first, last, _day_start_ms(first, zone), _day_start_ms(last + timedelta(1), zone))


def _check_days(first: date, last: date, raw: Any) -> None:
    where = f"Invalid date_range '{inspect(raw)}'"
    if last < first:
        raise BadRequest(f"{where}: it ends before it starts.")
    if first < FIRST_DAY or last > LAST_DAY:
        raise BadRequest(f"{where}: days must lie between {FIRST_DAY} and {LAST_DAY}.")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise BadRequest(f"{where}: a range may span at most {MAX_RANGE_DAYS:,} days.")


def _iso(ms: int, tz: str) -> str:
    text = datetime.fromtimestamp(ms / 1000, ZoneInfo(tz)).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z") if tz == "Etc/UTC" else text  # as Elixir prints them


def resolve_time(start_ms: int, end_ms: int) -> str:
    """The granularity Plausible gives `time` for a range: hours up to 48 hours, days up to 40
    days, weeks up to 52 weeks, months beyond (whole units between the first and last second)."""
    seconds = (end_ms - start_ms) // 1000 - 1
    if seconds // 3600 <= 48:
        return "hour"
    if seconds // 86_400 <= 40:
        return "day"
    if seconds // (7 * 86_400) <= 52:
        return "week"
    return "month"


# ---- the query ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Asked:
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...]
    filters: tuple[FilterTree, ...]
    order_by: tuple[tuple[str, str], ...] | None
    include: Include


def parse_query(body: Any, site: Site, now: datetime, segments: Segments) -> V2Query:
    """A request body → the question it asks of `site` at `now`. `segments(id)` gives a saved
    segment's filters (None: no such segment for this site)."""
    errors = _schema_errors(body)
    if errors:
        raise BadRequest("\n".join(errors))
    span = _date_range(body["date_range"], site, now)
    parsed = tuple(_parse_tree(f) for f in body.get("filters") or [])
    asked = _Asked(
        metrics=tuple(body["metrics"]),
        dimensions=tuple(body.get("dimensions") or ()),
        filters=_resolve_segments(parsed, segments),
        order_by=tuple((e[0], e[1]) for e in body["order_by"]) if "order_by" in body else None,
        include=Include(**body.get("include", {})),
    )
    _check_dimensions(asked.dimensions)
    _validate(asked, site)
    time_dimension = _time_dimension(asked.dimensions, span)
    resolved = "time:" + time_dimension

    def named(name: str) -> str:
        return resolved if name == "time" else name

    pagination = body.get("pagination") or {}
    return V2Query(
        site=site,
        metrics=asked.metrics,
        first=span.first,
        last=span.last,
        start_ms=span.start_ms,
        end_ms=span.end_ms,
        dimensions=tuple(named(d) for d in asked.dimensions),
        filters=asked.filters,
        order_by=tuple((named(k), d) for k, d in _order(asked, time_dimension)),
        limit=pagination.get("limit", MAX_LIMIT),
        offset=pagination.get("offset", 0),
        include=asked.include,
        time_dimension=time_dimension,
        date_range_echo=(_iso(span.start_ms, site.tz), _iso(span.end_ms - 1000, site.tz)),
        now=now,
    )


def _check_dimensions(dimensions: tuple[str, ...]) -> None:
    """Ours, beyond Plausible's schema: what the archive cannot group by."""
    for name in dimensions:
        if name in NOT_STORED:
            raise BadRequest(
                f"Invalid dimensions. The dimension `{name}` is not supported yet: this server "
                "does not store it."
            )
    if len(dimensions) > MAX_DIMENSIONS:
        raise BadRequest(f"Invalid dimensions. A query may have at most {MAX_DIMENSIONS}.")
    if sum(d in TIME_DIMENSIONS for d in dimensions) > 1:
        raise BadRequest(
            "Invalid dimensions. A query may have one time dimension at most (`time`, "
            "`time:hour`, `time:day`, `time:week` or `time:month`)."
        )


def _time_dimension(dimensions: tuple[str, ...], span: _Span) -> str:
    asked = next((d for d in dimensions if d in TIME_DIMENSIONS), None)
    if asked is None:
        return ""
    if asked == "time":
        return resolve_time(span.start_ms, span.end_ms)
    return TIME_GRANULARITIES[asked]


def _order(asked: _Asked, time_dimension: str) -> tuple[tuple[str, str], ...]:
    """The order asked, or Plausible's default: the time dimension ascending, if any, then the
    first metric descending."""
    if asked.order_by is not None:
        return asked.order_by
    first = ((asked.metrics[0], "desc"),)
    time_name = next((d for d in asked.dimensions if d in TIME_DIMENSIONS), None)
    return ((time_name, "asc"), *first) if time_name and time_dimension else first


# ---- Plausible's checks, in its order --------------------------------------------------------


def _validate(asked: _Asked, site: Site) -> None:
    _check_order_by(asked)
    if len(asked.order_by or ()) > MAX_ORDER_BY:
        raise BadRequest(f"Invalid order_by. A query may order by at most {MAX_ORDER_BY} entries.")
    _check_toplevel_only(asked.filters)
    _check_special_metric_filters(asked)
    _check_behavioural(asked.filters)
    _check_goals(asked.filters, site)
    for metric in asked.metrics:
        error = _metric_error(metric, asked)
        if error:
            raise BadRequest(error)
    _check_tables(asked)
    if asked.include.time_labels and not any(d in TIME_DIMENSIONS for d in asked.dimensions):
        raise BadRequest("Invalid include.time_labels: requires a time dimension.")


def _check_order_by(asked: _Asked) -> None:
    for key, direction in asked.order_by or ():
        if key not in asked.metrics and key not in asked.dimensions:
            # Plausible prints the entry as an Elixir tuple: metrics are atoms, dimensions strings
            name = f":{key}" if key in METRICS else inspect(key)
            raise BadRequest(
                f"Invalid order_by entry '{{{name}, :{direction}}}'. Entry is not a queried "
                "metric or dimension."
            )


def _check_toplevel_only(filters: tuple[FilterTree, ...]) -> None:
    for condition, depth, _ in conditions(filters, behavioural=False):
        if depth > 0 and condition.dimension in (GOAL, "event:hostname"):
            raise BadRequest(
                f"Invalid filters. Dimension `{condition.dimension}` can only be filtered at the "
                "top level."
            )


def _check_special_metric_filters(asked: _Asked) -> None:
    if not {"conversion_rate", "group_conversion_rate"} & set(asked.metrics):
        return
    if any(c.dimension.startswith(PROPS) and d > 0 for c, d, _ in conditions(asked.filters)):
        raise BadRequest(
            "Invalid filters. When `conversion_rate` or `group_conversion_rate` metrics are "
            "used, custom property filters can only be used on top level."
        )


def _check_behavioural(filters: tuple[FilterTree, ...]) -> None:
    for condition, _, inside in conditions(filters):
        if inside > 1:
            raise BadRequest(
                "Invalid filters. Behavioral filters (has_done, has_not_done) cannot be nested."
            )
        if inside and not condition.dimension.startswith("event:"):
            raise BadRequest(
                "Invalid filters. Behavioral filters (has_done, has_not_done) can only be used "
                "with event dimension filters."
            )


def _check_goals(filters: tuple[FilterTree, ...], site: Site) -> None:
    """`is` goal filters name configured goals (`contains` may match none, as in Plausible;
    case-insensitive ones are not checked either)."""
    for condition, _, _ in conditions(filters):
        if condition.dimension != GOAL or condition.op != IS or not condition.case_sensitive:
            continue
        for goal in condition.values:
            if not goal_configured(site, goal):
                raise BadRequest(
                    f"Invalid filters. The goal `{goal}` is not configured for this site. Find "
                    f"out how to configure goals here: {GOALS_DOCS}"
                )


def _metric_error(metric: str, asked: _Asked) -> str | None:
    page = "event:page" in asked.dimensions
    if metric in ("conversion_rate", "group_conversion_rate"):
        if GOAL in asked.dimensions or _filtering_on(asked.filters, GOAL):
            return None
        return f"Metric `{metric}` can only be queried with event:goal filters or dimensions."
    if metric == "scroll_depth":
        toplevel = any(
            isinstance(f, Condition) and f.dimension == "event:page" for f in asked.filters
        )
        return None if page or toplevel else _needs_page(metric)
    if metric == "time_on_page":
        return None if page or _filtering_on(asked.filters, "event:page") else _needs_page(metric)
    if metric == "views_per_visit":
        if _filtering_on(asked.filters, "event:page"):
            return f"Metric `{metric}` cannot be queried with a filter on `event:page`."
        if asked.dimensions:
            return f"Metric `{metric}` cannot be queried with `dimensions`."
    return None


def _needs_page(metric: str) -> str:
    return f"Metric `{metric}` can only be queried with event:page filters or dimensions."


def _check_tables(asked: _Asked) -> None:
    """Plausible's TableDecider: metrics and dimensions of one query must fit one table."""
    session_metrics = [m for m in asked.metrics if m in SESSION_ONLY_METRICS]
    event_metrics = [m for m in asked.metrics if m in EVENT_ONLY_METRICS]
    event_dimensions = [d for d in asked.dimensions if d.startswith("event:")]
    session_dimensions = [d for d in asked.dimensions if d in SESSION_ONLY_DIMENSIONS]
    if event_dimensions == ["event:page"]:
        return  # session metrics by the visit's entry page
    if session_metrics and event_dimensions:
        raise BadRequest(
            f"Session metric(s) {_ticked(session_metrics)} cannot be queried along with event "
            f"dimension(s) {_ticked(event_dimensions)}"
        )
    if event_metrics and session_dimensions:
        raise BadRequest(
            f"Event metric(s) {_ticked(event_metrics)} cannot be queried along with session "
            f"dimension(s) {_ticked(session_dimensions)}"
        )


def _ticked(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)
