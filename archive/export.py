"""Raw events of a site's days out of the archive, as Parquet or CSV (`liveinsight export`, the
admin export endpoint).

Each event once (de-duplicated by id), in time order, with the archive's event columns (archive/
layout.py; not the derived `visitor_key`, the engine's number for `visitor_id`, which says
nothing more and which files written before it lack): no IP address or user agent exists in
them to leak. Parquet is the archive's own
types; CSV has a header, props as JSON text, and a text cell that a spreadsheet would run as a
formula written with a leading `'`, as the dashboard's CSVs do (OWASP: CSV injection).
"""

from __future__ import annotations

import re
import tempfile
from datetime import date
from pathlib import Path

from archive import parquet
from archive.layout import EVENT_COLUMNS, read_sql, with_added
from archive.store import ArchiveStore

FORMATS = ("parquet", "csv")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class ExportError(ValueError):
    """A request the export cannot answer: an unknown format, or not a range of days."""


def _day(value: date | str) -> str:
    text = value.isoformat() if isinstance(value, date) else str(value)
    try:
        if not _DAY.fullmatch(text):
            raise ValueError(text)
        date.fromisoformat(text)
    except ValueError:
        raise ExportError(f"{text[:40]!r} is not a day (YYYY-MM-DD)") from None
    return text


def _quoted(text: str | Path) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _source(files: list[Path]) -> str:
    """The days' events, each id once, in time order; no files: none, with the same columns."""
    if not files:
        empty = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in EVENT_COLUMNS)
        return f"SELECT {empty} WHERE false"
    names = ", ".join(read_sql(name) for name, _ in EVENT_COLUMNS)
    listed = "[" + ", ".join(_quoted(f) for f in files) + "]"
    return (
        f"SELECT {names} FROM {with_added(listed)} "
        "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY ts) = 1 "
        "ORDER BY ts, event_id"
    )


def _csv_columns() -> str:
    columns = []
    for name, kind in EVENT_COLUMNS:
        if name == "props":
            columns.append("CAST(to_json(props) AS VARCHAR) AS props")
        elif kind == "VARCHAR":
            columns.append(
                f"CASE WHEN regexp_matches({name}, '^[-=+@\\t\\r]') "
                f"THEN '''' || {name} ELSE {name} END AS {name}"
            )
        else:
            columns.append(name)
    return ", ".join(columns)


def export_to(
    store: ArchiveStore,
    site: str,
    first: date | str,
    last: date | str,
    fmt: str,
    path: str | Path,
) -> int:
    """Write the site's events of the days first..last (site-local, inclusive) to `path`; how
    many events."""
    first_day, last_day = _day(first), _day(last)
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt[:20]!r}: one of {', '.join(FORMATS)}")
    if first_day > last_day:
        raise ExportError(f"{first_day} is after {last_day}")
    con = parquet.connect()
    source = _source(store.local_files(site, first_day, last_day, visits=False))
    if fmt == "parquet":
        query, options = source, parquet.PARQUET_OPTIONS
    else:
        query, options = f"SELECT {_csv_columns()} FROM ({source})", "FORMAT csv, HEADER true"
    con.execute(f"COPY ({query}) TO {_quoted(path)} ({options})")
    row = con.execute(f"SELECT count(*) FROM ({source})").fetchone()
    return int(row[0]) if row else 0


def export(store: ArchiveStore, site: str, first: date | str, last: date | str, fmt: str) -> bytes:
    """As `export_to`, the file's bytes (for an HTTP response: keep its range small)."""
    with tempfile.TemporaryDirectory(prefix="li-export-") as tmp:
        path = Path(tmp) / f"events.{fmt if fmt in FORMATS else 'out'}"
        export_to(store, site, first, last, fmt, path)
        return path.read_bytes()
