"""v2 questions (query_api/v2/model.py) answered from the archive's Parquet files with DuckDB:
any dimensions crossed, any filter tree, every v2 metric, ordering and pagination.

It shares the v1 archive engine's pieces (query_api/archive_engine.py, decision 0028): the
files' facts (time zones, previous visitor ids, copies, visitor keys), the visitor attribution,
UTC offsets as `CASE` pieces, the counters' units, one sort with streaming windows for visits.
Speed (decision 0033, "After the engine work"): only the columns read travel through the sort;
the top-level filters a visit's first event decides drop failing visits' events in the pass
that numbers visits; a tree without event conditions is tested once a visit; a big question
nothing narrows runs in parts by visitor key. `shortcuts=False` is the general path.
Definitions (docs: the v2 module docstrings, docs/metrics.md):

- an event row carries its visit's values; a condition on a `visit:` dimension tests the visit's
  value (its first counted event's, entry/exit page its first/last pageview's page), on an
  `event:` dimension the event's own; a missing value ('' or none) never passes a plain form and
  always passes a negated one (Plausible's `is_not` on a prop the event lacks); `(none)` among
  a prop's `is`/`is_not` values stands for the missing key, as Plausible's;
- `has_done(f)`: the visit holds a counted event passing `f`;
- event metrics count the counted events passing the whole tree, where they happen; visit
  metrics the visits holding one (any of their events, in the range or not), where they start;
  with `event:page` as a dimension a visit's row is its entry page (as v1); with another event
  dimension, each value among its passing events;
- visitors: distinct (visitor, unit) pairs summed over the units of a row (v1's `units_of`: whole
  months of the range as months, other days, or hours for `time:hour`); counted where visits
  start when only visit dimensions are filtered or asked, else where the events happen;
- time labels: `time:day` the local day, `time:hour` `YYYY-MM-DD HH:00:00` local, `time:week`
  the Monday (the range's first day when later, Plausible's `weekstart_not_before`),
  `time:month` the month's first day;
- conversion_rate: row visitors / visitors with the top-level goal and prop filters removed and
  no dimensions; group_conversion_rate: row visitors / visitors of the row's other dimensions
  (all but event:goal) with those filters removed; percentage: row visitors / visitors with the
  same filters and no dimensions (Plausible's special_metrics).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from archive.parquet import memory_limit_mb
from core.sites import PAGEVIEW_GOAL_PREFIX, Site
from core.vocabulary import SESSION_DIMENSIONS
from query_api.archive_engine import (
    DAY_MS,
    GAP_MS,
    HOUR_MS,
    ArchiveEngine,
    Source,
    Zones,
    _Params,
    _zone,
    attribution_ctes,
    event_columns,
    units_of,
)
from query_api.errors import BadRequest
from query_api.metrics import compute
from query_api.parse import DateRange
from query_api.v2.model import (
    CONTAINS,
    CONTAINS_NOT,
    IS,
    IS_NOT,
    MATCHES,
    MATCHES_NOT,
    Behaviour,
    Condition,
    FilterTree,
    Junction,
    Negation,
    Result,
    Row,
    V2Query,
)

NONE = "(none)"  # a prop's `is` value standing for the key's absence (Plausible)
EPOCH = date(1970, 1, 1)
SESSION_METRICS = ("visits", "bounce_rate", "visit_duration", "views_per_visit")
RATE_METRICS = ("conversion_rate", "group_conversion_rate", "percentage")
Cell = dict[str, int]
# file rows a part may hold per MB of DuckDB's memory (see V2ArchiveEngine._buckets): 22.8 M rows
# (10 M pageviews a month) and 1,228 MB -> 3 parts
ROWS_PER_SORT_MB = 7_000


# ---- the question's shape ------------------------------------------------------------------


def is_visit_dim(dimension: str) -> bool:
    return dimension.startswith("visit:")


def is_time_dim(dimension: str) -> bool:
    return dimension == "time" or dimension.startswith("time:")


def _nodes(tree: FilterTree, inside: bool = False) -> Iterable[tuple[FilterTree, bool]]:
    """Every node and whether it lies under a Behaviour."""
    yield tree, inside
    if isinstance(tree, Junction):
        for child in tree.children:
            yield from _nodes(child, inside)
    elif isinstance(tree, Negation):
        yield from _nodes(tree.child, inside)
    elif isinstance(tree, Behaviour):
        yield from _nodes(tree.child, True)


def conditions(filters: Iterable[FilterTree]) -> list[tuple[Condition, bool]]:
    return [(n, b) for f in filters for n, b in _nodes(f) if isinstance(n, Condition)]


def top_level(filters: Iterable[FilterTree]) -> list[FilterTree]:
    """The filters every answer must pass: the list, with `and` junctions opened."""
    out: list[FilterTree] = []
    for f in filters:
        if isinstance(f, Junction) and f.op == "and":
            out += top_level(f.children)
        else:
            out.append(f)
    return out


def without_goal_filters(filters: Iterable[FilterTree]) -> tuple[FilterTree, ...]:
    """The filters with the top-level ones on event:goal and event:props removed (Plausible's
    totals for conversion rates)."""
    return tuple(
        f
        for f in top_level(filters)
        if not (
            isinstance(f, Condition)
            and (f.dimension == "event:goal" or f.dimension.startswith("event:props:"))
        )
    )


def visitors_by_visit(dimensions: Sequence[str], filters: Sequence[FilterTree]) -> bool:
    """Visitors counted where visits start: only visit dimensions asked or filtered (outside
    has_done), as the counters' session dimensions; anything on an event dimension counts them
    where the events happen (v1's rule)."""
    dims = [d for d in dimensions if not is_time_dim(d)]
    conds = [c for c, inside in conditions(filters) if not inside]
    visit = any(is_visit_dim(d) for d in dims) or any(is_visit_dim(c.dimension) for c in conds)
    event = any(not is_visit_dim(d) for d in dims) or any(
        not is_visit_dim(c.dimension) for c in conds
    )
    return visit and not event


def time_grain(query: V2Query) -> str:
    for d in query.dimensions:
        if is_time_dim(d):
            return query.time_dimension or (d.split(":")[1] if ":" in d else "day")
    return ""


@dataclass(frozen=True)
class Plan:
    """One statement's question."""

    dimensions: tuple[str, ...]  # time dimensions left out: `grain` says it
    filters: tuple[FilterTree, ...]
    grain: str  # "", hour, day, week, month
    counters: frozenset[str]
    by_visit: bool


def counters_for(metrics: Iterable[str]) -> frozenset[str]:
    out = {"events"}
    for m in metrics:
        if m in ("visitors", *RATE_METRICS):
            out.add("visitors")
        elif m in ("visits", "views_per_visit", "bounce_rate", "visit_duration"):
            out.add("visits")
        elif m == "pageviews":
            out.add("pageviews")
        elif m == "time_on_page":
            out.add("top")
        elif m == "scroll_depth":
            out.add("sd")
    if "views_per_visit" in metrics:
        out.add("pageviews")
    return frozenset(out)


# ---- SQL -----------------------------------------------------------------------------------

FIRST_EVENT_DIMS = frozenset(SESSION_DIMENSIONS)


class _Statement:
    def __init__(
        self,
        site: Site,
        plan: Plan,
        query: V2Query,
        source: Source,
        zones: Zones,
        heirs: bool,
        shortcuts: bool = True,
        bucket_of: tuple[int, int] = (0, 1),
    ) -> None:
        self.site, self.plan, self.query = site, plan, query
        self.shortcuts = shortcuts
        self.bucket_of = bucket_of  # (i, n): only the visitors whose key is i modulo n
        self.source, self.zones, self.heirs = source, zones, heirs
        self.p = _Params()
        for node, _ in conditions(plan.filters):
            _check_dimension(node.dimension)
        for d in plan.dimensions:
            _check_dimension(d)
        for f in plan.filters:
            for tree_node, inside in _nodes(f):
                if isinstance(tree_node, Behaviour) and inside:
                    raise BadRequest("Invalid filters. Behavioral filters cannot be nested")
        self.behaviours = [
            n for f in plan.filters for n, inside in _nodes(f) if isinstance(n, Behaviour)
        ]
        for b in self.behaviours:
            for c, _ in conditions([b.child]):
                if is_visit_dim(c.dimension):
                    raise BadRequest(
                        "Invalid filters. Behavioral filters (has_done, has_not_done) can only "
                        "be used with event dimension filters."
                    )
        conds = conditions(plan.filters)
        # visit conditions tested on each event's own values before the sort (a visit's value
        # is its first counted event's): one boolean each travels, not the value
        self.first_conds = [
            c
            for c, _ in conds
            if is_visit_dim(c.dimension) and _column(c.dimension) in FIRST_EVENT_DIMS
        ]
        self.visit_dims = [d for d in plan.dimensions if is_visit_dim(d)]
        # a condition on an event dimension outside has_done: the tree is not the visit's alone
        # (without shortcuts every tree is treated so: each event joined to its visit, tested)
        self.event_tree = not shortcuts or any(
            not is_visit_dim(c.dimension) for c, inside in conds if not inside
        )
        self.event_dims = [d for d in plan.dimensions if not is_visit_dim(d)]
        event_cond_dims = {c.dimension for c, _ in conds if not is_visit_dim(c.dimension)}
        names = set(self.event_dims) | event_cond_dims
        need = plan.counters
        self.top, self.sd = "top" in need, "sd" in need
        self.engagement = self.top or self.sd
        self.visits = "visits" in need or plan.by_visit
        self.entry = (
            "visit:entry_page" in self.visit_dims
            or any(c.dimension == "visit:entry_page" for c, _ in conds)
            or (self.visits and "event:page" in self.event_dims)
        )
        self.exit = "visit:exit_page" in self.visit_dims or any(
            c.dimension == "visit:exit_page" for c, _ in conds
        )
        self.uses_page = (
            self.entry
            or self.exit
            or self.engagement
            or any(n in ("event:page", "event:goal") for n in names)
        )
        self.uses_hostname = "event:hostname" in names
        self.uses_props = any(n.startswith("event:props:") for n in names)
        self.uses_name = any(n in ("event:name", "event:goal") for n in names)
        self.uses_interactive = self.visits
        self.carried_dims = sorted(
            {_column(d) for d in self.visit_dims if _column(d) in FIRST_EVENT_DIMS}
        )
        self.keyed = source.keyed and not heirs
        first_day = query.first
        self.first_day = (first_day - EPOCH).days
        self.units = units_of(
            DateRange(query.first, query.last),
            {"hour": "hour", "day": "day", "week": "day"}.get(plan.grain, ""),
        )

    # -- values -------------------------------------------------------------------------------

    def event_value(self, dimension: str, eng: bool = False) -> str:
        """An event's value of an event dimension, NULL when it has none. An engagement event
        has a page, a hostname and props; no name and no goal."""
        if dimension == "event:page":
            return "page" if eng else "CASE WHEN pv THEN page END"
        if dimension == "event:hostname":
            return "NULLIF(hostname, '')"
        if dimension.startswith("event:props:"):
            key = dimension.removeprefix("event:props:")
            return f"props[{self.p(key)}]"
        if eng:
            return "CAST(NULL AS VARCHAR)"
        if dimension == "event:name":
            return "CASE WHEN NOT pv THEN name END"
        if dimension == "event:goal":
            return self._goal_value()
        raise BadRequest(f"Invalid dimension '{dimension}'")

    def _goal_value(self) -> str:
        goals = self.site.goals
        if not goals:
            return "CASE WHEN NOT pv THEN name END"  # every custom event name is a goal
        pages = [g for g in goals if g.startswith(PAGEVIEW_GOAL_PREFIX)]
        names = [g for g in goals if not g.startswith(PAGEVIEW_GOAL_PREFIX)]
        whens = []
        if pages:
            visit = f"{self.p(PAGEVIEW_GOAL_PREFIX)} || page"
            whens.append(
                f"WHEN pv AND {visit} IN ({', '.join(self.p(g) for g in pages)}) THEN {visit}"
            )
        if names:
            whens.append(
                f"WHEN NOT pv AND name IN ({', '.join(self.p(g) for g in names)}) THEN name"
            )
        return f"CASE {' '.join(whens)} END"

    def visit_value(self, dimension: str) -> str:
        """The column of a visit's value on rows joined with `vis`."""
        return f"s_{_column(dimension)}"

    def test(self, c: Condition, expr: str) -> str:
        """A condition on a value expression (NULL: none): a plain form never passes a missing
        value, a negated form always does."""
        values = list(c.values)
        none = c.dimension.startswith("event:props:") and c.op in (IS, IS_NOT) and NONE in values
        if none:
            values = [v for v in values if v != NONE]
        value = expr if c.case_sensitive else f"lower({expr})"

        def lit(v: str) -> str:
            return self.p(v) if c.case_sensitive else f"lower({self.p(v)})"

        tests: list[str] = []
        if c.op in (IS, IS_NOT) and values:
            tests.append(f"{value} IN ({', '.join(lit(v) for v in values)})")
        elif c.op in (CONTAINS, CONTAINS_NOT):
            tests += [f"contains({value}, {lit(v)})" for v in values]
        elif c.op in (MATCHES, MATCHES_NOT):
            flags = "" if c.case_sensitive else ", 'i'"
            tests += [f"regexp_matches({expr}, {self.p(v)}{flags})" for v in values]
        hit = f"coalesce({' OR '.join(tests)}, FALSE)" if tests else "FALSE"
        if none:
            hit = f"({expr} IS NULL OR {hit})"
        return f"(NOT {hit})" if c.negated else f"({hit})"

    def first_test(self, c: Condition) -> str:
        """A visit condition on an event's own value (the visit's is its first event's)."""
        column = _column(c.dimension)
        if c.op == IS and c.case_sensitive and all(c.values):
            # the plain column, which DuckDB pushes into the Parquet scan ('' never passes)
            return f"coalesce({column} IN ({', '.join(self.p(v) for v in c.values)}), FALSE)"
        return self.test(c, f"NULLIF({column}, '')")

    def tree(self, f: FilterTree, scope: str) -> str:
        """A filter on a row: `event` (counted event joined with its visit), `eng` (engagement
        event joined with its visit), `visit` (a visit alone: no event conditions), `first` (a
        visit's first counted event, by its own flags: first-event visit conditions only)."""
        if isinstance(f, Condition):
            if is_visit_dim(f.dimension):
                if f in self.first_conds:
                    flag = "c" if scope == "first" else "vc"
                    return f"{flag}{self.first_conds.index(f)}"
                if scope == "first":
                    raise AssertionError("a visit value on a first event")
                return self.test(f, self.visit_value(f.dimension))
            if scope == "visit":
                raise AssertionError("an event condition on a visit")
            return self.test(f, self.event_value(f.dimension, eng=scope == "eng"))
        if isinstance(f, Junction):
            if not f.children:
                return "TRUE" if f.op == "and" else "FALSE"
            joiner = " AND " if f.op == "and" else " OR "
            return "(" + joiner.join(self.tree(c, scope) for c in f.children) + ")"
        if isinstance(f, Negation):
            return f"(NOT {self.tree(f.child, scope)})"
        index = self.behaviours.index(f)
        return f"h{index}" if f.done else f"(NOT h{index})"

    def where(self, scope: str) -> str:
        return " AND ".join(self.tree(f, scope) for f in self.plan.filters) or "TRUE"

    def _on_first_event(self, f: FilterTree) -> bool:
        """Whether a filter reads only first-event visit values (source, country, ...): a
        visit passes it when its first counted event's own values do."""
        return all(
            isinstance(n, (Junction, Negation))
            or (isinstance(n, Condition) and n in self.first_conds)
            for n, _ in _nodes(f)
        )

    def _visit_gate(self) -> str:
        """The top-level filters a visit's first counted event decides, on that event's flags:
        a visit failing them has no event or visit that counts (each is ANDed with the rest of
        the tree), so its events are dropped before visits are grouped. '' when none."""
        if not self.shortcuts:
            return ""
        gates = [f for f in top_level(self.plan.filters) if self._on_first_event(f)]
        return " AND ".join(self.tree(f, "first") for f in gates)

    # -- units and buckets --------------------------------------------------------------------

    def unit(self, day: str, ts: str, off: str) -> str:
        units = self.units
        if units.hourly:  # the UTC instant a local hour starts: two 02:00s stay two hours
            return f"CAST(floor(({ts} + {off}) / {HOUR_MS}.0) AS BIGINT) * {HOUR_MS} - {off}"
        if not units.months:
            return day
        whens = " ".join(f"WHEN {day} BETWEEN {a} AND {b} THEN {a}" for a, b in units.months)
        return f"CASE {whens} ELSE {day} END"

    def bucket(self, unit: str) -> str:
        """A unit's bucket: the unit (hour, day), the Monday not before the range's first day,
        the month's first day, or 0 (no time dimension)."""
        grain = self.plan.grain
        if grain in ("hour", "day"):
            return unit
        if grain == "week":
            return f"greatest({unit} - ({unit} + 3) % 7, {self.first_day})"
        if grain == "month":
            return (
                f"datediff('day', DATE '1970-01-01', "
                f"date_trunc('month', DATE '1970-01-01' + CAST({unit} AS INTEGER)))"
            )
        return "0"

    def in_range(self, ts: str) -> str:
        return f"{ts} >= {self.query.start_ms} AND {ts} < {self.query.end_ms}"

    # -- the statement ------------------------------------------------------------------------

    def _columns(self) -> list[str]:
        visitor = "visitor_key" if self.keyed else "visitor_id"
        cols = ["event_id", "ts", "name", visitor] if self.source.ids else ["ts", "name", visitor]
        if len(self.zones.pieces) > 1:
            cols.append("tz")
        if self.heirs:
            cols.append("previous_visitor_id")
        cols += sorted({_column(c.dimension) for c in self.first_conds} | set(self.carried_dims))
        return cols + self._event_columns()

    def _event_columns(self) -> list[str]:
        return event_columns(
            self.uses_page, self.uses_hostname, self.uses_props, self.uses_interactive, self.sd
        )

    def _prefilter(self) -> tuple[list[int], list[str]]:
        """What a visitor with a countable visit must have: a counted event passing every
        top-level positive condition on a first-event visit dimension (the visit's first), and
        for each top-level positive event condition (or has_done) an event passing it. Exact:
        the same tests, event by event; none when nothing is positive at the top."""
        first: list[int] = []
        others: list[str] = []
        for f in top_level(self.plan.filters):
            if isinstance(f, Condition) and not f.negated:
                if f in self.first_conds:
                    first.append(self.first_conds.index(f))
                elif not is_visit_dim(f.dimension):
                    counted = self.test(f, self.event_value(f.dimension))
                    if self.engagement:
                        eng = self.test(f, self.event_value(f.dimension, eng=True))
                        others.append(f"CASE WHEN eng THEN {eng} ELSE {counted} END")
                    else:
                        others.append(counted)
            elif isinstance(f, Behaviour) and f.done:
                others.append(f"(NOT eng AND {self.tree(f.child, 'event')})")
        if first:
            flags = " AND ".join(f"c{i}" for i in sorted(set(first)))
            others.insert(0, f"(NOT eng AND {flags})")
        return sorted(set(first)), others

    def build(self) -> str:
        p = self.p
        cols = self._columns()
        tests = [] if self.engagement else ["name <> 'engagement'"]
        index, count = self.bucket_of
        if count > 1:
            tests.append(f"visitor_key % {count} = {index}")
        where = " AND ".join(tests)
        ctes: list[tuple[str, str]] = [("src", self.source.relation(cols, p, where))]
        if self.heirs:
            ctes += attribution_ctes()
            owned = (
                "SELECT src.*, coalesce(attr.owner, src.visitor_id) AS owner "
                "FROM src LEFT JOIN attr ON attr.event_id = src.event_id"
            )
        else:
            visitor = "visitor_key" if self.keyed else "visitor_id"
            owned = f"SELECT src.*, {visitor} AS owner FROM src"
        flags = "".join(f", {self.first_test(c)} AS c{i}" for i, c in enumerate(self.first_conds))
        ctes.append(
            (
                "ev1",
                f"SELECT o.*, {self.zones.sql(p)} AS off, name = 'engagement' AS eng, "
                f"name = 'pageview' AS pv{flags} FROM ({owned}) o",
            )
        )
        ctes.append(("kept", self._kept_sql()))
        ctes += self._sessions()
        ctes.append(("vis", self._visits_sql()))
        if not self.event_tree:
            ctes.append(("vk", f"SELECT * FROM vis WHERE {self.where('visit')}"))
        ctes.append(("tl", self._timeline()))
        ctes.append(("me", self._matched()))
        selects = [self._event_rows()]
        if self.visits:
            ctes.append(("vq", self._qualified_visits()))
            selects.append(self._visit_rows())
        if self.top:
            selects.append(self._top_rows())
        if self.sd:
            ctes.append(("eng_ok", self._engagement()))
            selects.append(self._sd_rows())
        keys = ", ".join(f"k{i}" for i in range(len(self.plan.dimensions)))
        keys_sel = keys + ", " if keys else ""
        union = " UNION ALL ".join(selects)
        with_ = ",\n".join(f"{name} AS {self._hint(name)}({body})" for name, body in ctes)
        return (
            f"WITH {with_}\nSELECT kind, {keys_sel}{self.bucket('unit')} AS bucket, sum(a), "
            f"sum(b), sum(c), sum(e) FROM ({union}) r GROUP BY ALL"
        )

    def _hint(self, name: str) -> str:
        """DuckDB 1.2 inlines a CTE at each use: the sorted events and the visits are computed
        once only when materialized; the matched events too when read more than once."""
        if name in ("ev3s", "vis"):
            return "MATERIALIZED "
        if name == "me" and (self.top or (self.visits and self._visits_from_events())):
            return "MATERIALIZED "
        return ""

    def _carried(self) -> list[str]:
        """The columns that travel through the sort: what the visits, the tree and the rows
        read (v1's `_carried`). A visit's first-event values travel as one flag per condition
        (`c<i>`) and as values only when they are dimensions; a tree's other visit values
        (entry/exit page, has_done) are the visit's, joined after it."""
        cols = ["owner", "ts", "pv"]
        if self.engagement:  # otherwise every row is counted: `eng` is put back as FALSE
            cols.append("eng")
        if not self._constant_offset():
            cols.append("off")
        if self.source.ids:
            cols.append("event_id")
        if self.source.ordered:
            cols.append("frn")
        if self.uses_name:
            cols.append("name")
        cols += [f"c{i}" for i in range(len(self.first_conds))]
        cols += self.carried_dims
        return cols + self._event_columns()

    def _constant_offset(self) -> str:
        return self.zones.constant_offset()

    def _constants(self) -> list[str]:
        """What the sort leaves out because it is the same on every row, put back after it,
        and the local day."""
        out = [] if self.engagement else ["FALSE AS eng"]
        offset = self._constant_offset()
        if offset:
            out.append(f"{offset} AS off")
        return [*out, f"CAST(floor((ts + {offset or 'off'}) / {DAY_MS}.0) AS BIGINT) AS d"]

    def _tree_refs(self) -> list[str]:
        """The visit columns (of `vis`) the filter tree reads."""
        out: list[str] = []
        for f in self.plan.filters:
            for node, _ in _nodes(f):
                if isinstance(node, Condition) and is_visit_dim(node.dimension):
                    if node in self.first_conds:
                        out.append(f"vc{self.first_conds.index(node)}")
                    else:
                        out.append(self.visit_value(node.dimension))
                elif isinstance(node, Behaviour):
                    out.append(f"h{self.behaviours.index(node)}")
        return list(dict.fromkeys(out))

    def _key_refs(self) -> list[str]:
        """The visit columns the row's dimensions read."""
        return list(dict.fromkeys(self.visit_value(d) for d in self.visit_dims))

    def _visits_from_events(self) -> bool:
        """Whether the kept visits are found among the matched events (an event condition, or
        an event dimension other than the page, which gives a visit each of its values)."""
        return self.event_tree or any(d != "event:page" for d in self.event_dims)

    def _matched(self) -> str:
        """The counted events passing the tree, with the visit values the rows read. A tree
        without event conditions is the visit's alone: its events are those of the kept visits
        (`vk`, tested once a visit), joined on the visit number with only the columns the
        dimensions need; otherwise each event joins its visit's values the tree reads."""
        if not self.event_tree:
            refs = self._key_refs()
            if not self.plan.filters and not refs:
                return "SELECT * FROM tl"
            cols = "".join(f", v.{r}" for r in refs)
            return f"SELECT t.*{cols} FROM tl t JOIN vk v ON v.v_sn = t.sn"
        refs = list(dict.fromkeys(self._key_refs() + self._tree_refs()))
        cols = "".join(f", v.{r}" for r in refs)
        return (
            f"SELECT * FROM (SELECT t.*{cols} FROM tl t JOIN vis v ON v.v_sn = t.sn) x "
            f"WHERE {self.where('event')}"
        )

    def _kept_sql(self) -> str:
        """The events of the visitors who can count (see `_prefilter`), with the columns the
        sort carries."""
        carried = ", ".join(self._carried())
        first, needs = self._prefilter()
        if not needs:
            if self.keyed:
                return f"SELECT {carried} FROM ev1"
            return self._renumbered("SELECT DISTINCT owner FROM ev1")
        if self.keyed and len(needs) == 1 and first:
            # the stored keys with any event's values: a superset (an engagement event may add
            # one), found without reading `name`; which visits pass is decided after the sort
            conds = [self.first_conds[i] for i in first]
            dims = sorted({_column(c.dimension) for c in conds})
            tests = " AND ".join(self.first_test(c) for c in conds)
            matching = self.source.relation(["visitor_key", *dims], self.p, tests)
            owners = f"SELECT DISTINCT visitor_key AS owner FROM ({matching}) x"
        elif len(needs) == 1:
            owners = f"SELECT DISTINCT owner FROM ev1 WHERE {needs[0]}"
        else:
            having = " AND ".join(f"bool_or({n})" for n in needs)
            owners = f"SELECT owner FROM ev1 GROUP BY owner HAVING {having}"
        if not self.keyed:
            return self._renumbered(owners)
        return f"SELECT {carried} FROM ev1 WHERE owner IN ({owners})"

    def _renumbered(self, owners: str) -> str:
        """Without stored visitor keys, the kept visitors as numbers (v1's): the sort and the
        distinct counts handle an integer, not a 16-character id."""
        others = ", ".join(c for c in self._carried() if c != "owner")
        numbered = f"SELECT owner, row_number() OVER () AS oid FROM ({owners}) x"
        return (
            f"SELECT w.oid AS owner, {others} FROM ev1 JOIN ({numbered}) w ON w.owner = ev1.owner"
        )

    def _tie_break(self) -> str:
        return self.source.tie_break()

    def _sessions(self) -> list[tuple[str, str]]:
        """Visits with one sort (v1's): each visitor's events in time order (engagement after
        counted events at one instant, ties by event id or file row); a visit starts at a
        counted event over 30 minutes after the visitor's previous counted event; `sn` numbers
        visits over all visitors; an event's copies sit together and are dropped."""
        eng = "eng, " if self.engagement else ""
        key = f"owner, ts, {eng}{self._tie_break()}"
        ordered = f"(SELECT * FROM kept ORDER BY {key})"
        same = "coalesce(lag(owner) OVER () = owner, FALSE)"
        copy = (
            "coalesce(lag(owner) OVER () = owner AND lag(event_id) OVER () = event_id, FALSE)"
            if self.source.ids
            else "FALSE"
        )
        ev2 = (
            f"SELECT k.*, row_number() OVER () AS rn, {same} AS same, {copy} AS copy, "
            f"lag(ts) OVER () AS pts FROM {ordered} k"
        )
        running = "OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        if not self.engagement:  # every row is counted: the previous row is the previous event
            start = f"(NOT same OR ts - pts > {GAP_MS})"
            sn = f"CAST(sum(CASE WHEN {start} THEN 1 ELSE 0 END) {running} AS BIGINT)"
            return [
                ("ev2", ev2),
                ("ev3s", self._numbered("ev2", "same, copy, pts", sn, start)),
                ("ev3", self._unpacked()),
            ]
        base = "CAST(oi AS DECIMAL(38, 0)) * 10000000000000"
        start = f"(NOT eng AND (plc IS NULL OR plc < ob OR ts - (plc - ob) > {GAP_MS}))"
        sn = (
            f"CASE WHEN lc >= ob THEN CAST(sum(CASE WHEN {start} THEN 1 ELSE 0 END) {running} "
            "AS BIGINT) END"
        )
        return [
            ("ev2", ev2),
            (
                "ev2b",
                f"SELECT ev2.*, sum(CASE WHEN same THEN 0 ELSE 1 END) {running} AS oi FROM ev2",
            ),
            (
                "ev2c",
                f"SELECT ev2b.*, max(CASE WHEN NOT eng THEN {base} + ts END) {running} AS lc "
                "FROM ev2b",
            ),
            ("ev2d", f"SELECT ev2c.*, lag(lc) OVER () AS plc, {base} AS ob FROM ev2c"),
            ("ev3s", self._numbered("ev2d", "same, copy, pts, oi, lc, plc, ob", sn, start)),
            ("ev3", self._unpacked()),
        ]

    def _unpacked(self) -> str:
        """The numbered events (`ev3s`, materialized as narrow as it can be: the spill of a
        wide one doubled the time of an unfiltered 10 M month) with what is the same on every
        row and the local day put back."""
        return f"SELECT ev3s.*, {', '.join(self._constants())} FROM ev3s"

    def _numbered(self, source: str, helpers: str, sn: str, start: str) -> str:
        """The events without their copies, `sn` numbering their visits; with a visit gate
        (`_visit_gate`), only the events of the visits passing it: each event's gate is that of
        the latest visit start at or before it, a running maximum of (row position, the
        start's gate) in the same streaming pass as `sn`."""
        running = "OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        if not self.top:  # ties are broken: only time on page orders events again
            helpers += "".join(f", {c}" for c in ("event_id", "frn") if c in self._carried())
        body = f"SELECT {source}.* EXCLUDE ({helpers}), {sn} AS sn"
        gate = self._visit_gate()
        if not gate:
            return f"{body} FROM {source} WHERE NOT copy"
        mark = f"max(CASE WHEN {start} THEN rn * 2 + CASE WHEN {gate} THEN 1 ELSE 0 END END)"
        return (
            f"SELECT * EXCLUDE (gate) FROM ({body}, {mark} {running} AS gate FROM {source} "
            "WHERE NOT copy) g WHERE gate % 2 = 1"
        )

    def _visits_sql(self) -> str:
        cols = [
            "arbitrary(owner) AS v_owner",
            "sn AS v_sn",
            "min(ts) AS t0",
            "max(ts) AS t1",
            "min_by(d, rn) AS d0",
            "min_by(off, rn) AS off0",
        ]
        for dim in self.carried_dims:
            cols.append(f"NULLIF(min_by({dim}, rn), '') AS s_{dim}")
        for i in range(len(self.first_conds)):
            cols.append(f"min_by(c{i}, rn) AS vc{i}")
        if self.entry:
            cols.append("min_by(page, CASE WHEN pv THEN rn END) AS s_entry_page")
        if self.exit:
            cols.append("max_by(page, CASE WHEN pv THEN rn END) AS s_exit_page")
        if self.visits:
            cols.append(
                "CASE WHEN sum(CASE WHEN pv THEN 1 ELSE 0 END) = 1 AND "
                "max(CASE WHEN NOT pv AND coalesce(interactive, TRUE) THEN 1 ELSE 0 END) = 0 "
                "THEN 1 ELSE 0 END AS bounce"
            )
        for i, b in enumerate(self.behaviours):
            cols.append(f"coalesce(bool_or({self.tree(b.child, 'event')}), FALSE) AS h{i}")
        return f"SELECT {', '.join(cols)} FROM ev3 WHERE NOT eng GROUP BY sn"

    def _timeline(self) -> str:
        """Counted events, and each one's next event of its visit (engagement included) when
        time on page is asked."""
        if not self.top:
            return "SELECT *, CAST(NULL AS BIGINT) AS nxt FROM ev3 WHERE NOT eng"
        assigned = (
            "SELECT ev3.* FROM ev3 WHERE NOT eng UNION ALL SELECT ev3.* FROM ev3 JOIN vis w "
            f"ON w.v_sn = ev3.sn WHERE ev3.eng AND ev3.ts <= w.t1 + {GAP_MS}"
        )
        return (
            "SELECT * FROM (SELECT t.*, lead(ts) OVER (PARTITION BY sn ORDER BY ts, "
            f"eng, {self._tie_break()}) AS nxt FROM ({assigned}) t) x WHERE NOT eng"
        )

    def _keys(self, scope: str) -> list[str]:
        """The row's dimension values: `event` (a counted event), `eng`, `visit`."""
        out = []
        for d in self.plan.dimensions:
            if is_visit_dim(d):
                out.append(self.visit_value(d))
            elif scope == "visit":
                out.append("s_entry_page" if d == "event:page" else f"m{self.event_dims.index(d)}")
            else:
                out.append(self.event_value(d, eng=scope == "eng"))
        return out

    def _select_keys(self, keys: list[str]) -> tuple[str, str]:
        named = "".join(f"{k} AS k{i}, " for i, k in enumerate(keys))
        present = "".join(f" AND k{i} IS NOT NULL" for i in range(len(keys)))
        return named, present

    def _grouped(
        self, kind: str, source: str, keys: list[str], unit: str, a: str, b: str, c: str, e: str
    ) -> str:
        named, present = self._select_keys(keys)
        names = "".join(f"k{i}, " for i in range(len(keys)))
        return (
            f"SELECT '{kind}' AS kind, {names}unit, {a} AS a, {b} AS b, {c} AS c, {e} AS e "
            f"FROM (SELECT {named}{unit} AS unit, * FROM {source}) z WHERE TRUE{present} "
            f"GROUP BY {names}unit"
        )

    def _event_rows(self) -> str:
        visitors = "0" if self.plan.by_visit else "count(DISTINCT owner)"
        return self._grouped(
            "e",
            f"me WHERE {self.in_range('ts')}",
            self._keys("event"),
            self.unit("d", "ts", "off"),
            "count(*)",
            "sum(CASE WHEN pv THEN 1 ELSE 0 END)",
            visitors,
            "0",
        )

    def _qualified_visits(self) -> str:
        """The kept visits with their event dimensions' values: the visits holding a passing
        event (visit-only trees: the visits passing), once per distinct value tuple."""
        other = [d for d in self.event_dims if d != "event:page"]
        if not self._visits_from_events():
            return "SELECT * FROM vk"
        values = ", ".join(f"{self.event_value(d)} AS m{self.event_dims.index(d)}" for d in other)
        sel = f"sn AS q_sn{', ' + values if values else ''}"
        return (
            f"SELECT v.*, q.* FROM (SELECT DISTINCT {sel} FROM me) q JOIN vis v ON v.v_sn = q.q_sn"
        )

    def _visit_rows(self) -> str:
        visitors = "count(DISTINCT v_owner)" if self.plan.by_visit else "0"
        return self._grouped(
            "v",
            f"vq WHERE {self.in_range('t0')}",
            self._keys("visit"),
            self.unit("d0", "t0", "off0"),
            "count(*)",
            "sum(bounce)",
            visitors,
            "sum(t1 - t0)",
        )

    def _top_rows(self) -> str:
        return self._grouped(
            "t",
            f"me WHERE pv AND nxt IS NOT NULL AND {self.in_range('ts')}",
            self._keys("event"),
            self.unit("d", "ts", "off"),
            "count(*)",
            "sum(nxt - ts)",
            "0",
            "0",
        )

    def _engagement(self) -> str:
        """Engagement events of the visits (inside the visit's span plus 30 minutes) passing the
        tree by their own values (page, hostname, props) and their visit's."""
        refs = dict.fromkeys(self._key_refs() + self._tree_refs())
        cols = "".join(f", v.{r}" for r in refs)
        return (
            f"SELECT * FROM (SELECT e.*{cols} FROM (SELECT * FROM ev3 WHERE eng) e JOIN vis v "
            f"ON v.v_sn = e.sn WHERE e.ts <= v.t1 + {GAP_MS}) x WHERE {self.where('eng')}"
        )

    def _sd_rows(self) -> str:
        keys = self._keys("eng")
        named, present = self._select_keys(keys)
        names = "".join(f"k{i}, " for i in range(len(keys)))
        unit = self.unit("d", "ts", "off")
        deepest = (
            f"SELECT {names}unit, owner, page, max(depth) AS depth FROM (SELECT {named}{unit} "
            "AS unit, greatest(0, least(coalesce(scroll_depth, 0), 100)) AS depth, * FROM "
            f"eng_ok WHERE {self.in_range('ts')}) z WHERE TRUE{present} "
            f"GROUP BY {names}unit, owner, page"
        )
        return (
            f"SELECT 's' AS kind, {names}unit, count(*) AS a, sum(depth) AS b, 0 AS c, 0 AS e "
            f"FROM ({deepest}) y GROUP BY {names}unit"
        )


def _column(dimension: str) -> str:
    return dimension.split(":", 1)[1]


VISIT_DIMS = {f"visit:{d}" for d in (*SESSION_DIMENSIONS, "entry_page", "exit_page")}
EVENT_DIMS = ("event:page", "event:hostname", "event:name", "event:goal")


def _check_dimension(dimension: str) -> None:
    if dimension in VISIT_DIMS or dimension in EVENT_DIMS:
        return
    if dimension.startswith("event:props:") and len(dimension) > len("event:props:"):
        return
    raise BadRequest(f"Invalid dimension '{dimension}'")


# ---- the engine ----------------------------------------------------------------------------

Key = tuple[tuple[str, ...], str]  # (dimension values, time label or "")


class V2ArchiveEngine:
    """A V2Query over one site's archive files (the query's days and one on each side)."""

    def __init__(
        self, site: Site, files: Sequence[Path], con: Any | None = None, shortcuts: bool = True
    ) -> None:
        """`shortcuts=False`: the general path (no visit gate; every counted event joined to
        its visit and tested with the whole tree), the tests' reference for the shortcuts."""
        self.site = site
        self.shortcuts = shortcuts
        self._rows: int | None = None  # rows in the files (their footers)
        self.v1 = ArchiveEngine(site, files, con)
        self.con = self.v1.con

    def run(self, query: V2Query) -> Result:
        _check_patterns(self.con, query.filters)
        grain = time_grain(query)
        dims = tuple(d for d in query.dimensions if not is_time_dim(d))
        metrics = query.metrics
        plan = Plan(
            dims,
            query.filters,
            grain,
            counters_for(metrics),
            visitors_by_visit(dims, query.filters),
        )
        cells = self._cells(query, plan)
        total = 0
        if "percentage" in metrics:
            total = self._total_visitors(query, query.filters)
        conversion_total = 0
        if "conversion_rate" in metrics:
            conversion_total = self._total_visitors(query, without_goal_filters(query.filters))
        groups = self._groups(query, dims, grain) if "group_conversion_rate" in metrics else {}
        rows = []
        for (values, bucket), cell in cells.items():
            if not any(cell.values()):
                continue
            out: list[float | int | None] = []
            for m in metrics:
                visitors = cell.get("visitors", 0)
                if m == "percentage":
                    out.append(round(100 * visitors / total, 1) if total else None)
                elif m == "conversion_rate":
                    out.append(
                        round(100 * visitors / conversion_total, 1) if conversion_total else 0.0
                    )
                elif m == "group_conversion_rate":
                    kept = tuple(v for d, v in zip(dims, values, strict=True) if d != "event:goal")
                    group = groups.get((kept, bucket), 0)
                    out.append(round(100 * visitors / group, 1) if group else 0.0)
                else:
                    out.append(compute(m, cell))
            labels = list(values)
            for i, d in enumerate(query.dimensions):
                if is_time_dim(d):
                    labels.insert(i, bucket)
            rows.append(Row(tuple(labels), tuple(out)))
        rows.sort(key=_order_key(query))
        page = rows[query.offset : query.offset + query.limit]
        return Result(tuple(page), len(rows))

    def _groups(self, query: V2Query, dims: tuple[str, ...], grain: str) -> dict[Key, int]:
        """group_conversion_rate's denominators: visitors by the dimensions other than
        event:goal, without the top-level goal and prop filters."""
        others = without_goal_filters(query.filters)
        group_dims = tuple(d for d in dims if d != "event:goal")
        plan = Plan(
            group_dims,
            others,
            grain,
            frozenset({"visitors", "events"}),
            visitors_by_visit(group_dims, others),
        )
        return {key: cell.get("visitors", 0) for key, cell in self._cells(query, plan).items()}

    def _label(self, bucket: int, grain: str) -> str:
        if grain == "hour":
            moment = datetime.fromtimestamp(bucket / 1000, UTC).astimezone(_zone(self.site.tz))
            return moment.strftime("%Y-%m-%d %H:00:00")
        return (EPOCH + timedelta(days=bucket)).isoformat()

    def _total_visitors(self, query: V2Query, filters: tuple[FilterTree, ...]) -> int:
        plan = Plan(
            (), filters, "", frozenset({"visitors", "events"}), visitors_by_visit((), filters)
        )
        return sum(c.get("visitors", 0) for c in self._cells(query, plan).values())

    def _buckets(self, statement: _Statement) -> int:
        """In how many parts to answer: every visitor's events are in one part (by stored
        visitor key), so the parts' counters add up, distinct visitors included. Only when
        nothing narrows the visitors before the sort (no positive filter: a negation, an `or`,
        none) and the files hold more rows than DuckDB sorts within its memory: one sort of
        a 10 M month's 11.9 M counted events spilled to disk and took twice its CPU (28 s; in
        three parts, each read of the files again, 16 s)."""
        if not (self.shortcuts and statement.keyed and not statement._prefilter()[1]):
            return 1
        if self._rows is None:
            row = self.con.execute(
                "SELECT sum(num_rows) FROM parquet_file_metadata($1)", [list(self.v1.files)]
            ).fetchone()
            self._rows = int(row[0] or 0) if row else 0
        # about half the files' rows are engagement events, sorted only for time on page and
        # scroll depth
        weight = self._rows * (2 if statement.engagement else 1)
        return max(1, math.ceil(weight / (memory_limit_mb() * ROWS_PER_SORT_MB)))

    def _cells(self, query: V2Query, plan: Plan) -> dict[Key, Cell]:
        if not self.v1.files:
            return {}
        tzs, heirs, source = self.v1._file_facts()
        zones = Zones.over(tzs or (self.site.tz,), query.first, query.last)
        probe = _Statement(self.site, plan, query, source, zones, heirs, self.shortcuts)
        count = self._buckets(probe)
        found: list[Any] = []
        for index in range(count):
            statement = _Statement(
                self.site, plan, query, source, zones, heirs, self.shortcuts, (index, count)
            )
            found += self.con.execute(statement.build(), statement.p.values).fetchall()
        n = len(plan.dimensions)
        out: dict[Key, Cell] = {}
        for row in found:
            kind = row[0]
            values = tuple(str(v) for v in row[1 : 1 + n])
            bucket, a, b, c, e = (int(x or 0) for x in row[1 + n :])
            # the label: a DST night's two 02:00 hours are one row, their visitors added
            label = self._label(bucket, plan.grain) if plan.grain else ""
            cell = out.setdefault((values, label), {})
            if kind == "e":
                cell["events"] = cell.get("events", 0) + a
                cell["pageviews"] = cell.get("pageviews", 0) + b
                if not plan.by_visit:
                    cell["visitors"] = cell.get("visitors", 0) + c
            elif kind == "v":
                cell["visits"] = cell.get("visits", 0) + a
                cell["bounces"] = cell.get("bounces", 0) + b
                cell["duration_ms"] = cell.get("duration_ms", 0) + e
                if plan.by_visit:
                    cell["visitors"] = cell.get("visitors", 0) + c
            elif kind == "t":
                cell["top_n"] = cell.get("top_n", 0) + a
                cell["top_ms"] = cell.get("top_ms", 0) + b
            elif kind == "s":
                cell["sd_n"] = cell.get("sd_n", 0) + a
                cell["sd_sum"] = cell.get("sd_sum", 0) + b
        return out


def _order_key(query: V2Query) -> Any:
    """Rows ordered by query.order_by (first metric descending when none), ties broken by the
    dimensions ascending so pages are stable."""
    order = list(query.order_by) or ([(query.metrics[0], "desc")] if query.metrics else [])
    positions = []
    for name, direction in order:
        if name in query.metrics:
            positions.append(("m", query.metrics.index(name), direction == "desc"))
        elif name in query.dimensions:
            positions.append(("d", query.dimensions.index(name), direction == "desc"))

    def key(row: Row) -> tuple[Any, ...]:
        parts: list[Any] = []
        for where, index, desc in positions:
            if where == "m":
                value = row.metrics[index]
                number = -math.inf if value is None else float(value)
                parts.append(-number if desc else number)
            else:
                parts.append(_Desc(row.dimensions[index]) if desc else row.dimensions[index])
        return (*parts, row.dimensions)

    return key


class _Desc:
    """A string ordered backwards."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def _check_patterns(con: Any, filters: Iterable[FilterTree]) -> None:
    """An invalid RE2 pattern is the asker's mistake: a 400 naming it, never a 500."""
    import duckdb

    for c, _ in conditions(filters):
        if c.op not in (MATCHES, MATCHES_NOT):
            continue
        for pattern in c.values:
            try:
                con.execute("SELECT regexp_matches('', $1)", [pattern]).fetchone()
            except duckdb.Error as error:
                reason = str(error).split(":", 1)[-1].strip()
                raise BadRequest(
                    f"Invalid filters. Invalid regular expression '{pattern}' in the filter on "
                    f"{c.dimension}: {reason}"
                ) from None
