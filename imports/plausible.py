"""Plausible's CSV export: a zip of per-table daily CSVs (`imported_visitors_20240101_20241231.csv`,
`imported_sources_…`, …), or one such CSV alone, parsed and checked into daily tables.

Each table has a `date` column, the table's dimension columns and its counters (Plausible's
`imported_*` tables). A missing counter column reads as 0 (older exports lack `pageviews` in some
tables); a missing date or dimension column, a bad date or a negative or non-integer count is an
`ImportError` naming the file, line and column. Sizes are bounded: the archive's members, their
uncompressed bytes and the rows.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from imports.errors import ImportRefused

MAX_MEMBERS = 64
MAX_UNCOMPRESSED_BYTES = 512 * 1024 * 1024
MAX_ROWS = 2_000_000  # all tables together
MAX_VALUE_LENGTH = 2000  # as ingest's dimensions

DIRECT = "Direct / None"


@dataclass(frozen=True)
class Table:
    name: str  # without the `imported_` prefix: "sources"
    dimensions: tuple[str, ...]  # our names, in file order
    counters: tuple[str, ...]  # our names
    # the file's column → ours, where Plausible's name differs
    renamed: dict[str, str] = field(default_factory=dict)


# Counters, our names: visitors, visits, pageviews, bounces, visit_duration (seconds, summed over
# the day's visits), events. Entrances and exits are the visits entering / leaving on a page.
TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table("visitors", (), ("visitors", "pageviews", "bounces", "visits", "visit_duration")),
        Table(
            "sources",
            (
                "source",
                "referrer",
                "utm_source",
                "utm_medium",
                "utm_campaign",
                "utm_content",
                "utm_term",
            ),
            ("visitors", "visits", "visit_duration", "bounces", "pageviews"),
        ),
        Table("pages", ("hostname", "page"), ("visitors", "visits", "pageviews")),
        Table(
            "entry_pages",
            ("entry_page",),
            ("visitors", "visits", "visit_duration", "bounces", "pageviews"),
            {"entrances": "visits"},
        ),
        Table(
            "exit_pages",
            ("exit_page",),
            ("visitors", "visits", "visit_duration", "bounces", "pageviews"),
            {"exits": "visits"},
        ),
        Table(
            "locations",
            ("country", "region", "city"),
            ("visitors", "visits", "visit_duration", "bounces", "pageviews"),
        ),
        Table(
            "devices", ("device",), ("visitors", "visits", "visit_duration", "bounces", "pageviews")
        ),
        Table(
            "browsers",
            ("browser", "browser_version"),
            ("visitors", "visits", "visit_duration", "bounces", "pageviews"),
        ),
        Table(
            "operating_systems",
            ("os", "os_version"),
            ("visitors", "visits", "visit_duration", "bounces", "pageviews"),
            {"operating_system": "os", "operating_system_version": "os_version"},
        ),
        Table("custom_events", ("name", "link_url", "path"), ("visitors", "events")),
    )
}
# Dimension columns an older export may lack: read as "".
OPTIONAL_DIMENSIONS = {
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "browser_version",
    "os_version",
    "hostname",
    "link_url",
    "path",
    "region",
    "city",
}

_NAME = re.compile(r"^(?:imported_)?([a-z_]+?)_(\d{8})_(\d{8})\.csv$")


@dataclass
class ParsedTable:
    table: Table
    rows: list[dict[str, str | int]]  # {"date": "2024-01-01", "source": "Google", "visitors": 3}


@dataclass
class PlausibleExport:
    tables: dict[str, ParsedTable]

    @property
    def days(self) -> tuple[str, str]:
        found = [str(r["date"]) for t in self.tables.values() for r in t.rows]
        return min(found), max(found)

    @property
    def row_count(self) -> int:
        return sum(len(t.rows) for t in self.tables.values())


def table_of(filename: str) -> Table:
    base = filename.rsplit("/", 1)[-1]
    match = _NAME.match(base)
    if not match or match.group(1) not in TABLES:
        raise ImportRefused(
            f"{base}: not a Plausible export table (expected a name like "
            "imported_visitors_20240101_20241231.csv)"
        )
    return TABLES[match.group(1)]


def parse(data: bytes, filename: str) -> PlausibleExport:
    """A zip of the export's CSVs, or one CSV named as in the export."""
    if data[:4] == b"PK\x03\x04" or filename.lower().endswith(".zip"):
        return PlausibleExport(dict(_from_zip(data)))
    table = table_of(filename)
    parsed = _parse_csv(table, _text(data, filename), filename, 0)
    return PlausibleExport({table.name: parsed})


