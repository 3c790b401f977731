"""Where archived events live and what their Parquet files hold: the one contract between the
writer (the rollup tier), compaction, the archive engine, export and rebuild.

Objects: `events/<site>/<YYYY-MM-DD>/<name>.parquet`, the day being the site-local day of the
event's timestamp (`core.keys.bucket_label`), so a query reads the objects of its days only.

- `part-<digest>.parquet`: one rollup batch's events of that site and day. The digest is of the
  batch's sorted event ids, so a retried batch overwrites its own object; a batch cut differently
  on redelivery writes another object with some of the same events, which is why every reader
  de-duplicates by `event_id`.
- `compact-<digest>.parquet`: compaction's merge of a day's objects (digest of the merged names).
- `quarantine/<site>/<YYYY-MM-DD>/<name>`: an object that could not be read, moved aside.
- `events/<site>/visits/<YYYY-MM-DD>/v<VISITS_VERSION>-<events object's name>`: the visits of
  one events object of that day, written by compaction (archive/visits.py, decision 0032). Not
  under a day's prefix: readers of events never list them (`parse_key` gives None).

Every file holds an event id at most once, its rows sorted by (visitor_id, ts, event_id)
(archive/parquet.py writes them so): the engine reads a file that shares no instant with another
in row order, without event ids (decision 0028).

Columns are the raw event's fields (core/events.py) minus the correlation id (a request's, of
use to logs only); the visitor id is the one the event counts under (ingest decides, decision
0024); `previous_visitor_id` is kept for events stored before that, which the engine attributes
as the counters do. One column is derived, not an event field (DERIVED): `visitor_key`, the
visitor id as a number, computed by whoever writes a file (writer, compaction).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

PREFIX = "events"
QUARANTINE = "quarantine"
PART, COMPACT = "part", "compact"
VISITS = "visits"
# archive/visits.py's file format: a new one is written, an old one deleted. 2: region, city and
# channel among the session values.
VISITS_VERSION = 2

# (column, DuckDB type) in file order. Strings are never NULL: absent is "" as in RawEvent.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "VARCHAR"),
    ("site", "VARCHAR"),
    ("ts", "BIGINT"),  # server receive time, epoch milliseconds (UTC)
    ("name", "VARCHAR"),
    ("visitor_id", "VARCHAR"),
    # visitor_id as a number (derived, `visitor_key_sql`): the engine sorts, partitions and
    # counts visitors by it, a stored integer being ~14x cheaper to scan than the id decoded
    # (decision 0028). Files written before it lack it; compaction adds it.
    ("visitor_key", "UBIGINT"),
    ("tz", "VARCHAR"),
    ("previous_visitor_id", "VARCHAR"),
    ("hostname", "VARCHAR"),
    ("page", "VARCHAR"),
    ("referrer", "VARCHAR"),
    ("source", "VARCHAR"),
    ("utm_medium", "VARCHAR"),
    ("utm_source", "VARCHAR"),
    ("utm_campaign", "VARCHAR"),
    ("utm_content", "VARCHAR"),
    ("utm_term", "VARCHAR"),
    ("country", "VARCHAR"),
    # region, city, channel: files written before them lack them (read as "": ADDED)
    ("region", "VARCHAR"),
    ("city", "VARCHAR"),
    ("channel", "VARCHAR"),
    ("browser", "VARCHAR"),
    ("browser_version", "VARCHAR"),
    ("os", "VARCHAR"),
    ("os_version", "VARCHAR"),
    ("device", "VARCHAR"),
    ("interactive", "BOOLEAN"),
    ("internal", "BOOLEAN"),
    ("props", "MAP(VARCHAR, VARCHAR)"),
    ("revenue_amount", "VARCHAR"),
    ("revenue_currency", "VARCHAR"),
    ("scroll_depth", "INTEGER"),  # NULL: not sent
    ("engaged_ms", "BIGINT"),  # NULL: not sent
)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)
# Columns computed from the others when a file is written, not fields of an event: a reader of
# events ignores them, and a file without them is still an archive file.
DERIVED = ("visitor_key",)
# Event columns added after files were written without them: a file lacking them is still an
# archive file, its events read with "" there (readers: `with_added` and `read_sql`, or the
# engine's `Source.legacy`).
ADDED = ("region", "city", "channel")
EVENT_COLUMNS = tuple((name, kind) for name, kind in COLUMNS if name not in DERIVED)
EVENT_COLUMN_NAMES = tuple(name for name, _ in EVENT_COLUMNS)


def read_sql(name: str) -> str:
    """A column as a reader of `with_added` selects it: a missing ADDED column is NULL there,
    and an absent value "" as in RawEvent."""
    return f"coalesce({name}, '') AS {name}" if name in ADDED else name


def with_added(files: str) -> str:
    """A relation of the rows of `read_parquet(files)` (a SQL list or parameter) that has the
    ADDED columns whether or not any of the files holds them (NULL where one does not)."""
    empty = ", ".join(f"NULL::VARCHAR AS {name}" for name in ADDED)
    return (
        f"(SELECT * FROM (SELECT {empty} LIMIT 0) UNION ALL BY NAME "
        f"SELECT * FROM read_parquet({files}, union_by_name = true))"
    )


def visitor_key_sql(column: str = "visitor_id") -> str:
    """DuckDB SQL for a visitor id's key: the id's 64-bit number when it is 16 lowercase hex
    digits (ingest's BLAKE2b ids: one key per id), else the first 16 hex digits of the id's MD5
    (md5 is the same in every DuckDB version; DuckDB's hash() is not). Two ids share a key only
    if an MD5 prefix meets another id's 64 bits: about 1 in 10^7 for a million visitors a day."""
    return (
        f"CAST('0x' || CASE WHEN regexp_full_match({column}, '[0-9a-f]{{16}}') THEN {column} "
        f"ELSE md5({column})[1:16] END AS UBIGINT)"
    )


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class ObjectKey:
    site: str
    day: str  # YYYY-MM-DD, site-local
    name: str  # file name, with .parquet

    @property
    def key(self) -> str:
        return f"{day_prefix(self.site, self.day)}{self.name}"

    @property
    def compacted(self) -> bool:
        return self.name.startswith(COMPACT + "-")


def site_prefix(site: str) -> str:
    return f"{PREFIX}/{site}/"


def day_prefix(site: str, day: str) -> str:
    return f"{PREFIX}/{site}/{day}/"


def digest(parts: Iterable[str]) -> str:
    """A short stable digest of names or ids, order-independent."""
    h = hashlib.sha256()
    for part in sorted(parts):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def part_key(site: str, day: str, event_ids: Iterable[str]) -> ObjectKey:
    return ObjectKey(site, day, f"{PART}-{digest(event_ids)}.parquet")


def compact_key(site: str, day: str, merged_names: Iterable[str]) -> ObjectKey:
    return ObjectKey(site, day, f"{COMPACT}-{digest(merged_names)}.parquet")


def parse_key(key: str) -> ObjectKey | None:
    """An archive object's key back to its parts; None for anything else under the bucket."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != PREFIX or not _DAY.fullmatch(parts[2]):
        return None
    if not parts[3].endswith(".parquet"):
        return None
    return ObjectKey(parts[1], parts[2], parts[3])


def quarantine_key(key: str) -> str:
    return f"{QUARANTINE}/{key.removeprefix(PREFIX + '/')}"


@dataclass(frozen=True)
class VisitsKey:
    site: str
    day: str
    events_name: str  # the name of the events object whose visits the object holds
    version: int = VISITS_VERSION

    @property
    def key(self) -> str:
        return f"{visits_prefix(self.site)}{self.day}/v{self.version}-{self.events_name}"


def visits_prefix(site: str) -> str:
    return f"{PREFIX}/{site}/{VISITS}/"


def parse_visits_key(key: str) -> VisitsKey | None:
    """A visits object's key back to its parts; None for anything else."""
    parts = key.split("/")
    if len(parts) != 5 or parts[0] != PREFIX or parts[2] != VISITS or not _DAY.fullmatch(parts[3]):
        return None
    version, _, name = parts[4].partition("-")
    if not (version[:1] == "v" and version[1:].isdigit() and name.endswith(".parquet")):
        return None
    return VisitsKey(parts[1], parts[3], name, int(version[1:]))
