"""Raw events to Parquet and back, with DuckDB (no pyarrow): the only code that writes an
archive file's bytes.

Events go to DuckDB as newline-delimited JSON read with the archive's column types
(archive/layout.py): about 10 ms for 1,000 events, where row-by-row inserts take 0.8 s.
Every file holds an event id once, its rows sorted by (visitor_id, ts, event_id): a visitor's
events sit together, so the repeated visitor id and session values compress to runs; and the
archive engine reads a file that shares no instant with another in row order, without event ids
(the row order is the id order among a visitor's events at one instant).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from archive.layout import (
    ADDED,
    COLUMN_NAMES,
    COLUMNS,
    DERIVED,
    EVENT_COLUMN_NAMES,
    EVENT_COLUMNS,
    read_sql,
    visitor_key_sql,
    with_added,
)
from core.events import RawEvent

SORT = "visitor_id, ts, event_id"
PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880"


MEMORY_SHARE = 0.6  # of the function's memory: the rest is Python, the runtime and the cache


def memory_limit_mb() -> int:
    """DuckDB's memory limit: a share of the Lambda function's memory (2,048 MB, the query
    function's, where Lambda does not say), so that a big sort spills to disk instead of the
    function being killed."""
    try:
        function_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048"))
    except ValueError:
        function_mb = 2048
    return max(128, int(function_mb * MEMORY_SHARE))


def connect() -> Any:
    """An in-memory DuckDB that never downloads an extension (json and parquet are built in),
    on one thread, spilling to the temporary directory (/tmp on Lambda) past its memory limit."""
    import duckdb  # imported on first use: only the archive's paths pay for it

    return duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "threads": 1,
            "memory_limit": f"{memory_limit_mb()}MiB",
            "temp_directory": os.path.join(tempfile.gettempdir(), "duckdb-spill"),
        }
    )


def _row(event: RawEvent) -> dict[str, Any]:
    values = asdict(event)
    return {name: values[name] if values[name] is not None else None for name in EVENT_COLUMN_NAMES}


def _columns_sql() -> str:
    return "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in EVENT_COLUMNS) + "}"


def _selected() -> str:
    """The file's columns in layout order, the derived ones computed from the event's."""
    return ", ".join(
        f"{visitor_key_sql()} AS visitor_key" if name == "visitor_key" else read_sql(name)
        for name in COLUMN_NAMES
    )


def _quoted(path: str | Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def write_events(events: Iterable[RawEvent], path: str | Path, con: Any | None = None) -> int:
    """Write the events to one Parquet file at `path`, each event id once (the first);
    returns how many rows it holds."""
    con = con or connect()
    with tempfile.TemporaryDirectory(prefix="li-parquet-") as tmp:
        source = os.path.join(tmp, "events.jsonl")
        count = 0
        seen: set[str] = set()
        with open(source, "w", encoding="utf-8") as out:
            for event in events:
                if event.event_id in seen:
                    continue
                seen.add(event.event_id)
                out.write(json.dumps(_row(event), ensure_ascii=False))
                out.write("\n")
                count += 1
        con.execute(
            f"COPY (SELECT {_selected()} FROM read_json({_quoted(source)}, "
            f"format='newline_delimited', columns={_columns_sql()}) ORDER BY {SORT}) "
            f"TO {_quoted(path)} ({PARQUET_OPTIONS})"
        )
    return count


def merge_files(sources: Sequence[str | Path], path: str | Path, con: Any | None = None) -> int:
    """One Parquet file of the sources' events, each event id once; returns its row count.
    Derived columns are computed afresh from the event's columns, never read: a merge gives
    files written before them those columns (DuckDB reads the named columns of files that
    differ in others); columns ADDED since a file was written are "" in its events."""
    con = con or connect()
    files = "[" + ", ".join(_quoted(s) for s in sources) + "]"
    con.execute(
        f"COPY (SELECT {_selected()} FROM {with_added(files)} "
        f"QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY ts) = 1 "
        f"ORDER BY {SORT}) TO {_quoted(path)} ({PARQUET_OPTIONS})"
    )
    row = con.execute(f"SELECT count(*) FROM read_parquet({_quoted(path)})").fetchone()
    return int(row[0]) if row else 0


def read_events(sources: Sequence[str | Path], con: Any | None = None) -> list[RawEvent]:
    """The files' events as RawEvents, each event id once, sorted by (ts, event_id)."""
    if not sources:
        return []
    con = con or connect()
    files = "[" + ", ".join(_quoted(s) for s in sources) + "]"
    cursor = con.execute(
        f"SELECT {', '.join(map(read_sql, EVENT_COLUMN_NAMES))} "
        f"FROM {with_added(files)} "
        f"QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY ts) = 1 "
        f"ORDER BY ts, event_id"
    )
    out = []
    for row in cursor.fetchall():
        values = dict(zip(EVENT_COLUMN_NAMES, row, strict=True))
        values["props"] = dict(values["props"] or {})
        values["previous_visitor_id"] = values["previous_visitor_id"] or None
        out.append(RawEvent(**values))
    return out


def schema_problem(path: str | Path, con: Any | None = None) -> str | None:
    """Why the file is not an archive file (unreadable, or a column missing or of another type),
    or None. Reads the footer and the event ids, the column every reader needs. A derived
    column may be missing (a file written before it), not of another type."""
    con = con or connect()
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({_quoted(path)})").fetchall()
        con.execute(f"SELECT count(event_id) FROM read_parquet({_quoted(path)})").fetchall()
    except Exception as exc:  # any DuckDB error: the bytes are not a Parquet file we can read
        return f"unreadable: {exc}"
    types = {row[0]: row[1] for row in described}
    for name, kind in COLUMNS:
        if (name in DERIVED or name in ADDED) and name not in types:
            continue
        if types.get(name) != kind:
            return f"column {name}: {types.get(name) or 'missing'}, not {kind}"
    return None
