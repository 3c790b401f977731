"""Stats from the archived raw events: every question the counters refuse, answered exactly
with DuckDB SQL over the site's Parquet objects (decision 0028, docs/metrics.md "Answered from the
archive").

The definitions are the counters' (tests/oracle.py, tests/stats_oracle.py): visits split at 30
minutes of a visitor's counted (non-engagement) events, under the id the counters count the event
under; a visit counts where it starts, a pageview or event where it happens; visitors over a range
are the sum of each unit's distinct visitors (`counters.segments_of`: whole months, other days;
hours in an hourly series); days are each event's site-local days. Where the counters define
nothing (two properties at once, visits by page, ...) Plausible's rules apply: a session filter
keeps the visits whose value matches; an event filter keeps the matching events and, for visit
metrics, the visits holding one; filters AND; a page breakdown's visit metrics are those of the
visits entering on the page.

The SQL is one statement per question, standard enough for Trino (Athena) as well: window
functions, `min_by`, `CASE`; user values are always parameters (`$n` for DuckDB, `?` in order
for Trino), `*` wildcards become `LIKE` with `\\` escapes. Three spellings differ: the source
(`read_parquet` of local files, or the Glue table's partitions), a prop lookup, and the window
order (DuckDB sorts once and streams `OVER ()` windows over the sorted rows; Trino orders each
window by the row's position). `sql_for` gives the text and its parameters for either dialect.

Files hold the query's days and one day on each side (a visit crossing midnight, the next event
of a page's time on page); rows repeat across files (a retried or bisected batch), so every event
id is read once: by id where files overlap in time, by row order in a file alone in time.
Speed (decision 0028): only visitors who can match are sorted, numbered as integers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from archive import layout
from archive.layout import ADDED, read_sql
from archive.visits import events_sql, fragments_sql, keyed, sidecar_path
from core import names
from core.keys import Granularity
from core.observability import logger
from core.sites import PAGEVIEW_GOAL_PREFIX, Site
from core.vocabulary import SESSION_DIMENSIONS
from query_api.counters import local_hours, segments_of
from query_api.metrics import Number, compared, compute
from query_api.parse import (
    CONVERSION_RATE,
    GOAL,
    HOSTNAME,
    NAME,
    PAGE,
    PROP,
    SCROLL_DEPTH,
    SESSION,
    TIME_ON_PAGE,
    VISITORS,
    DateRange,
    Filter,
    Property,
    Query,
    previous_period,
)

log = logger("archive")

GAP_MS = 30 * 60 * 1000
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
EPOCH = date(1970, 1, 1)
ESCAPE = "\\"
TRINO_TABLE = "liveinsight_archive.events"  # the Glue table over the same layout (decision 0030)

Cell = dict[str, int]
# the counters a metric needs, as in query_api.metrics.NEEDS, plus what each depends on here
VISIT_COUNTERS = {"visits", "bounces", "duration_ms"}


# ---- what to compute ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Units:
    """How events are grouped before points and totals are added: per local day, per whole
    month (`months`: (first day number, last day number) of each), or per local hour."""

    first: int  # local day numbers (days since 1970-01-01) of the range, inclusive
    last: int
    months: tuple[tuple[int, int], ...] = ()
    hourly: bool = False


@dataclass(frozen=True)
class Ask:
    """One statement's question: the filters, an optional breakdown property, the counters."""

    filters: tuple[Filter, ...]
    prop: Property | None
    counters: frozenset[str]
    units: Units


def _day_number(day: date) -> int:
    return (day - EPOCH).days


def _day_of(number: int) -> date:
    return EPOCH + timedelta(days=number)


def units_of(span: DateRange, interval: str = "") -> Units:
    """The counters' units: a day series counts each day, a total or a month series whole
    months as months (decision 0007), an hourly series each hour."""
    first, last = _day_number(span.first), _day_number(span.last)
    if interval == "hour":
        return Units(first, last, hourly=True)
    if interval == "day":
        return Units(first, last)
    months = []
    for segment in segments_of(span):
        if segment.granularity is Granularity.MONTH:  # a run of whole months: each its unit
            month = date.fromisoformat(segment.first + "-01")
            while month.strftime("%Y-%m") <= segment.last:
                end = _month_end(month.strftime("%Y-%m"))
                months.append((_day_number(month), _day_number(end)))
                month = end + timedelta(days=1)
    return Units(first, last, tuple(months))


def _month_end(label: str) -> date:
    year, month = (int(p) for p in label.split("-"))
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def counters_for(metrics: Iterable[str]) -> frozenset[str]:
    out = {"visitors", "pageviews", "events"}  # cheap, and they decide which rows exist
    for metric in metrics:
        if metric in ("visits", "views_per_visit"):
            out.add("visits")
        elif metric in ("bounce_rate", "visit_duration"):
            out |= VISIT_COUNTERS
        elif metric == TIME_ON_PAGE:
            out.add("top")
        elif metric == SCROLL_DEPTH:
            out.add("sd")
    return frozenset(out)


# ---- SQL ---------------------------------------------------------------------------------------


