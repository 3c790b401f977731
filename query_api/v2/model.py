"""A v2 question once parsed and validated: what parse.py produces and both engines read.

Dimensions and filter dimensions are spelled as the API spells them (`event:page`,
`visit:source`, `event:props:plan`, `time:day`); the engines map them to columns or counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from core.sites import Site

# filter operators on one dimension
IS, IS_NOT, CONTAINS, CONTAINS_NOT, MATCHES, MATCHES_NOT = (
    "is",
    "is_not",
    "contains",
    "contains_not",
    "matches",
    "matches_not",
)
CONDITION_OPERATORS = (IS, IS_NOT, CONTAINS, CONTAINS_NOT, MATCHES, MATCHES_NOT)
NEGATED_OPERATORS = (IS_NOT, CONTAINS_NOT, MATCHES_NOT)

TIME_DIMENSIONS = ("time", "time:hour", "time:day", "time:week", "time:month")


@dataclass(frozen=True)
class Condition:
    """`[op, dimension, [values], {"case_sensitive": ...}]`: an event or visit passes when its
    value of `dimension` passes (`is`: equals one of the values; `contains`: holds one as a
    substring; `matches`: one RE2 pattern finds a match, unanchored, as Plausible's ClickHouse
    `match`). The `_not` forms pass exactly when the plain form does not. Missing values ('')
    never pass a plain form."""

    op: str
    dimension: str
    values: tuple[str, ...]
    case_sensitive: bool = True

    @property
    def negated(self) -> bool:
        return self.op in NEGATED_OPERATORS


@dataclass(frozen=True)
class Junction:
    """`["and", [...]]` / `["or", [...]]`."""

    op: str  # "and" | "or"
    children: tuple[FilterTree, ...]


@dataclass(frozen=True)
class Negation:
    """`["not", filter]`."""

    child: FilterTree


@dataclass(frozen=True)
class Behaviour:
    """`["has_done", filter]` / `["has_not_done", filter]`: the visit (has_done) holds, or does
    not hold, an event passing `child` (event dimensions only)."""

    done: bool
    child: FilterTree


FilterTree = Condition | Junction | Negation | Behaviour


@dataclass(frozen=True)
class Include:
    total_rows: bool = False
    time_labels: bool = False
    imports: bool = False


@dataclass(frozen=True)
class V2Query:
    """A validated question. `first`..`last` are the site-local days the range touches;
    `start_ms`..`end_ms` (UTC epoch ms, end exclusive) the exact instants it covers (a day range:
    from the first day's local midnight to the one after the last day; `24h` and ISO datetimes:
    exactly those instants). `filters` are joined by AND; segments are already resolved into
    their filters. `time_dimension` is the resolved granularity of `time` (hour, day, week,
    month) when a time dimension is asked, else ''. `order_by` is the normalised order (the
    default included), pairs of (metric or dimension, "asc" | "desc")."""

    site: Site
    metrics: tuple[str, ...]
    first: date
    last: date
    start_ms: int
    end_ms: int
    dimensions: tuple[str, ...] = ()
    filters: tuple[FilterTree, ...] = ()
    order_by: tuple[tuple[str, str], ...] = ()
    limit: int = 10_000
    offset: int = 0
    include: Include = field(default_factory=Include)
    time_dimension: str = ""
    # the request's date range as given, and as Plausible echoes it (ISO datetimes)
    date_range_echo: tuple[str, str] = ("", "")
    now: datetime | None = None


@dataclass(frozen=True)
class Row:
    """One result row: dimension values in the order asked (time labels as Plausible's:
    `2026-01-05`, `2026-01-05 13:00:00`), metric values in the order asked."""

    dimensions: tuple[str, ...]
    metrics: tuple[float | int | None, ...]


@dataclass(frozen=True)
class Result:
    """The page of rows asked (ordering and pagination applied) and how many rows there are in
    all (before pagination)."""

    rows: tuple[Row, ...]
    total_rows: int
