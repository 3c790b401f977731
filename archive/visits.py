"""Visits written at compaction (decision 0032): beside an archived day's events object, one
Parquet file of that day's visit fragments and their pages, so that the archive engine answers
the questions whose shape allows it from ~4 M visit rows instead of ~23 M events at 10 M
pageviews a month.

A **fragment** is a visit as the day's events alone show it: a visitor's counted
(non-engagement) events split at gaps over 30 minutes, in (visitor_key, ts, event_id) order, the
engine's order. A visit over midnight is two fragments in two days' files; the engine stitches
them (a day's file is a function of that day's events only, so compacting days in any order, or
a day again after a late event, never leaves another day's visits stale). To make stitching
cheap and exact, each fragment says whether it can continue one of another file or be continued
by one: `head` (its visitor's first fragment in the file, starting within 30 minutes of the
file's first counted event) and `tail` (the visitor's last, ending within 30 minutes of the
file's last counted event). When the files' spans of counted events do not meet, a fragment that
is neither starts and ends its visit (its neighbours in other files are over 30 minutes away).

One file holds two kinds of rows, in separate row groups (`kind` sorts them apart, and DuckDB
skips a row group by its statistics): kind 0, one row per fragment (visitor key, start, end,
its day, counted events, pageviews, whether a non-pageview interactive event happened, entry and
exit page, the first counted event's session values); kind 1, one row per (fragment, page) with
its pageviews. Fragments are numbered `vid` = day number x 2^32 + sequence, unique over days.

Objects: `events/<site>/visits/<day>/v<VERSION>-<events object's name>` (archive/layout.py):
under the archive's prefix (same IAM grants, lifecycle and purge), but not under a day's prefix,
so every events reader (export, rebuild, the engine's events path, the Glue table's partitions)
never sees them. Locally a visits file sits beside its events file as `<stem>.v<VERSION>.visits
.parquet` (`sidecar_path`): the engine finds it from the events file's path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from archive.layout import VISITS_VERSION, read_sql, visitor_key_sql, with_added
from core.vocabulary import SESSION_DIMENSIONS

VERSION = VISITS_VERSION
GAP_MS = 30 * 60 * 1000
EPOCH = date(1970, 1, 1)
VISIT, PAGE_ROW = 0, 1

# (column, DuckDB type) in file order
COLUMNS: tuple[tuple[str, str], ...] = (
    ("kind", "UTINYINT"),  # 0: a fragment, 1: a (fragment, page)
    ("vid", "BIGINT"),
    ("visitor_key", "UBIGINT"),
    ("d", "INTEGER"),  # the file's site-local day, days since 1970-01-01
    ("t0", "BIGINT"),  # first and last counted event, epoch ms
    ("t1", "BIGINT"),
    ("head", "BOOLEAN"),
    ("tail", "BOOLEAN"),
    ("events", "INTEGER"),  # counted events (kind 0)
    ("pageviews", "INTEGER"),  # of the fragment (kind 0), of the page (kind 1)
    ("active", "BOOLEAN"),  # a non-pageview event that is interactive (or says nothing)
    # an event names a previous visitor id (decision 0024): its owner may be another visitor,
    # which only the events path decides
    ("heirs", "BOOLEAN"),
    ("entry_page", "VARCHAR"),  # NULL: no pageview
    ("exit_page", "VARCHAR"),
    *((dim, "VARCHAR") for dim in SESSION_DIMENSIONS),
    ("page", "VARCHAR"),  # kind 1
)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)
SUFFIX = f".v{VERSION}.visits.parquet"


def day_number(day: str) -> int:
    return (date.fromisoformat(day) - EPOCH).days


def sidecar_path(events_file: str | Path) -> Path:
    """Where the visits file of a local events file is (beside it)."""
    path = Path(events_file)
    return path.with_name(path.name.removesuffix(".parquet") + SUFFIX)


def fragments_sql(events: str, day: int | None = None, copies: bool = False) -> str:
    """The statement of a day's visits file over `events`, a relation of the day's events each
    once (columns as archive/layout.py, `visitor_key` included). `day` None: the events hold
    several days, a column `d` says each one's (the archive engine's fragments of days without
    a visits file): fragments are cut at the days' ends too, `head` and `tail` are of each day,
    and `vid`s are negative (apart from the files' of the same day). `copies`: an event may be
    there more than once (identical rows, adjacent in the order): all but one are dropped in
    the same sort, cheaper than de-duplicating by id first."""
    dims = ", ".join(SESSION_DIMENSIONS)
    order = "visitor_key, ts, event_id"
    firsts = ", ".join(f"min_by({d}, rn) AS {d}" for d in SESSION_DIMENSIONS)
    nulls = ", ".join(f"NULL AS {d}" for d in SESSION_DIMENSIONS)
    d = f"{day}" if day is not None else "d"
    vid = f"{d}::BIGINT * 4294967296 + seq"
    vid = vid if day is not None else f"-1 - ({vid})"
    copy, once, ev = "", "", "ev"
    if copies:
        same = " AND ".join(
            f"lag({c}) OVER (ORDER BY {order}) = {c}" for c in ("visitor_key", "event_id")
        )
        copy = f",\n        coalesce({same}, FALSE) AS copy"
        once, ev = "\nev1 AS (SELECT * FROM ev WHERE NOT copy),", "ev1"
    return f"""
WITH ev AS (SELECT visitor_key, ts, event_id, {d}::INTEGER AS d, name = 'pageview' AS pv, page,
        interactive, previous_visitor_id <> '' AS heir,
        {dims}, row_number() OVER (ORDER BY {order}) AS rn{copy}
    FROM ({events}) e WHERE name <> 'engagement'),{once}
st AS (SELECT *, CASE WHEN coalesce(lag(visitor_key) OVER (ORDER BY rn) = visitor_key
        AND lag(d) OVER (ORDER BY rn) = d
        AND ts - lag(ts) OVER (ORDER BY rn) <= {GAP_MS}, FALSE) THEN 0 ELSE 1 END AS s FROM {ev}),
fr AS (SELECT *, sum(s) OVER (ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        AS seq FROM st),
span AS (SELECT d, min(ts) AS lo, max(ts) AS hi FROM {ev} GROUP BY d),
v AS (SELECT seq, arbitrary(d) AS d, arbitrary(visitor_key) AS visitor_key, min(ts) AS t0,
        max(ts) AS t1, count(*) AS events, sum(CASE WHEN pv THEN 1 ELSE 0 END) AS pageviews,
        coalesce(bool_or(NOT pv AND coalesce(interactive, TRUE)), FALSE) AS active,
        bool_or(heir) AS heirs,
        min_by(page, CASE WHEN pv THEN rn END) AS entry_page,
        max_by(page, CASE WHEN pv THEN rn END) AS exit_page,
        {firsts}
    FROM fr GROUP BY seq),
vv AS (SELECT v.*,
        seq = min(seq) OVER (PARTITION BY visitor_key, v.d) AND t0 < span.lo + {GAP_MS} AS head,
        seq = max(seq) OVER (PARTITION BY visitor_key, v.d) AND t1 > span.hi - {GAP_MS} AS tail
    FROM v JOIN span ON span.d = v.d)
SELECT 0::UTINYINT AS kind, {vid} AS vid, visitor_key,
    d::INTEGER AS d, t0, t1, head, tail, events::INTEGER AS events,
    pageviews::INTEGER AS pageviews, active, heirs, entry_page, exit_page, {dims},
    NULL::VARCHAR AS page
FROM vv
UNION ALL
SELECT 1::UTINYINT, {vid}, arbitrary(visitor_key), d::INTEGER,
    NULL, NULL, NULL, NULL, NULL, count(*)::INTEGER, NULL, NULL, NULL, NULL, {nulls},
    page
FROM fr WHERE pv GROUP BY seq, d, page
"""


def events_sql(sources: str, once: bool = True, keyed: bool = False) -> str:
    """The events columns a visits file is made of, from `read_parquet` of `sources` (a SQL
    list or parameter): the visitor key as stored when every file has it (`keyed`), else
    computed (a file written before it lacks it), copies of an event dropped (`once`)."""
    dims = ", ".join(map(read_sql, SESSION_DIMENSIONS))  # a file may predate some (ADDED)
    dedupe = "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY ts) = 1" if once else ""
    key = "visitor_key" if keyed else f"{visitor_key_sql()} AS visitor_key"
    return (
        f"SELECT {key}, ts, event_id, name, page, interactive, tz, "
        f"coalesce(previous_visitor_id, '') AS previous_visitor_id, {dims} "
        f"FROM {with_added(sources)} {dedupe}"
    )


def _quoted(path: str | Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def keyed(con: Any, sources: Sequence[str | Path]) -> bool:
    """Whether every file holds `visitor_key` (files written before it do not)."""
    found = con.execute(
        "SELECT count(DISTINCT file_name) FROM parquet_schema($1) WHERE name = 'visitor_key'",
        [[str(s) for s in sources]],
    ).fetchone()
    return bool(found) and found[0] == len(set(map(str, sources)))


def write_visits(
    sources: Sequence[str | Path], day: str, path: str | Path, con: Any | None = None
) -> int:
    """Write the visits file of a day's events files (each event id once) to `path`; returns
    its fragment count."""
    from archive.parquet import PARQUET_OPTIONS, connect

    con = con or connect()
    files = "[" + ", ".join(_quoted(s) for s in sources) + "]"
    # an archive file holds an event id once: one file needs no de-duplication
    events = events_sql(files, once=len(sources) > 1, keyed=keyed(con, sources))
    con.execute(
        f"COPY ({fragments_sql(events, day_number(day))} ORDER BY kind, vid, page) "
        f"TO {_quoted(path)} ({PARQUET_OPTIONS})"
    )
    row = con.execute(
        f"SELECT count(*) FROM read_parquet({_quoted(path)}) WHERE kind = 0"
    ).fetchone()
    return int(row[0]) if row else 0