class _Params:
    """Numbered parameters: `$n` in the text, values in order."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def like_pattern(value: str) -> str:
    """Plausible's `*` (any run of characters) as a LIKE pattern; `%`, `_` and the escape
    character itself match only themselves."""
    escaped = (
        value.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")
    )
    return re.sub(r"\*+", "%", escaped)


def _match_sql(expr: str, f: Filter, p: _Params) -> str:
    """The filter on a value expression; a value that is NULL (the event or visit has none)
    never matches, so a negation keeps it."""
    exact = [v for v in f.values if "*" not in v]
    tests = []
    if exact:
        tests.append(f"{expr} IN ({', '.join(p(v) for v in exact)})")
    tests += [f"{expr} LIKE {p(like_pattern(v))} ESCAPE '{ESCAPE}'" for v in f.values if "*" in v]
    hit = f"({expr} IS NOT NULL AND ({' OR '.join(tests)}))"
    return f"NOT {hit}" if f.negated else hit


@dataclass(frozen=True)
class Source:
    """Where rows come from, and the two spellings that differ between the engines."""

    dialect: str  # "duckdb" | "trino"
    files: tuple[str, ...] = ()
    # DuckDB: files that share no instant with another file and hold each event once, sorted
    # by (visitor_id, ts, event_id) as the writers sort: no copies, and a file's row number
    # orders a visitor's events at one instant as their ids do, so their ids are not read
    ordered: tuple[str, ...] = ()
    # DuckDB: every file holds `visitor_key` (archive/layout.py), the visitor id as a number:
    # visitors are read, sorted and counted as those numbers, without decoding the ids
    keyed: bool = False
    # DuckDB: files written before the ADDED columns (archive/layout.py): read with "" there
    legacy: tuple[str, ...] = ()
    site: str = ""
    first_day: str = ""  # Trino: the partitions (site-local days) to read
    last_day: str = ""
    table: str = TRINO_TABLE

    @property
    def ids(self) -> bool:
        """Whether some rows need their event id read (to drop copies, to break ties)."""
        return self.dialect != "duckdb" or bool(self.files)

    def tie_break(self) -> str:
        """The sort key after (owner, ts, eng): event ids, or row numbers in ordered files."""
        if self.dialect != "duckdb" or not self.ordered:
            return "event_id"
        return "event_id, frn" if self.files else "frn"

    def relation(self, columns: list[str], p: _Params, where: str = "") -> str:
        if any(c in names.TABLES for c in columns):
            return self._renamed(columns, p, where)
        cols = ", ".join(columns)
        if self.dialect == "duckdb":
            cond = f" WHERE {where}" if where else ""
            parts = []
            for files, legacy in self._groups(self.files):
                frn = ", 0 AS frn" if self.ordered else ""
                parts.append(f"SELECT {cols}{frn} FROM {self._read(files, p, legacy)}{cond}")
            for files, legacy in self._groups(self.ordered):
                plain = ", ".join(
                    "CAST(NULL AS VARCHAR) AS event_id" if c == "event_id" else c for c in columns
                )
                parts.append(
                    f"SELECT {plain}, file_row_number AS frn FROM "
                    f"{self._read(files, p, legacy, ', file_row_number = true')}{cond}"
                )
            return " UNION ALL ".join(parts)
        cols = ", ".join(read_sql(c) for c in columns)  # Athena reads a missing column as NULL
        return (
            f"SELECT {cols} FROM {self.table} WHERE site = {p(self.site)} "
            f"AND day BETWEEN {p(self.first_day)} AND {p(self.last_day)}"
            + (f" AND {where}" if where else "")
        )

    def _groups(self, files: tuple[str, ...]) -> list[tuple[list[str], bool]]:
        """The files, those written before the ADDED columns apart."""
        legacy = [f for f in files if f in self.legacy]
        current = [f for f in files if f not in self.legacy]
        return [(group, group is legacy) for group in (current, legacy) if group]

    @staticmethod
    def _read(files: list[str], p: _Params, legacy: bool, options: str = "") -> str:
        scan = f"read_parquet({p(files)}{options})"
        if not legacy:
            return scan
        added = ", ".join(f"'' AS {name}" for name in ADDED)
        return f"(SELECT *, {added} FROM {scan})"

    def prop(self, key: str, p: _Params) -> str:
        if self.dialect == "duckdb":
            return f"props[{p(key)}]"
        return f"element_at(props, {p(key)})"  # Trino's props[k] fails on a missing key

    def _renamed(self, columns: list[str], p: _Params, where: str) -> str:
        """The rows with browser and OS under the names they read as now (decision 0034: names
        stored before Plausible's are renamed on read, never rewritten): renamed in a projection
        over the stored rows, then filtered, as the filter may test a renamed column (a filter
        on another column still reaches the Parquet scan: DuckDB and Trino push it through)."""
        text = re.sub(r"'(?:[^']|'')*'", "''", where)  # our own literals, e.g. 'engagement'
        extra = [
            c for c in layout.COLUMN_NAMES if c not in columns and re.search(rf"\b{c}\b", text)
        ]
        wanted = [*columns, *extra]
        frn = ["frn"] if self.dialect == "duckdb" and self.ordered else []
        stored = self.relation(
            [f"{c} AS stored_{c}" if c in names.TABLES else c for c in wanted], p
        )
        renamed = [
            f"{names.sql(c, 'stored_' + c)} AS {c}" if c in names.TABLES else c for c in wanted
        ]
        rows = f"SELECT {', '.join(renamed + frn)} FROM ({stored}) r"
        return f"SELECT {', '.join(columns + frn)} FROM ({rows}) m" + (
            f" WHERE {where}" if where else ""
        )


@dataclass(frozen=True)
class Zones:
    """Each time zone in the files and its UTC offsets over the range: (until ms, offset ms)
    pieces, the last one open. Local days and hours are `ts + offset` cut at whole days and
    hours, with no time zone function (DuckDB and Trino spell those differently)."""

    pieces: tuple[tuple[str, tuple[tuple[int | None, int], ...]], ...]

    @classmethod
    def over(cls, tzs: Iterable[str], first: date, last: date) -> Zones:
        lo = datetime.combine(first - timedelta(days=3), time(), UTC)
        hi = datetime.combine(last + timedelta(days=3), time(), UTC)
        return cls(tuple((tz, _offsets(tz, lo, hi)) for tz in sorted(set(tzs))))

    def constant_offset(self) -> str:
        """The UTC offset when it is one number over the whole range (one zone, no DST change
        in it), as SQL text; '' when it varies. Then it need not travel through a sort."""
        if len(self.pieces) == 1 and len(self.pieces[0][1]) == 1:
            return str(self.pieces[0][1][0][1])
        return "0" if not self.pieces else ""

    def sql(self, p: _Params) -> str:
        def one(pieces: tuple[tuple[int | None, int], ...]) -> str:
            if len(pieces) == 1:
                return str(pieces[0][1])
            whens = " ".join(f"WHEN ts < {until} THEN {off}" for until, off in pieces[:-1])
            return f"CASE {whens} ELSE {pieces[-1][1]} END"

        if not self.pieces:
            return "0"
        if len(self.pieces) == 1:
            return one(self.pieces[0][1])
        whens = " ".join(f"WHEN tz = {p(tz)} THEN {one(pcs)}" for tz, pcs in self.pieces[:-1])
        return f"CASE {whens} ELSE {one(self.pieces[-1][1])} END"


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ValueError, OSError):  # an unknown name: stored events carry their site's zone
        return ZoneInfo("UTC")


def _offsets(tz: str, lo: datetime, hi: datetime) -> tuple[tuple[int | None, int], ...]:
    zone = _zone(tz)

    def offset(ms: int) -> int:
        moment = datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone)
        delta = moment.utcoffset() or timedelta()
        return int(delta.total_seconds() * 1000)

    start, end = int(lo.timestamp() * 1000), int(hi.timestamp() * 1000)
    pieces: list[tuple[int | None, int]] = []
    current = offset(start)
    cursor = start
    while cursor < end:
        step = min(cursor + DAY_MS, end)
        if offset(step) != current:
            low, high = cursor, step  # offset(low) == current != offset(high)
            while high - low > 1:
                middle = (low + high) // 2
                if offset(middle) == current:
                    low = middle
                else:
                    high = middle
            pieces.append((high, current))
            current = offset(high)
            cursor = high
        else:
            cursor = step
    pieces.append((None, current))
    return tuple(pieces)


# the session dimensions stored as columns (entry and exit pages are the visit's pages)
SESSION_COLUMNS = SESSION_DIMENSIONS


def event_columns(
    page: bool, hostname: bool, props: bool, interactive: bool, scroll_depth: bool
) -> list[str]:
    """The event columns a question reads (both engines' builders), in the order they read them."""
    wanted = (
        (page, "page"),
        (hostname, "hostname"),
        (props, "props"),
        (interactive, "interactive"),
        (scroll_depth, "scroll_depth"),
    )
    return [column for used, column in wanted if used]


class _Builder:
    """One statement: rows of (val, unit, counters) for an Ask."""

    def __init__(self, site: Site, ask: Ask, source: Source, zones: Zones, heirs: bool) -> None:
        self.site, self.ask, self.source, self.zones, self.heirs = site, ask, source, zones, heirs
        self.p = _Params()
        props = [f.prop for f in ask.filters] + ([ask.prop] if ask.prop else [])
        self.session_filters = [f for f in ask.filters if f.prop.kind == SESSION]
        self.event_filters = [f for f in ask.filters if f.prop.kind != SESSION]
        self.session_dims = sorted({pr.dimension for pr in props if pr.kind == SESSION})
        kinds = {pr.kind for pr in props}
        need = ask.counters
        self.top, self.sd = "top" in need, "sd" in need
        self.visits = bool(need & VISIT_COUNTERS)
        # visitors counted where visits start: the counters' session dimensions; anything with
        # an event property counts them where the events happen
        by_prop = ask.prop is not None and ask.prop.kind != SESSION
        self.visitors_by_visit = bool(self.session_dims) and not self.event_filters and not by_prop
        self.uses_page = bool(
            kinds & {PAGE, GOAL}
            or {"entry_page", "exit_page"} & set(self.session_dims)
            or self.top
            or self.sd
        )
        self.uses_hostname = HOSTNAME in kinds
        self.uses_props = PROP in kinds
        self.uses_name = bool(kinds & {NAME, GOAL})
        self.uses_interactive = "bounces" in need
        # engagement events matter only to time on page and scroll depth: otherwise not read
        self.engagement = self.top or self.sd
        # session filters on a visit's first counted event: one boolean per event (`sok`), so
        # the values themselves travel through the sort only when they are the breakdown's
        self.first_event_filters = [
            f for f in self.session_filters if f.prop.dimension in SESSION_COLUMNS
        ]
        self.carried_dims = [
            d
            for d in self.session_dims
            if d in SESSION_COLUMNS and ask.prop is not None and ask.prop.dimension == d
        ]
        # owners as the files' visitor keys; attribution (heirs) decides owners from the ids
        self.keyed = source.keyed and not heirs

    # -- pieces -----------------------------------------------------------------------------

    def _columns(self) -> list[str]:
        visitor = "visitor_key" if self.keyed else "visitor_id"
        cols = ["event_id", "ts", "name", visitor] if self.source.ids else ["ts", "name", visitor]
        if len(self.zones.pieces) > 1:  # one zone: its offsets need no column
            cols.append("tz")
        if self.heirs:
            cols.append("previous_visitor_id")
        cols += [d for d in self.session_dims if d in SESSION_COLUMNS]
        return cols + self._event_columns()

    def _event_columns(self) -> list[str]:
        """The event columns a question reads, and carries through the sort."""
        return event_columns(
            self.uses_page, self.uses_hostname, self.uses_props, self.uses_interactive, self.sd
        )

    def event_value(self, prop: Property, engagement: bool = False) -> str:
        """An event's value of an event property, NULL when it has none. An engagement event
        (scroll depth) has a page, a hostname and props, no name and no goal."""
        if prop.kind == PAGE:
            return "page" if engagement else "CASE WHEN pv THEN page END"
        if prop.kind == HOSTNAME:
            return "NULLIF(hostname, '')"
        if prop.kind == PROP:
            return self.source.prop(prop.key, self.p)
        if engagement:
            return "CAST(NULL AS VARCHAR)"
        if prop.kind == NAME:
            return "CASE WHEN NOT pv THEN name END"
        if prop.kind == GOAL:
            return self._goal_value()
        raise ValueError(prop.name)

    def _goal_value(self) -> str:
        goals = self.site.goals
        if not goals:
            return "CASE WHEN NOT pv THEN name END"  # every custom event name is a goal
        pages = [g for g in goals if g.startswith(PAGEVIEW_GOAL_PREFIX)]
        names = [g for g in goals if not g.startswith(PAGEVIEW_GOAL_PREFIX)]
        whens = []
        if pages:
            visit = f"{self.p(PAGEVIEW_GOAL_PREFIX)} || page"
            listed = ", ".join(self.p(g) for g in pages)
            whens.append(f"WHEN pv AND {visit} IN ({listed}) THEN {visit}")
        if names:
            whens.append(
                f"WHEN NOT pv AND name IN ({', '.join(self.p(g) for g in names)}) THEN name"
            )
        return f"CASE {' '.join(whens)} END"

    def unit(self, day: str, ts: str, off: str) -> str:
        units = self.ask.units
        if units.hourly:  # the UTC instant a local hour starts: two 02:00s stay two hours
            return f"CAST(floor(({ts} + {off}) / {HOUR_MS}.0) AS BIGINT) * {HOUR_MS} - {off}"
        if not units.months:
            return day
        whens = " ".join(f"WHEN {day} BETWEEN {a} AND {b} THEN {a}" for a, b in units.months)
        return f"CASE {whens} ELSE {day} END"

    def in_range(self, day: str) -> str:
        return f"{day} BETWEEN {self.ask.units.first} AND {self.ask.units.last}"

    # -- the statement ----------------------------------------------------------------------

    def build(self) -> str:
        p = self.p
        cols = self._columns()
        where = "" if self.engagement else "name <> 'engagement'"
        ctes: list[tuple[str, str]] = [("src", self.source.relation(cols, p, where))]
        if self.heirs:
            ctes += self._attribution()
            owned = (
                "SELECT src.*, coalesce(attr.owner, src.visitor_id) AS owner "
                "FROM src LEFT JOIN attr ON attr.event_id = src.event_id"
            )
        else:
            visitor = "visitor_key" if self.keyed else "visitor_id"
            owned = f"SELECT src.*, {visitor} AS owner FROM src"
        ctes.append(
            (
                "ev1",
                f"SELECT o.*, {self.zones.sql(p)} AS off, name = 'engagement' AS eng, "
                f"name = 'pageview' AS pv FROM ({owned}) o",
            )
        )
        ctes.append(("kept", self._kept_sql()))
        ctes += self._sessions()
        ctes.append(("vis", self._visits_sql()))
        ctes.append(("vis_ok", self._visits_ok_sql()))
        ctes.append(("tl", self._timeline()))
        ctes.append(("me", self._matched_events_sql()))
        selects = [self._event_rows_sql()]
        if self.visits or self.visitors_by_visit:
            ctes.append(("vq", self._qualified_visits_sql()))
            selects.append(self._visit_rows_sql())
        if self.top:
            selects.append(self._top_rows_sql())
        if self.sd:
            ctes.append(("eng_ok", self._engagement_sql()))
            selects.append(self._sd_rows_sql())
        union = " UNION ALL ".join(selects)
        with_ = ",\n".join(f"{name} AS {self._hint(name)}({body})" for name, body in ctes)
        return (
            f"WITH {with_}\nSELECT kind, val, unit, sum(a) AS a, sum(b) AS b, sum(c) AS c, "
            f"sum(e) AS e FROM ({union}) r GROUP BY kind, val, unit"
        )

    def _carried(self) -> list[str]:
        """The columns that travel through the sort: what the visits and the rows need."""
        cols = ["owner", "ts", "pv", *self.carried_dims]
        if self.engagement:  # otherwise every row is counted
            cols.append("eng")
        if not self._constant_offset():
            cols.append("off")
        if self.source.ids:
            cols.append("event_id")
        if self.source.ordered:
            cols.append("frn")
        if self.uses_name:
            cols.append("name")
        return cols + self._event_columns()

    def _constant_offset(self) -> str:
        return self.zones.constant_offset()

    def _constants(self) -> str:
        """What the sort leaves out because it is the same on every row, put back after it."""
        out = "" if self.engagement else "FALSE AS eng, "
        offset = self._constant_offset()
        return out + (f"{offset} AS off, " if offset else "")

    def _first_event_test(self) -> str:
        """An event's own values pass every session filter on a first-event dimension (a visit
        passes them when its first counted event does)."""
        tests = []
        for f in self.first_event_filters:
            dim = f.prop.dimension
            if not f.negated and all(v and "*" not in v for v in f.values):
                # the plain column, which DuckDB pushes into the Parquet scan ('' never matches)
                tests.append(f"{dim} IN ({', '.join(self.p(v) for v in f.values)})")
            else:
                tests.append(_match_sql(f"NULLIF({dim}, '')", f, self.p))
        return " AND ".join(tests)

    def _event_test(self) -> str:
        """An event matches every event filter (an engagement event by its own values)."""
        counted = " AND ".join(
            _match_sql(self.event_value(f.prop), f, self.p) for f in self.event_filters
        )
        if not self.engagement:
            return counted
        eng = " AND ".join(
            _match_sql(self.event_value(f.prop, engagement=True), f, self.p)
            for f in self.event_filters
        )
        return f"((NOT eng AND {counted}) OR (eng AND {eng}))"

    def _kept_sql(self) -> str:
        """The events of the visitors who can count, each visitor numbered. With a positive
        filter, only a visitor with a counted event passing every first-event session filter (a
        kept visit starts with one) and an event passing every event filter (a kept visit or
        engagement event holds one): exact for any filter, but a negation keeps nearly everyone,
        so then every visitor is kept. Numbers make the sort and the distinct counts handle
        integers, not 16-character ids (sorting 4.4 M rows by id took 1.15 GB at 10 M pageviews
        a month; an unfiltered 1 M breakdown with time on page: 4.9 s -> 3.8 s). Files with
        visitor keys give those numbers as stored: nothing to number, nothing to join."""
        day = f"CAST(floor((ts + off) / {DAY_MS}.0) AS BIGINT) AS d"
        cols = [*self._carried(), day]
        if self.first_event_filters:
            cols.append(f"{self._first_event_test()} AS sok")
        positive = any(not f.negated for f in self.first_event_filters + self.event_filters)
        if not positive:  # every visitor: numbered all the same
            owners = "SELECT DISTINCT owner FROM ev1"
        elif self.keyed and not self.event_filters:
            # the stored keys, any event's values: a superset of the visitors above (an
            # engagement event may add one), cheaper to find without reading `name` (~0.4 s of
            # 7 s at 10 M pageviews a month); which of their visits pass is decided below
            dims = sorted({f.prop.dimension for f in self.first_event_filters})
            matching = self.source.relation(
                ["visitor_key", *dims], self.p, self._first_event_test()
            )
            owners = f"SELECT DISTINCT visitor_key AS owner FROM ({matching}) x"
        elif not self.first_event_filters or not self.event_filters:
            test = (
                f"(NOT eng AND {self._first_event_test()})"
                if self.first_event_filters
                else self._event_test()
            )
            owners = f"SELECT DISTINCT owner FROM ev1 WHERE {test}"
        else:
            a, b = f"(NOT eng AND {self._first_event_test()})", self._event_test()
            owners = (
                f"SELECT owner FROM ev1 GROUP BY owner HAVING "
                f"max(CASE WHEN {a} THEN 1 ELSE 0 END) = 1 AND "
                f"max(CASE WHEN {b} THEN 1 ELSE 0 END) = 1"
            )
        others = ", ".join(c for c in cols if c != "owner")
        if self.keyed:
            if not positive:
                return f"SELECT owner, {others} FROM ev1"
            return f"SELECT owner, {others} FROM ev1 WHERE owner IN ({owners})"
        numbered = f"SELECT owner, row_number() OVER () AS oid FROM ({owners}) x"
        return (
            f"SELECT w.oid AS owner, {others} FROM ev1 JOIN ({numbered}) w ON w.owner = ev1.owner"
        )

    def _over(self, frame: str = "") -> str:
        """A window over the events in (owner, ts, eng, event_id) order. DuckDB streams it over
        the sorted rows (one sort, no per-window re-sort: ~5x cheaper than PARTITION BY owner);
        Trino orders each window by `rn`, the row's position in that order."""
        if self.source.dialect == "duckdb":
            return f"OVER ({frame})"
        return f"OVER (ORDER BY rn {frame})".replace(" )", ")")

    def _copy(self, over: str) -> str:
        if not self.source.ids:
            return "FALSE"  # ordered files only: no event is in two of them
        return f"coalesce(lag(owner) {over} = owner AND lag(event_id) {over} = event_id, FALSE)"

    def _sessions(self) -> list[tuple[str, str]]:
        """Visits, with one sort: each visitor's events in time order (engagement after counted
        events at the same instant, ties by event id, as tests/oracle.py); a visit starts at a
        counted event over 30 minutes after the visitor's previous counted event; `sn` numbers
        visits over all visitors. An event's copies (a retried or bisected batch wrote it twice)
        are identical rows, so they sit together in that order and are dropped there."""
        eng = "eng, " if self.engagement else ""
        key = f"owner, ts, {eng}{self.source.tie_break()}"
        if self.source.dialect == "duckdb":
            ordered = f"(SELECT * FROM kept ORDER BY {key})"
            first = "OVER ()"
        else:
            ordered = "kept"
            first = f"OVER (ORDER BY {key})"
        same = f"coalesce(lag(owner) {first} = owner, FALSE)"
        ev2 = (
            f"SELECT k.*, {self._constants()}row_number() {first} AS rn, {same} AS same, "
            f"{self._copy(first)} AS copy, lag(ts) {first} AS pts FROM {ordered} k"
        )
        running = self._over("ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW")
        if not self.engagement:  # every row is counted: the previous row is the previous event
            start = f"NOT same OR ts - pts > {GAP_MS}"
            return [
                ("ev2", ev2),
                (
                    "ev3",
                    f"SELECT ev2.*, sum(CASE WHEN {start} THEN 1 ELSE 0 END) {running} AS sn "
                    "FROM ev2 WHERE NOT copy",
                ),
            ]
        # Engagement events in between: the previous counted event's time is a running maximum
        # of (visitor's position, ts) among counted events, the position keeping visitors apart.
        base = "CAST(oi AS DECIMAL(38, 0)) * 10000000000000"
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
            (
                "ev2d",
                f"SELECT ev2c.*, lag(lc) {self._over()} AS plc, {base} AS ob FROM ev2c",
            ),
            (
                "ev3",
                f"SELECT ev2d.*, CASE WHEN lc >= ob THEN sum(CASE WHEN NOT eng AND (plc IS NULL "
                f"OR plc < ob OR ts - (plc - ob) > {GAP_MS}) THEN 1 ELSE 0 END) {running} END "
                "AS sn FROM ev2d WHERE NOT copy",
            ),
        ]

    def _hint(self, name: str) -> str:
        """DuckDB 1.2 inlines a CTE at each use: the sorted events, the visits and the matched
        events are read several times and computed once only when materialized (Trino plans
        this itself and knows no such keyword)."""
        if self.source.dialect == "duckdb" and name in ("ev3", "vis", "me"):
            return "MATERIALIZED "
        return ""

    def _attribution(self) -> list[tuple[str, str]]:
        return attribution_ctes()

    def _visits_sql(self) -> str:
        cols = [
            "arbitrary(owner) AS owner",  # sn numbers visits over all visitors
            "sn",
            "min(ts) AS t0",
            "max(ts) AS t1",
            "min_by(d, rn) AS d0",
            "min_by(off, rn) AS off0",
        ]
        for dim in self.session_dims:
            if dim == "entry_page":
                cols.append("min_by(page, CASE WHEN pv THEN rn END) AS s_entry_page")
            elif dim == "exit_page":
                cols.append("max_by(page, CASE WHEN pv THEN rn END) AS s_exit_page")
            elif dim in self.carried_dims:
                cols.append(f"NULLIF(min_by({dim}, rn), '') AS s_{dim}")  # min_by skips NULLs
        if self.first_event_filters:
            cols.append("min_by(sok, rn) AS s_ok")
        by_page = self.ask.prop is not None and self.ask.prop.kind == PAGE
        if by_page and self.visits and "entry_page" not in self.session_dims:
            cols.append("min_by(page, CASE WHEN pv THEN rn END) AS s_entry_page")
        if "bounces" in self.ask.counters:
            cols.append(
                "CASE WHEN sum(CASE WHEN pv THEN 1 ELSE 0 END) = 1 AND "
                "max(CASE WHEN NOT pv AND coalesce(interactive, TRUE) THEN 1 ELSE 0 END) = 0 "
                "THEN 1 ELSE 0 END AS bounce"
            )
        return f"SELECT {', '.join(cols)} FROM ev3 WHERE NOT eng GROUP BY sn"

    def _visits_ok_sql(self) -> str:
        tests = ["s_ok"] if self.first_event_filters else []
        tests += [
            _match_sql(f"s_{f.prop.dimension}", f, self.p)
            for f in self.session_filters
            if f not in self.first_event_filters
        ]
        return "SELECT * FROM vis" + (f" WHERE {' AND '.join(tests)}" if tests else "")

    def _val(self, engagement: bool = False) -> str:
        prop = self.ask.prop
        if prop is None:
            return "''"
        if prop.kind == SESSION:
            return f"v.s_{prop.dimension}"
        return self.event_value(prop, engagement)

    def _timeline(self) -> str:
        """Counted events, with each pageview's next event of its visit (engagement included)
        when time on page is asked."""
        if not self.top:
            return "SELECT ev3.*, CAST(NULL AS BIGINT) AS nxt FROM ev3 WHERE NOT eng"
        assigned = (
            "SELECT ev3.* FROM ev3 WHERE NOT eng UNION ALL SELECT ev3.* FROM ev3 JOIN vis w "
            f"ON w.sn = ev3.sn WHERE ev3.eng AND ev3.ts <= w.t1 + {GAP_MS}"
        )
        return (
            "SELECT * FROM (SELECT t.*, lead(ts) OVER (PARTITION BY sn ORDER BY ts, "
            f"{self.source.tie_break()}) AS nxt FROM ({assigned}) t) x WHERE NOT eng"
        )

    def _matched_events_sql(self) -> str:
        """Counted events of the visits the session filters keep that match every event filter,
        with their row value."""
        tests = [_match_sql(self.event_value(f.prop), f, self.p) for f in self.event_filters]
        join = bool(self.session_filters) or (
            self.ask.prop is not None and self.ask.prop.kind == SESSION
        )
        frm = "tl e JOIN vis_ok v ON v.sn = e.sn" if join else "tl e"
        where = " AND ".join(tests) if tests else "TRUE"
        return (
            f"SELECT e.owner, e.sn, e.d, e.ts, e.off, e.pv, e.nxt, {self._val()} AS val "
            f"FROM {frm} WHERE {where}"
        )

    def _event_rows_sql(self) -> str:
        unit = self.unit("d", "ts", "off")
        visitors = "0" if self.visitors_by_visit else "count(DISTINCT owner)"
        return (
            f"SELECT 'e' AS kind, val, {unit} AS unit, count(*) AS a, "
            f"sum(CASE WHEN pv THEN 1 ELSE 0 END) AS b, {visitors} AS c, 0 AS e "
            f"FROM me WHERE {self.in_range('d')} AND val IS NOT NULL GROUP BY val, {unit}"
        )

    def _qualified_visits_sql(self) -> str:
        """The visits every filter keeps (an event filter: the visits holding a matching event),
        with their row value: a session property's; a page breakdown's entry page; another
        event property's values of its matching events."""
        prop = self.ask.prop
        keep = "SELECT * FROM vis_ok"
        if self.event_filters:
            keep = "SELECT vis_ok.* FROM vis_ok JOIN (SELECT DISTINCT sn FROM me) m ON m.sn = vis_ok.sn"
        if prop is None:
            return f"SELECT k.*, '' AS val FROM ({keep}) k"
        if prop.kind == SESSION:
            return f"SELECT k.*, k.s_{prop.dimension} AS val FROM ({keep}) k"
        if prop.kind == PAGE:
            return f"SELECT k.*, k.s_entry_page AS val FROM ({keep}) k"
        return (
            f"SELECT k.*, m.val FROM ({keep}) k JOIN (SELECT DISTINCT sn, val FROM me) m "
            "ON m.sn = k.sn"
        )

    def _visit_rows_sql(self) -> str:
        unit = self.unit("d0", "t0", "off0")
        bounce = "sum(bounce)" if "bounces" in self.ask.counters else "0"
        visitors = "count(DISTINCT owner)" if self.visitors_by_visit else "0"
        return (
            f"SELECT 'v' AS kind, val, {unit} AS unit, count(*) AS a, {bounce} AS b, "
            f"{visitors} AS c, sum(t1 - t0) AS e FROM vq "
            f"WHERE {self.in_range('d0')} AND val IS NOT NULL GROUP BY val, {unit}"
        )

    def _top_rows_sql(self) -> str:
        unit = self.unit("d", "ts", "off")
        return (
            f"SELECT 't' AS kind, val, {unit} AS unit, count(*) AS a, sum(nxt - ts) AS b, "
            f"0 AS c, 0 AS e FROM me WHERE pv AND nxt IS NOT NULL AND {self.in_range('d')} "
            f"AND val IS NOT NULL GROUP BY val, {unit}"
        )

    def _engagement_sql(self) -> str:
        """Engagement events of the kept visits (inside the visit's span plus 30 minutes) that
        match the event filters, as an engagement event has their properties."""
        tests = [
            _match_sql(self.event_value(f.prop, engagement=True), f, self.p)
            for f in self.event_filters
        ]
        where = " AND ".join([f"e.ts <= v.t1 + {GAP_MS}", *tests])
        return (
            f"SELECT e.owner, e.page, e.d, e.ts, e.off, {self._val(engagement=True)} AS val, "
            "greatest(0, least(coalesce(e.scroll_depth, 0), 100)) AS depth "
            "FROM (SELECT * FROM ev3 WHERE eng) e JOIN vis_ok v ON v.sn = e.sn "
            f"WHERE {where}"
        )

    def _sd_rows_sql(self) -> str:
        unit = self.unit("d", "ts", "off")
        deepest = (
            f"SELECT val, {unit} AS unit, owner, page, max(depth) AS depth FROM eng_ok "
            f"WHERE {self.in_range('d')} AND val IS NOT NULL GROUP BY val, {unit}, owner, page"
        )
        return (
            "SELECT 's' AS kind, val, unit, count(*) AS a, sum(depth) AS b, 0 AS c, 0 AS e "
            f"FROM ({deepest}) x GROUP BY val, unit"
        )


def attribution_ctes() -> list[tuple[str, str]]:
    """CTEs `line` .. `attr` over `src` (event_id, ts, name, visitor_id, previous_visitor_id):
    the owner id of an event stored with `previous_visitor_id` (before ingest decided it,
    decision 0024): yesterday's id while that id's session is open (tests/oracle.py
    attribute_visitors). A heir is owned when a run of counted events, no gap over 30
    minutes, leads to it from one of that id's own events."""
    line = (  # DISTINCT: copies of an event tie in every order, and windows break ties apart
        "SELECT DISTINCT * FROM (SELECT previous_visitor_id AS p, event_id, ts, "
        "name = 'engagement' AS eng, 0 AS base "
        "FROM src WHERE previous_visitor_id <> '' "
        "UNION ALL SELECT visitor_id AS p, event_id, ts, FALSE AS eng, 1 AS base FROM src "
        "WHERE name <> 'engagement' AND visitor_id IN "
        "(SELECT previous_visitor_id FROM src WHERE previous_visitor_id <> '')) l"
    )
    w = "PARTITION BY p ORDER BY ts, event_id"
    return [
        ("line", line),
        (
            "isl",
            f"SELECT line.*, CASE WHEN ts - lag(ts) OVER ({w}) > {GAP_MS} THEN 1 ELSE 0 END "
            "AS brk FROM line WHERE NOT eng",
        ),
        (
            "isl2",
            f"SELECT isl.*, sum(brk) OVER ({w} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT "
            "ROW) AS island FROM isl",
        ),
        (
            "owned",
            "SELECT isl2.*, max(base) OVER (PARTITION BY p, island ORDER BY ts, event_id "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS own FROM isl2",
        ),
        (
            "attr",  # copies of an event: one row
            "SELECT DISTINCT event_id, owner FROM (SELECT event_id, p AS owner FROM owned "
            "WHERE base = 0 AND own = 1 UNION ALL SELECT h.event_id, h.p FROM line h "
            "WHERE h.eng AND EXISTS (SELECT 1 FROM owned o WHERE o.p = h.p AND o.own = 1 "
            "AND (o.ts < h.ts OR (o.ts = h.ts AND o.event_id < h.event_id)) "
            f"AND h.ts - o.ts <= {GAP_MS})) a",
        ),
    ]


# ---- the engine --------------------------------------------------------------------------------


def sql_for(
    site: Site,
    ask: Ask,
    source: Source,
    tzs: Sequence[str] = (),
    heirs: bool = True,
    span: DateRange | None = None,
) -> tuple[str, list[Any]]:
    """The statement for a question and its parameters: `$n` for DuckDB; for Trino `?` in
    order (Athena's execution parameters)."""
    first = span.first if span else _day_of(ask.units.first)
    last = span.last if span else _day_of(ask.units.last)
    zones = Zones.over(tzs or (site.tz,), first, last)
    builder = _Builder(site, ask, source, zones, heirs)
    text = builder.build()
    values = builder.p.values
    if source.dialect == "duckdb":
        return text, values
    ordered: list[Any] = []

    def positional(match: re.Match[str]) -> str:
        ordered.append(values[int(match.group(1)) - 1])
        return "?"

    return re.sub(r"\$(\d+)", positional, text), ordered


Rows = dict[tuple[str, int], Cell]  # (row value, unit) → counters


class ArchiveEngine:
    """Aggregate, timeseries and breakdown over one site's archived events (the same calls and
    shapes as `query_api.counters.CounterEngine`)."""

    def __init__(
        self, site: Site, files: Sequence[Path], con: Any | None = None, visits: bool = True
    ) -> None:
        from archive.parquet import connect

        self.site = site
        self.files = tuple(dict.fromkeys(str(f) for f in files))  # a file named twice: once
        self.con = con or connect()
        self._facts: tuple[tuple[str, ...], bool, Source] | None = None
        self._visits: tuple[tuple[str, ...], tuple[str, ...]] | None = None if visits else ((), ())
        self.answered_by_visits = False  # whether the last question was answered from visits
        self._computed_tz = site.tz

    def visit_files(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """How the visits answer for the events files (archive/visits.py, decision 0032):
        (visits files, events files whose fragments the statement computes), or ((), ()) when
        the events path answers. An events file without a visits file (today's parts, a late
        batch) and every file whose span of time meets one of those are computed; the visits
        files must not meet each other (one object a day: a visit's fragments in two of them are
        stitched exactly), no event may name a previous visitor id (decision 0024: attribution
        reads events), the computed files hold one time zone and at most half the events (else
        the events path, tuned for them, answers). Footers, the visits files' `heirs`
        column and the computed files' `tz` and `previous_visitor_id` are read."""
        if self._visits is None:
            self._visits = ((), ())
            try:
                plan = self._visits_plan()
            except Exception:  # a visits file DuckDB cannot read: the events answer
                log.warning("visits files unreadable: answered from events", exc_info=True)
                plan = None
            if plan is not None:
                self._visits = plan
        return self._visits

    def _visits_plan(self) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        files = list(self.files)
        computed: set[str] | None = {f for f in files if not sidecar_path(f).is_file()}
        if computed:
            computed = self._computed(files, computed)
            if computed is None:
                return None
        computed = computed or set()
        sidecars = [str(sidecar_path(f)) for f in files if f not in computed]
        heirs = self.con.execute(
            "SELECT coalesce(bool_or(heirs), FALSE) FROM read_parquet($1) WHERE kind = 0",
            [sidecars],
        ).fetchone()
        if not heirs or heirs[0]:
            return None
        stats = self.con.execute(
            "SELECT file_name, min(TRY_CAST(stats_min_value AS BIGINT)) FILTER "
            "(path_in_schema = 't0'), max(TRY_CAST(stats_max_value AS BIGINT)) "
            "FILTER (path_in_schema = 't1') FROM parquet_metadata($1) GROUP BY file_name",
            [sidecars],
        ).fetchall()
        if len(stats) != len(sidecars) or not _apart([(lo, hi) for _, lo, hi in stats]):
            return None
        return tuple(sidecars), tuple(f for f in files if f in computed)

    def _computed(self, files: list[str], without: set[str]) -> set[str] | None:
        """The files whose fragments the statement computes: those without a visits file and
        every file meeting one of them in time (a compacted day with a late part: the part's
        events may be copies of the day's), or None when the events path should answer."""
        rows = {
            str(name): int(n or 0)
            for name, n in self.con.execute(
                "SELECT file_name, num_rows FROM parquet_file_metadata($1)", [files]
            ).fetchall()
        }
        spans: dict[str, tuple[int, int]] = {}
        for name, lo, hi, missing in self.con.execute(
            "SELECT file_name, min(TRY_CAST(stats_min_value AS BIGINT)), "
            "max(TRY_CAST(stats_max_value AS BIGINT)), count(*) - count(stats_max_value) "
            "FROM parquet_metadata($1) WHERE path_in_schema = 'ts' GROUP BY file_name",
            [files],
        ).fetchall():
            if lo is None or hi is None or missing:
                return None
            spans[str(name)] = (int(lo), int(hi))
        computed = set(without)
        grown = True
        while grown:
            grown = False
            for f in files:
                if f not in computed and any(
                    spans[f][0] <= spans[c][1] and spans[c][0] <= spans[f][1] for c in computed
                ):
                    computed.add(f)
                    grown = True
        # by events, not files: today's parts are many small files
        if sum(rows.get(f, 0) for f in computed) * 2 > sum(rows.values()):
            return None
        found = self.con.execute(
            "SELECT count(DISTINCT tz), count(*) FILTER (previous_visitor_id <> ''), "
            "any_value(tz) FROM read_parquet($1, union_by_name = true)",
            [sorted(computed)],
        ).fetchone()
        if not found or found[0] > 1 or found[1]:
            return None
        self._computed_tz = str(found[2] or self.site.tz)
        return computed

    def _file_facts(self) -> tuple[tuple[str, ...], bool, Source]:
        """The files' time zones, whether any event names a previous visitor id, and the
        source: the files that share no instant with another (Parquet statistics of `ts`) are
        read in row order without event ids, unless previous ids make owners differ from
        `visitor_id` (the order the files are sorted in); and whether every file holds visitor
        keys (files written before them do not, until compaction merges them)."""
        if self._facts is None:
            files = list(self.files)
            stats = self.con.execute(
                "SELECT file_name, path_in_schema, min(TRY_CAST(stats_min_value AS BIGINT)), "
                "max(TRY_CAST(stats_max_value AS BIGINT)), max(stats_max_value), "
                "count(*) - count(stats_max_value) FROM parquet_metadata($1) "
                "WHERE path_in_schema IN ('ts', 'previous_visitor_id') GROUP BY ALL",
                [files],
            ).fetchall()
            spans: dict[str, tuple[int, int]] = {}
            heirs = False
            for name, column, lo, hi, top, missing in stats:
                if column == "previous_visitor_id":
                    heirs = heirs or bool(missing) or top != ""
                elif not missing and lo is not None and hi is not None:
                    spans[name] = (int(lo), int(hi))
            if heirs:  # statistics may be absent or cut: ask the rows
                row = self.con.execute(
                    "SELECT count(*) FROM read_parquet($1) WHERE previous_visitor_id <> ''",
                    [files],
                ).fetchone()
                heirs = bool(row and row[0])
            tzs = tuple(
                str(r[0])
                for r in self.con.execute(
                    "SELECT DISTINCT tz FROM read_parquet($1)", [files]
                ).fetchall()
            ) or (self.site.tz,)
            alone = set() if heirs else _alone(spans)
            named: dict[str, set[str]] = {"visitor_key": set(), ADDED[0]: set()}
            for name, column in self.con.execute(
                "SELECT DISTINCT file_name, name FROM parquet_schema($1) WHERE name IN ($2, $3)",
                [files, *named],
            ).fetchall():
                named[str(column)].add(str(name))
            source = Source(
                "duckdb",
                tuple(f for f in self.files if f not in alone),
                ordered=tuple(f for f in self.files if f in alone),
                keyed=all(f in named["visitor_key"] for f in files),
                legacy=tuple(f for f in files if f not in named[ADDED[0]]),
            )
            self._facts = (tzs, heirs, source)
        return self._facts

    def rows(self, ask: Ask, span: DateRange) -> Rows:
        """Counters per (row value, unit) for a question."""
        if not self.files:
            return {}
        visits, computed = self.visit_files() if visits_answer(ask) else ((), ())
        found: list[Any] | None = None
        if visits:
            try:
                statement = visits_sql(self.site, ask, visits, computed, span, self._computed_tz)
                found = self.con.execute(*statement).fetchall()
            except Exception:  # a damaged visits file: the events answer
                log.warning("visits files unreadable: answered from events", exc_info=True)
        self.answered_by_visits = found is not None
        if found is None:
            tzs, heirs, source = self._file_facts()
            text, params = sql_for(self.site, ask, source, tzs, heirs, span=span)
            found = self.con.execute(text, params).fetchall()
        out: Rows = {}
        for kind, val, unit, a, b, c, e in found:
            cell = out.setdefault((str(val), int(unit)), {})
            if kind == "e":
                cell.update(events=int(a), pageviews=int(b))
                if c:
                    cell["visitors"] = int(c)
            elif kind == "v":
                cell.update(visits=int(a), bounces=int(b), duration_ms=int(e))
                if c:
                    cell["visitors"] = int(c)
            elif kind == "t":
                cell.update(top_n=int(a), top_ms=int(b))
            elif kind == "s":
                cell.update(sd_n=int(a), sd_sum=int(b))
        return out

    # -- totals over units ---------------------------------------------------------------------

    def _totals(
        self, filters: tuple[Filter, ...], metrics: Iterable[str], span: DateRange, interval: str
    ) -> dict[int, Cell]:
        """Counters per unit of everything the filters keep."""
        ask = Ask(filters, None, counters_for(metrics), units_of(span, interval))
        out: dict[int, Cell] = {}
        for (_, unit), cell in self.rows(ask, span).items():
            _add_into(out.setdefault(unit, {}), cell)
        return out

    def _denominator(self, query: Query, span: DateRange, interval: str) -> dict[int, Cell]:
        """Conversion rate's visitors: those the filters other than goals keep (Plausible's)."""
        others = tuple(f for f in query.filters if f.prop.kind != GOAL)
        return self._totals(others, (VISITORS,), span, interval)

    def aggregate(self, query: Query, compare: bool = False) -> dict[str, dict[str, Number | None]]:
        current = self._aggregate_values(query, query.span)
        previous = self._aggregate_values(query, previous_period(query.span)) if compare else None
        return compared(current, previous)

    def _aggregate_values(self, query: Query, span: DateRange) -> dict[str, Number]:
        row = _sum(self._totals(query.filters, query.metrics, span, "").values())
        site_visitors = 0
        if CONVERSION_RATE in query.metrics:
            site_visitors = _sum(self._denominator(query, span, "").values()).get("visitors", 0)
        return {m: compute(m, row, site_visitors) for m in query.metrics}

    def timeseries(self, query: Query, interval: str) -> list[dict[str, Number | str]]:
        span = query.span
        per_unit = self._totals(query.filters, query.metrics, span, interval)
        denominators = (
            self._denominator(query, span, interval) if CONVERSION_RATE in query.metrics else {}
        )
        out: list[dict[str, Number | str]] = []
        for label, units in _points(span, interval, self.site.tz):
            row = _sum(per_unit.get(u, {}) for u in units)
            site_visitors = _sum(denominators.get(u, {}) for u in units).get("visitors", 0)
            out.append(
                {"date": label, **{m: compute(m, row, site_visitors) for m in query.metrics}}
            )
        return out

    def breakdown(
        self, query: Query, prop: Property, limit: int = 100, page: int = 1
    ) -> tuple[list[dict[str, Number | str]], bool]:
        """Rows sorted by the first metric, descending, then by value; never folded."""
        span = query.span
        ask = Ask(query.filters, prop, counters_for(query.metrics), units_of(span))
        by_value: dict[str, Cell] = {}
        for (value, _), cell in self.rows(ask, span).items():
            _add_into(by_value.setdefault(value, {}), cell)
        if prop.kind == GOAL and self.site.goals:
            for goal in self.site.goals:  # configured goals are rows even without conversions
                if all(f.matches(goal) for f in query.filters if f.prop.kind == GOAL):
                    by_value.setdefault(goal, {})
        site_visitors = 0
        if CONVERSION_RATE in query.metrics:
            site_visitors = _sum(self._denominator(query, span, "").values()).get("visitors", 0)
        results: list[dict[str, Number | str]] = []
        for value, row in by_value.items():
            if not any(row.values()) and not (prop.kind == GOAL and self.site.goals):
                continue
            results.append(
                {prop.key: value, **{m: compute(m, row, site_visitors) for m in query.metrics}}
            )
        first = query.metrics[0]
        results.sort(key=lambda r: (-float(r[first]), str(r[prop.key])))
        start = (page - 1) * limit
        return results[start : start + limit], False


def _apart(spans: list[tuple[int | None, int | None]]) -> bool:
    """Whether the [first, last] spans meet nowhere (a span without statistics, a file without
    counted events, meets nothing)."""
    reach: int | None = None  # the latest end among the spans before
    for lo, hi in sorted((lo, hi) for lo, hi in spans if lo is not None and hi is not None):
        if reach is not None and reach >= lo:
            return False
        reach = hi if reach is None else max(reach, hi)
    return True


def _alone(spans: dict[str, tuple[int, int]]) -> set[str]:
    """The files whose [first ts, last ts] meets no other file's: no event of theirs is in
    another file (an event's copies are identical rows)."""
    alone: set[str] = set()
    ordered = sorted(spans.items(), key=lambda item: item[1])
    reach: int | None = None  # the latest end among the files before
    for i, (name, (lo, hi)) in enumerate(ordered):
        before = reach is not None and reach >= lo
        after = i + 1 < len(ordered) and ordered[i + 1][1][0] <= hi
        if not before and not after:
            alone.add(name)
        reach = hi if reach is None else max(reach, hi)
    return alone


def _add_into(into: Cell, cell: Cell) -> None:
    for name, value in cell.items():
        into[name] = into.get(name, 0) + value


def _sum(cells: Iterable[Cell]) -> Cell:
    out: Cell = {}
    for cell in cells:
        _add_into(out, cell)
    return out


def _points(span: DateRange, interval: str, tz: str) -> list[tuple[str, list[int]]]:
    """Each point's label and the units it adds up."""
    if interval == "hour":
        zone = _zone(tz)
        return [
            (hour.astimezone(zone).strftime("%Y-%m-%d %H:00:00"), [int(hour.timestamp() * 1000)])
            for day in span.each_day()
            for hour in local_hours(day, zone)
        ]
    if interval == "day":
        return [(d.isoformat(), [_day_number(d)]) for d in span.each_day()]
    months: dict[str, list[int]] = {}
    for segment in segments_of(span):
        if segment.granularity is Granularity.MONTH:
            month = date.fromisoformat(segment.first + "-01")
            while month.strftime("%Y-%m") <= segment.last:
                months[month.isoformat()] = [_day_number(month)]
                month = _month_end(month.strftime("%Y-%m")) + timedelta(days=1)
        else:
            first, last = date.fromisoformat(segment.first), date.fromisoformat(segment.last)
            day = first
            while day <= last:
                months.setdefault(day.replace(day=1).isoformat(), []).append(_day_number(day))
                day += timedelta(days=1)
    return list(months.items())


# ---- visits written at compaction (decision 0032) ----------------------------------------------

# the counters a visits file gives: no time on page, no scroll depth (engagement events)
VISITS_FILE_COUNTERS = frozenset({"visitors", "pageviews", "events", *VISIT_COUNTERS})
_VISIT_VALUES = ("entry_page", "exit_page")


def visits_answer(ask: Ask) -> bool:
    """Whether a question's shape is answered by visits files: session filters (first-event
    values, entry and exit page), no breakdown or a session property or the page, the counters
    of visits, pageviews, events and visitors, per day or month (not per hour)."""
    if ask.units.hourly or not ask.counters <= VISITS_FILE_COUNTERS:
        return False
    for f in ask.filters:
        if f.prop.kind != SESSION:
            return False
    prop = ask.prop
    return prop is None or prop.kind in (SESSION, PAGE)


class _VisitsBuilder(_Builder):
    """One statement over visits files (archive/visits.py) with the events statement's rows:
    fragments stitched into visits where one file's `tail` meets another's `head` within 30
    minutes, the session filters tested on each visit's first fragment, pageviews and events
    where their fragment's day is, visits where they start."""

    def __init__(self, site: Site, ask: Ask, con: Any = None) -> None:
        super().__init__(site, ask, Source("duckdb"), Zones(()), heirs=False)
        self.site_tzs: tuple[str, ...] = (site.tz,)
        self.con = con  # to read the computed files' schemas

    def build_visits(self, files: Sequence[str], computed: Sequence[str], span: DateRange) -> str:
        p, ask = self.p, self.ask
        ctes: list[tuple[str, str]] = []
        stored = f"read_parquet({p(list(files))})"
        if computed:  # days without their visits file: their fragments, as compaction makes them
            zone = Zones.over(self.site_tzs, span.first - timedelta(days=1), span.last)
            day = f"CAST(floor((ts + {zone.sql(p)}) / {DAY_MS}.0) AS BIGINT)"
            stored_keys = self.con is not None and keyed(self.con, computed)
            rows = events_sql(p(list(computed)), once=False, keyed=stored_keys)
            events = f"SELECT *, {day} AS d FROM ({rows}) x"
            ctes.append(("uf", fragments_sql(events, copies=True)))

        def source(columns: str, where: str) -> str:
            """Rows of the visits files and of the computed fragments (each branch filtered,
            so the filters reach the Parquet scan)."""
            rows = f"SELECT {columns} FROM {_renamed_all(stored)} WHERE {where}"
            return rows + (
                f" UNION ALL SELECT {columns} FROM {_renamed_all('uf')} WHERE {where}"
                if computed
                else ""
            )

        prop = ask.prop
        dims = sorted(
            {f.prop.dimension for f in self.session_filters}
            | ({prop.dimension} if prop is not None and prop.kind == SESSION else set())
        )
        values = [d for d in dims if d not in _VISIT_VALUES]
        cols = ["vid", "visitor_key", "d", "t0", "t1", "events", "pageviews", "active"]
        cols += ["entry_page", "exit_page", *values]
        kept = " AND ".join(
            ([self._first_event_test()] if self.first_event_filters else [])
            + [
                _match_sql(f.prop.dimension, f, p)
                for f in self.session_filters
                if f not in self.first_event_filters
            ]
        )
        keep = f" AND {kept}" if kept else ""
        if prop is None:
            val = "''"
        elif prop.kind == PAGE:
            val = "entry_page"
        elif prop.dimension in _VISIT_VALUES:
            val = prop.dimension
        else:
            val = f"NULLIF({prop.dimension}, '')"
        firsts = ", ".join(
            f"min_by({c}, CASE WHEN {c} IS NOT NULL THEN t0 END) AS {c}"
            if c == "entry_page"
            else f"max_by({c}, CASE WHEN {c} IS NOT NULL THEN t0 END) AS {c}"
            if c == "exit_page"
            else f"min_by({c}, t0) AS {c}"
            for c in ["entry_page", "exit_page", *values]
        )
        names = ", ".join(cols)
        over = "ORDER BY visitor_key, t0"
        ctes += [
            # a fragment that neither continues nor is continued is a visit (files apart in time)
            ("nc", source(f"{names}, {val} AS val", f"kind = 0 AND NOT head AND NOT tail{keep}")),
            ("cand", source(names, "kind = 0 AND (head OR tail)")),
            (
                "c1",
                "SELECT *, CASE WHEN coalesce(lag(visitor_key) OVER w = visitor_key AND "
                f"t0 - lag(t1) OVER w <= {GAP_MS}, FALSE) THEN 0 ELSE 1 END AS st FROM cand "
                f"WINDOW w AS ({over})",
            ),
            (
                "c2",
                f"SELECT *, sum(st) OVER ({over} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT "
                "ROW) AS isl FROM c1",
            ),
            (
                "roots",
                "SELECT isl, arbitrary(visitor_key) AS visitor_key, min_by(d, t0) AS d, "
                "min(t0) AS t0, max(t1) AS t1, sum(pageviews) AS pageviews, "
                f"bool_or(active) AS active, {firsts} FROM c2 GROUP BY isl",
            ),
            ("kr", f"SELECT *, {val} AS val FROM roots WHERE TRUE{keep}"),
            (
                "kf",  # the fragments of the kept visits, with their visit's row value
                "SELECT vid, visitor_key, d, events, pageviews, val FROM nc UNION ALL "
                "SELECT c2.vid, c2.visitor_key, c2.d, c2.events, c2.pageviews, kr.val "
                "FROM c2 JOIN kr ON kr.isl = c2.isl",
            ),
        ]
        visitors = "0" if self.visitors_by_visit else "count(DISTINCT visitor_key)"
        unit = self.unit("d", "", "")
        if prop is not None and prop.kind == PAGE:
            ctes.append(("pg", source("vid, page, pageviews", "kind = 1")))
            events = (
                f"SELECT 'e' AS kind, pg.page AS val, {unit} AS unit, sum(pg.pageviews) AS a, "
                f"sum(pg.pageviews) AS b, {visitors} AS c, 0 AS e FROM pg JOIN kf "
                f"ON kf.vid = pg.vid WHERE {self.in_range('d')} GROUP BY pg.page, {unit}"
            )
        else:
            events = (
                f"SELECT 'e' AS kind, val, {unit} AS unit, sum(events) AS a, "
                f"sum(pageviews) AS b, {visitors} AS c, 0 AS e FROM kf "
                f"WHERE {self.in_range('d')} AND val IS NOT NULL GROUP BY val, {unit}"
            )
        selects = [events]
        if self.visits or self.visitors_by_visit:
            ctes.append(
                (
                    "vq",
                    "SELECT visitor_key, d, t0, t1, pageviews, active, val FROM nc UNION ALL "
                    "SELECT visitor_key, d, t0, t1, pageviews, active, val FROM kr",
                )
            )
            by_visit = "count(DISTINCT visitor_key)" if self.visitors_by_visit else "0"
            selects.append(
                f"SELECT 'v' AS kind, val, {unit} AS unit, count(*) AS a, "
                "sum(CASE WHEN pageviews = 1 AND NOT active THEN 1 ELSE 0 END) AS b, "
                f"{by_visit} AS c, sum(t1 - t0) AS e FROM vq "
                f"WHERE {self.in_range('d')} AND val IS NOT NULL GROUP BY val, {unit}"
            )
        materialized = {"uf", "nc", "c2", "kr", "kf"}
        with_ = ",\n".join(
            f"{name} AS {'MATERIALIZED ' if name in materialized else ''}({body})"
            for name, body in ctes
        )
        return (
            f"WITH {with_}\nSELECT kind, val, unit, sum(a) AS a, sum(b) AS b, sum(c) AS c, "
            f"sum(e) AS e FROM ({' UNION ALL '.join(selects)}) r GROUP BY kind, val, unit"
        )


def _renamed_all(relation: str) -> str:
    """A DuckDB relation holding every session value, browser and OS renamed (decision 0034)."""
    renamed = ", ".join(f"{names.sql(c, c)} AS {c}" for c in names.TABLES)
    return f"(SELECT * REPLACE ({renamed}) FROM {relation})"


def visits_sql(
    site: Site,
    ask: Ask,
    files: Sequence[str],
    computed: Sequence[str] = (),
    span: DateRange | None = None,
    tz: str = "",
    con: Any = None,
) -> tuple[str, list[Any]]:
    """The statement over visits files, and the fragments of the events files `computed`
    (their one time zone `tz`: the site's when not said), for a question `visits_answer`
    accepts (DuckDB)."""
    builder = _VisitsBuilder(site, ask, con)
    builder.site_tzs = (tz or site.tz,)
    whole = span or DateRange(_day_of(ask.units.first), _day_of(ask.units.last))
    return builder.build_visits(files, computed, whole), builder.p.values
