"""Funnels and journeys over the archived events (issue 19), with DuckDB.

Both count visits, and the visits are the archive engine's (query_api/archive_engine.py): the
same files read once per event id, the same attribution to yesterday's visitor id, the same
30-minute split of a visitor's counted (non-engagement) events, the same session filters on a
visit's first counted event (entry and exit page: its first and last pageview). Their SQL is the
archive engine's statement up to its visits (`_Builder`), then their own few steps; DuckDB only
(no Trino spelling: the list functions differ).

Funnels (docs/metrics.md "funnel step"):
- within one visit, an event is a step when it is a pageview of the step's path (`*`: any run
  of characters) or a custom event of the step's name; the visit reaches step k when steps
  1..k are done in order, each by a later event than the step before it: the earliest way
  (taking each step at its first chance after the previous one never reaches fewer steps).
  A visit that skips a step stops before it; a repeated step counts once; one event is one step.
- filters, as Plausible's funnels: session filters keep the visits whose first counted event
  passes them; event filters keep the events that can be steps; filters on `event:page` and
  `event:goal` are refused (the steps are pages and goals), in Plausible's words.
- a visit counts in the unit (site-local day, or whole month) where it starts, and only if it
  starts in the range; a step's visitors are each unit's distinct visitors with a visit that
  reached it, summed over units, as every other visitors figure here (`units_of`). Plausible
  counts distinct user ids over the whole range; its ids rotate daily as ours do, so the two
  differ only for a visitor id seen on two days (a visit over midnight).

Journeys: a visit's pages are its pageviews' pages in order, a page viewed again right after
itself counted once. From an entry page: the visits whose first page is that one, and their
first `steps` pages; to an exit page: the visits whose last page is that one, and their last
`steps` pages. A visit with fewer pages gives all of them, so a path shorter than `steps` is
one that ended (or began) there; a visit of one page is no path. Filters keep visits: session
filters by their first event, event filters the visits holding a matching event (as the archive
engine's visit metrics). Visitors per path as funnels count them; `visits` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.funnels import PAGE, Funnel, Step
from query_api import parse
from query_api.archive_engine import (
    ESCAPE,
    ArchiveEngine,
    Ask,
    Zones,
    _Builder,
    _match_sql,
    _Params,
    like_pattern,
    units_of,
)
from query_api.errors import BadRequest

REFUSED_FILTERS = {  # Plausible's words (its funnel endpoint refuses these filters)
    "event:page": "We are unable to show funnels when the dashboard is filtered by pages",
    "event:goal": "We are unable to show funnels when the dashboard is filtered by goals",
}
MIN_JOURNEY_STEPS, MAX_JOURNEY_STEPS = 2, 5


@dataclass(frozen=True)
class StepResult:
    step: Step
    visitors: int
    conversion_rate: float  # % of step 1's visitors
    conversion_rate_step: float  # % of the previous step's visitors
    dropoff: int  # visitors of the previous step who did not reach this one
    dropoff_percentage: float


@dataclass(frozen=True)
class FunnelResult:
    steps: tuple[StepResult, ...]

    @property
    def entering_visitors(self) -> int:
        return self.steps[0].visitors

    @property
    def converted_visitors(self) -> int:
        return self.steps[-1].visitors

    @property
    def conversion_rate(self) -> float:
        return self.steps[-1].conversion_rate


@dataclass(frozen=True)
class Journey:
    path: tuple[str, ...]
    visitors: int
    visits: int


def percentage(part: int, whole: int) -> float:
    """Two decimals, 0 of nothing (Plausible's funnel figures, there strings: "33.33")."""
    return round(100 * part / whole, 2) if whole else 0.0


def funnel_result(steps: Sequence[Step], reached: dict[int, int]) -> FunnelResult:
    """Each step's figures from the visitors whose best visit reached exactly step k."""
    out: list[StepResult] = []
    first = previous = 0
    for k, step in enumerate(steps, start=1):
        visitors = sum(n for best, n in reached.items() if best >= k)
        if k == 1:
            first = previous = visitors
        dropoff = previous - visitors
        out.append(
            StepResult(
                step,
                visitors,
                percentage(visitors, first),
                percentage(visitors, previous),
                dropoff,
                percentage(dropoff, previous),
            )
        )
        previous = visitors
    return FunnelResult(tuple(out))


def check_funnel_filters(filters: Sequence[parse.Filter]) -> None:
    for f in filters:
        if f.prop.name in REFUSED_FILTERS:
            raise BadRequest(REFUSED_FILTERS[f.prop.name])


def _page_sql(expr: str, path: str, p: _Params) -> str:
    if "*" in path:
        return f"{expr} LIKE {p(like_pattern(path))} ESCAPE '{ESCAPE}'"
    return f"{expr} = {p(path)}"


def step_sql(step: Step, p: _Params) -> str:
    """An event (of the sorted events: `pv`, `page`, `name`) is the step."""
    if step.kind == PAGE:
        return f"(pv AND {_page_sql('page', step.value, p)})"
    return f"(NOT pv AND name = {p(step.value)})"


class _Visits(_Builder):
    """The archive engine's statement up to its visits (`vis_ok`: the visits the session
    filters keep), over the visitors that `owners` (a test of an event) picks."""

    def __init__(self, engine: ArchiveEngine, query: parse.Query) -> None:
        tzs, heirs, source = engine._file_facts()
        span = query.span
        ask = Ask(query.filters, None, frozenset(), units_of(span))
        super().__init__(
            engine.site,
            ask,
            source,
            Zones.over(tzs or (engine.site.tz,), span.first, span.last),
            heirs,
        )
        self.uses_page = self.uses_name = True  # steps and paths read both

    def visit_ctes(self, owners: str) -> list[tuple[str, str]]:
        """The CTEs up to `vis_ok`; only visitors with an event passing `owners` are sorted
        (a visitor without one cannot count: nothing else costs as much as that sort)."""
        p = self.p
        ctes = [("src", self.source.relation(self._columns(), p, "name <> 'engagement'"))]
        if self.heirs:
            ctes += self._attribution()
            owned = (
                "SELECT src.*, coalesce(attr.owner, src.visitor_id) AS owner "
                "FROM src LEFT JOIN attr ON attr.event_id = src.event_id"
            )
        else:
            owned = (
                f"SELECT src.*, {'visitor_key' if self.keyed else 'visitor_id'} AS owner FROM src"
            )
        ctes.append(
            (
                "ev0",
                f"SELECT o.*, {self.zones.sql(p)} AS off, name = 'engagement' AS eng, "
                f"name = 'pageview' AS pv FROM ({owned}) o",
            )
        )
        ctes.append(
            ("ev1", f"SELECT * FROM ev0 WHERE owner IN (SELECT owner FROM ev0 WHERE {owners})")
        )
        ctes.append(("kept", self._kept_sql()))
        ctes += self._sessions()
        ctes.append(("vis", self._visits_sql()))
        ctes.append(("vis_ok", self._visits_ok_sql()))
        return ctes

    def event_tests(self) -> str:
        tests = [_match_sql(self.event_value(f.prop), f, self.p) for f in self.event_filters]
        return " AND ".join(tests) if tests else "TRUE"

    def statement(self, ctes: list[tuple[str, str]], select: str) -> str:
        with_ = ",\n".join(f"{name} AS {self._hint(name)}({body})" for name, body in ctes)
        return f"WITH {with_}\n{select}"

    def funnel(self, steps: Sequence[Step]) -> str:
        """Rows of (best step reached, visitors) per unit, summed."""
        p = self.p
        tests = [step_sql(s, p) for s in steps]
        ctes = self.visit_ctes(tests[0])
        mask = " + ".join(f"CASE WHEN {t} THEN {1 << i} ELSE 0 END" for i, t in enumerate(tests))
        ctes.append(
            ("fe", f"SELECT sn, rn, {mask} AS m FROM ev3 WHERE NOT eng AND {self.event_tests()}")
        )
        # The steps done in order: bit k of an event's mask says it is step k + 1; the state
        # is the number of steps done, and advances when the event is the next step. A visit's
        # masks are put in order as numbers (position * 2^steps + mask) sorted in the list:
        # `list(m ORDER BY rn)` sorts each group apart, ~7x slower (0.66 s of 1.5 s at 1 M).
        base = 1 << len(steps)
        ordered = f"list_transform(list_sort(list(rn * {base} + m)), x -> x % {base})"
        advance = "(acc, x) -> CASE WHEN (x >> acc) & 1 = 1 THEN acc + 1 ELSE acc END"
        ctes.append(
            (
                "fv",
                f"SELECT sn, list_reduce(list_prepend(0, {ordered}), {advance}) AS reached "
                "FROM fe WHERE m <> 0 GROUP BY sn",
            )
        )
        unit = self.unit("v.d0", "v.t0", "v.off0")
        ctes.append(
            (
                "fr",
                f"SELECT v.owner, {unit} AS unit, max(f.reached) AS best FROM fv f "
                f"JOIN vis_ok v ON v.sn = f.sn WHERE {self.in_range('v.d0')} GROUP BY ALL",
            )
        )
        return self.statement(ctes, "SELECT best, count(*) FROM fr WHERE best > 0 GROUP BY best")

    def journeys(self, page: str, from_entry: bool, steps: int, limit: int) -> str:
        """Rows of (path, visitors, visits), the most visitors first, then by path."""
        p = self.p
        ctes = self.visit_ctes(f"pv AND {_page_sql('page', page, p)}")
        kept = "SELECT * FROM vis_ok"
        if self.event_filters:
            kept += f" WHERE sn IN (SELECT sn FROM ev3 WHERE NOT eng AND {self.event_tests()})"
        ctes.append(("vk", kept))
        # a visit's pages in order (sorted in the list, as a funnel's masks), then a page
        # right after itself dropped
        ordered = "list_transform(list_sort(list({'rn': rn, 'page': page})), x -> x.page)"
        ctes.append(
            (
                "jp",
                f"SELECT sn, {ordered} AS viewed FROM ev3 "
                "WHERE pv AND sn IN (SELECT sn FROM vk) GROUP BY sn",
            )
        )
        ctes.append(
            (
                "js",
                "SELECT sn, list_filter(viewed, (x, i) -> i = 1 OR x <> viewed[i - 1]) AS pages "
                "FROM jp",
            )
        )
        if from_entry:
            at, path = "pages[1]", f"list_slice(pages, 1, {steps})"
        else:
            at, path = "pages[len(pages)]", f"list_slice(pages, -{steps}, -1)"
        unit = self.unit("v.d0", "v.t0", "v.off0")
        ctes.append(
            (
                "jv",
                f"SELECT v.owner, {unit} AS unit, {path} AS path FROM js JOIN vk v ON v.sn = js.sn "
                f"WHERE len(pages) >= 2 AND {_page_sql(at, page, p)} AND {self.in_range('v.d0')}",
            )
        )
        per_unit = "SELECT path, unit, count(DISTINCT owner) AS n, count(*) AS k FROM jv GROUP BY path, unit"
        return self.statement(
            ctes,
            f"SELECT path, sum(n) AS visitors, sum(k) AS visits FROM ({per_unit}) x "
            f"GROUP BY path ORDER BY visitors DESC, path LIMIT {int(limit)}",
        )


class PathEngine(ArchiveEngine):
    """Funnels and journeys of one site over its archived files (a day on each side of the
    range, as the planner fetches them for the archive engine)."""

    def funnel(self, funnel: Funnel, query: parse.Query) -> FunnelResult:
        check_funnel_filters(query.filters)
        reached: dict[int, int] = {}
        if self.files:
            builder = _Visits(self, query)
            text = builder.funnel(funnel.steps)
            for best, visitors in self.con.execute(text, builder.p.values).fetchall():
                reached[int(best)] = int(visitors)
        return funnel_result(funnel.steps, reached)

    def journeys(
        self, query: parse.Query, page: str, *, from_entry: bool, steps: int, limit: int
    ) -> list[Journey]:
        if not MIN_JOURNEY_STEPS <= steps <= MAX_JOURNEY_STEPS:
            raise BadRequest(f"`steps` is {MIN_JOURNEY_STEPS} to {MAX_JOURNEY_STEPS}")
        if not self.files:
            return []
        builder = _Visits(self, query)
        text = builder.journeys(page, from_entry, steps, limit)
        rows = self.con.execute(text, builder.p.values).fetchall()
        journeys = [Journey(tuple(path), int(n), int(k)) for path, n, k in rows]
        # DuckDB orders lists and strings as Python does (byte order of UTF-8 is code point
        # order); sorted again so that the order is Python's by construction
        return sorted(journeys, key=lambda j: (-j.visitors, j.path))