def _from_zip(data: bytes) -> Iterator[tuple[str, ParsedTable]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, ValueError, OSError):
        raise ImportRefused("not a readable zip file") from None
    csvs = [m for m in members if m.filename.lower().endswith(".csv")]
    if not csvs:
        raise ImportRefused("the zip holds no CSV files: is it Plausible's CSV export?")
    if len(members) > MAX_MEMBERS:
        raise ImportRefused(f"the zip holds {len(members)} files, more than {MAX_MEMBERS}")
    if sum(m.file_size for m in csvs) > MAX_UNCOMPRESSED_BYTES:
        raise ImportRefused(f"the zip's CSVs exceed {MAX_UNCOMPRESSED_BYTES:,} bytes uncompressed")
    rows = 0
    seen: dict[str, ParsedTable] = {}
    for member in csvs:
        table = table_of(member.filename)
        try:
            with archive.open(member) as handle:
                # read at most the declared size (+1): a lying header cannot inflate past it
                raw = handle.read(member.file_size + 1)
        except (zipfile.BadZipFile, OSError, RuntimeError, EOFError) as exc:
            raise ImportRefused(f"{member.filename}: unreadable in the zip ({exc})") from None
        parsed = _parse_csv(table, _text(raw, member.filename), member.filename, rows)
        rows += len(parsed.rows)
        if table.name in seen:  # an export split over several files of one table
            seen[table.name].rows.extend(parsed.rows)
        else:
            seen[table.name] = parsed
    if "visitors" not in seen:
        raise ImportRefused(
            "the export has no imported_visitors table: the totals would be missing"
        )
    yield from seen.items()


def _text(data: bytes, filename: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused(f"{filename}: not UTF-8 text") from None


def _parse_csv(table: Table, text: str, filename: str, rows_before: int) -> ParsedTable:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ImportRefused(f"{filename}: empty file") from None
    except csv.Error as exc:
        raise ImportRefused(f"{filename}: not CSV ({exc})") from None
    columns = {table.renamed.get(h, h): i for i, h in enumerate(header)}
    needed = ["date", *(d for d in table.dimensions if d not in OPTIONAL_DIMENSIONS), "visitors"]
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ImportRefused(f"{filename}: missing column(s) {', '.join(missing)}")
    out: list[dict[str, str | int]] = []
    try:
        for line, record in enumerate(reader, start=2):
            if not record or record == [""]:
                continue
            if rows_before + len(out) >= MAX_ROWS:
                raise ImportRefused(f"more than {MAX_ROWS:,} rows: import it in parts")
            out.append(_row(table, columns, record, filename, line))
    except csv.Error as exc:
        raise ImportRefused(f"{filename}: not CSV ({exc})") from None
    return ParsedTable(table, out)


def _row(
    table: Table, columns: dict[str, int], record: list[str], filename: str, line: int
) -> dict[str, str | int]:
    def cell(name: str) -> str:
        index = columns.get(name)
        return record[index].strip() if index is not None and index < len(record) else ""

    day = cell("date")
    try:
        date.fromisoformat(day)
        if len(day) != 10:
            raise ValueError
    except ValueError:
        raise ImportRefused(
            f"{filename} line {line}: date {day[:40]!r} is not YYYY-MM-DD"
        ) from None
    row: dict[str, str | int] = {"date": day}
    for name in table.dimensions:
        value = cell(name)
        if len(value) > MAX_VALUE_LENGTH:
            raise ImportRefused(f"{filename} line {line}: {name} longer than {MAX_VALUE_LENGTH}")
        if name == "source" and not value:
            value = DIRECT  # Plausible exports direct traffic as an empty source
        row[name] = value
    for name in table.counters:
        raw = cell(name)
        try:
            number = int(raw) if raw else 0
        except ValueError:
            raise ImportRefused(
                f"{filename} line {line}: {name} {raw[:40]!r} is not a whole number"
            ) from None
        if not 0 <= number < 2**53:
            raise ImportRefused(f"{filename} line {line}: {name} {number} is out of range")
        row[name] = number
    return row
