"""Importing a file into a site's history, listing and removing imports (decision 0035).

One rule decides which days an import answers for, Plausible's: a site's own (native) stats win
from the day they begin, and a day already covered by an earlier import stays that import's. So
an import never adds to a day that something else counts, and importing the same file again
finds its own id and changes nothing.

- Plausible's export is kept as daily tables (imports/store.py) and answered at query time
  (query_api/imported.py) when a caller asks for imported data.
- Umami's events are written into the event archive as ordinary daily parts, with ids derived
  from the rows (imports/umami.py), and the counters of their days are rebuilt from the archive
  (aggregator/rebuild.py, as `liveinsight rebuild --source archive`). Removing such an import
  rewrites those days without its events and rebuilds them again.

The native start is the earlier of the site's creation day and the first archived day that no
Umami import wrote: native events cannot be older than the site, except when history was
replayed into the archive (a rebuild, a re-added site), which then counts as native.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from archive import layout
from archive.store import day_of
from core.events import RawEvent
from core.sites import Site
from imports import plausible
from imports.errors import ImportRefused
from imports.formats import looks_like_umami
from imports.store import PLAUSIBLE, UMAMI, ImportStore, Manifest
from imports.tables import write_table

if TYPE_CHECKING:
    from archive.store import ArchiveStore

# Recount the site's counters of the local days first..last from the archive.
Recount = Callable[[date, date], object]
KINDS = (PLAUSIBLE, UMAMI)


def detect_kind(data: bytes, filename: str) -> str:
    if data[:4] == b"PK\x03\x04" or filename.lower().endswith(".zip"):
        return PLAUSIBLE
    if looks_like_umami(data):
        return UMAMI
    try:
        plausible.table_of(filename)
        return PLAUSIBLE
    except ImportRefused:
        pass
    raise ImportRefused(
        f"{filename}: neither Plausible's CSV export (a zip of imported_*.csv files, or one of "
        "them) nor Umami's website_event export (a CSV with session_id, created_at, url_path, "
        "event_type)"
    )


def import_id_of(site: str, kind: str, data: bytes) -> str:
    """An import's id: a digest of site, kind and bytes, so the same file twice is one import."""
    return hashlib.sha256(f"{site}\0{kind}\0".encode() + data).hexdigest()[:16]


def import_file(
    imports: ImportStore,
    site: Site,
    data: bytes,
    filename: str,
    now: datetime,
    recount: Recount,
    kind: str | None = None,
) -> tuple[Manifest, bool]:
    """Import the file; (its manifest, False when this very file was imported before)."""
    if not data:
        raise ImportRefused(f"{filename}: empty file")
    kind = kind or detect_kind(data, filename)
    if kind not in KINDS:
        raise ImportRefused(f"kind {kind!r}: use plausible or umami")
    import_id = import_id_of(site.domain, kind, data)
    earlier = imports.manifests(site.domain)
    for manifest in earlier:
        if manifest.id == import_id:
            return manifest, False
    start = native_start(imports.archive, site, earlier, now)
    taken = {day for m in earlier for day in _days_of(m.ranges)}
    base = dict(
        id=import_id,
        site=site.domain,
        filename=filename.rsplit("/", 1)[-1][:200],
        created_at=int(now.timestamp()),
        native_start=start.isoformat(),
    )
    if kind == PLAUSIBLE:
        manifest = _import_plausible(imports, data, filename, start, taken, base)
    else:
        manifest = _import_umami(imports, site, data, filename, start, taken, base)
        recount(date.fromisoformat(manifest.days[0]), date.fromisoformat(manifest.days[-1]))
    return manifest, True


def _import_plausible(
    imports: ImportStore,
    data: bytes,
    filename: str,
    start: date,
    taken: set[str],
    base: dict[str, object],
) -> Manifest:
    export = plausible.parse(data, filename)
    if not export.row_count:
        raise ImportRefused(f"{filename}: no rows")
    first, last = export.days
    kept = [d for d in _each_day(first, last) if d < start.isoformat() and d not in taken]
    if not kept:
        raise ImportRefused(_nothing_left(first, last, start))
    keep = set(kept)
    from archive import parquet

    con = parquet.connect()
    tables: dict[str, int] = {}
    dropped = 0
    with tempfile.TemporaryDirectory(prefix="li-import-") as tmp:
        for name, parsed in sorted(export.tables.items()):
            rows = [r for r in parsed.rows if r["date"] in keep]
            dropped += len(parsed.rows) - len(rows)
            path = Path(tmp) / f"{name}.parquet"
            write_table(con, parsed.table, rows, path)
            imports.put_file(str(base["site"]), str(base["id"]), name, path)
            tables[name] = len(rows)
    manifest = Manifest(
        kind=PLAUSIBLE,
        file_first=first,
        file_last=last,
        ranges=_ranges(kept),
        tables=tables,
        skipped={"rows of days already counted": dropped} if dropped else {},
        **base,  # type: ignore[arg-type]
    )
    imports.put_manifest(manifest)  # last: an import without its tables is never listed
    return manifest


def _import_umami(
    imports: ImportStore,
    site: Site,
    data: bytes,
    filename: str,
    start: date,
    taken: set[str],
    base: dict[str, object],
) -> Manifest:
    from imports import umami  # ingest's enrichment: the CLI's path, never the query function's

    export = umami.parse(data, filename, site.domain, site.tz)
    days = [day_of(e) for e in export.events]
    first, last = min(days), max(days)
    skipped = dict(export.skipped)
    kept: list[RawEvent] = []
    for event, day in zip(export.events, days, strict=True):
        if day >= start.isoformat():
            skipped["events on days with native stats"] = (
                skipped.get("events on days with native stats", 0) + 1
            )
        elif day in taken:
            skipped["events on days of an earlier import"] = (
                skipped.get("events on days of an earlier import", 0) + 1
            )
        else:
            kept.append(event)
    if not kept:
        raise ImportRefused(_nothing_left(first, last, start))
    from archive import parquet

    with tempfile.TemporaryDirectory(prefix="li-import-") as tmp:
        path = Path(tmp) / "events.parquet"
        parquet.write_events(kept, path)
        imports.put_file(site.domain, str(base["id"]), "events", path)
    imports.archive.write_batch(kept)
    written = sorted({day_of(e) for e in kept})
    manifest = Manifest(
        kind=UMAMI,
        file_first=first,
        file_last=last,
        ranges=_ranges(written),
        events=len({e.event_id for e in kept}),
        days=written,
        skipped=skipped,
        **base,  # type: ignore[arg-type]
    )
    imports.put_manifest(manifest)
    return manifest


def remove_import(imports: ImportStore, site: Site, import_id: str, recount: Recount) -> Manifest:
    """Delete the import: its tables, or (Umami) its events from the archive's days, whose
    counters are then rebuilt. The manifest goes last, so a failed removal can be run again."""
    manifest = imports.get(site.domain, import_id)
    if manifest.kind == UMAMI and manifest.days:
        files = imports.local_files(site.domain, [manifest.id], "events")
        if files:
            _without_events(imports.archive, site.domain, manifest.days, files[0])
    imports.delete(site.domain, manifest.id)
    if manifest.kind == UMAMI and manifest.days:
        recount(date.fromisoformat(manifest.days[0]), date.fromisoformat(manifest.days[-1]))
    return manifest


def _without_events(archive: ArchiveStore, site: str, days: list[str], events_file: Path) -> None:
    """Rewrite each day's objects without the import's events: one object of the rest (named
    as compaction names a merge), then the old ones deleted, as compaction does (decision 0027:
    a crash in between leaves copies, which readers de-duplicate, never a loss)."""
    from archive import parquet

    con = parquet.connect()
    removed = {e.event_id for e in parquet.read_events([events_file], con)}
    for day in days:
        objects = archive.objects(site, day, day)
        if not objects:
            continue
        files = archive.local_files(site, day, day, visits=False)
        events = [e for e in parquet.read_events(files, con) if e.event_id not in removed]
        names = [obj.key.name for obj in objects]
        if events:
            key = layout.compact_key(site, day, [*names, "without-import"])
            with tempfile.TemporaryDirectory(prefix="li-import-") as tmp:
                path = Path(tmp) / key.name
                parquet.write_events(events, path, con)
                archive.put_file(key, path)
        old = [obj.key.key for obj in objects]
        old += [layout.VisitsKey(site, day, name).key for name in names]
        archive.delete(old)


def native_start(
    archive: ArchiveStore, site: Site, manifests: Iterable[Manifest], now: datetime
) -> date:
    zone = ZoneInfo(site.tz)
    created = datetime.fromtimestamp(site.created_at, UTC) if site.created_at else now
    start = created.astimezone(zone).date()
    imported = {d for m in manifests if m.kind == UMAMI for d in m.days}
    for obj in archive.objects(site.domain):
        if obj.key.day not in imported:
            return min(start, date.fromisoformat(obj.key.day))
    return start


def _nothing_left(first: str, last: str, start: date) -> str:
    return (
        f"nothing to import: every day of the file ({first} to {last}) is counted already, "
        f"by the site's own stats (from {start.isoformat()}) or by an earlier import"
    )


def _each_day(first: str, last: str) -> list[str]:
    day, end, out = date.fromisoformat(first), date.fromisoformat(last), []
    while day <= end:
        out.append(day.isoformat())
        day += timedelta(days=1)
    return out


def _ranges(days: Iterable[str]) -> list[list[str]]:
    """Sorted days as inclusive [first, last] runs."""
    out: list[list[str]] = []
    for day in sorted(set(days)):
        if out and date.fromisoformat(out[-1][1]) + timedelta(days=1) == date.fromisoformat(day):
            out[-1][1] = day
        else:
            out.append([day, day])
    return out


def _days_of(ranges: list[list[str]]) -> list[str]:
    return [d for first, last in ranges for d in _each_day(first, last)]
