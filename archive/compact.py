"""Compaction: a site-day's objects merged into one, and a site's retention applied.

Why it is safe (decision 0027):
- Idempotent: a day with at most one object has nothing to do. A merge is named by the names it
  merged (`compact-<digest>`), so the same inputs give the same key and the same bytes.
- Beside a write: only the objects of the listing taken at the start are merged and then deleted.
  An object put after the listing is neither, and is merged by the next run. An object of the
  listing re-put meanwhile (a retried batch) has the same name, hence the same events, which the
  merge holds: deleting it loses nothing.
- Run twice at once: both merge what they listed. If one deletes an object the other still has to
  read, the other fails that day and deletes nothing; otherwise two compact objects overlap for a
  while, which readers de-duplicate and the next run merges.
- Deletion comes last, after the merge is stored: a run that dies half-way leaves duplicates
  (harmless), never a loss.
- An object that is not an archive file is moved to the quarantine prefix, and the rest of the
  day is merged without it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from archive import layout, parquet, visits
from archive.store import ArchiveStore, StoredObject
from core.observability import logger
from core.sites import DEFAULT_RETENTION_MONTHS

log = logger("archive")


@dataclass
class DayResult:
    site: str
    day: str
    merged: list[str] = field(default_factory=list)  # the keys merged, deleted after the merge
    written: str = ""  # the compact object's key
    quarantined: list[str] = field(default_factory=list)
    events: int = 0
    visits: str = ""  # the visits object's key written (archive/visits.py)


def _put_visits(
    store: ArchiveStore, site: str, day: str, events_name: str, events_path: Path, con: object
) -> str:
    """Write the visits object of one events object of the day from its local file."""
    key = layout.VisitsKey(site, day, events_name)
    path = events_path.with_name(events_path.stem + "-visits.parquet")
    visits.write_visits([events_path], day, path, con)
    store.put_bytes_file(key.key, path)
    return key.key


def visits_of_day(
    store: ArchiveStore,
    site: str,
    day: str,
    objects: list[StoredObject],
    written: dict[str, tuple[layout.VisitsKey, str]],
) -> tuple[str, list[str]]:
    """Keep a day's visits objects in step with its events objects: the visits of its one
    object written when missing (a day compacted before visits were, or never merged: one part),
    and every other visits object of the day deleted (of objects merged away, of an old
    version). Returns (the key written or "", the keys deleted)."""
    keep = ""
    put = ""
    if len(objects) == 1:
        keep = layout.VisitsKey(site, day, objects[0].key.name).key
        if keep not in written:
            con = parquet.connect()
            with tempfile.TemporaryDirectory(prefix="li-visits-") as tmp:
                path = Path(tmp) / objects[0].key.name
                store.download(objects[0].key.key, path)
                if parquet.schema_problem(path, con) is None:  # a poison object: no visits
                    put = _put_visits(store, site, day, objects[0].key.name, path, con)
    stale = [key for key, (parts, _) in written.items() if parts.day == day and key != keep]
    store.delete(stale)
    return put, stale


def compact_day(
    store: ArchiveStore, site: str, day: str, listed: list[StoredObject] | None = None
) -> DayResult:
    """Merge the day's objects (those listed now, or `listed`) into one compact object, then delete
    exactly the objects merged."""
    result = DayResult(site, day)
    objects = listed if listed is not None else store.objects(site, day, day)
    if len(objects) <= 1:
        return result
    con = parquet.connect()
    with tempfile.TemporaryDirectory(prefix="li-compact-") as tmp:
        readable: list[tuple[StoredObject, Path]] = []
        for index, obj in enumerate(objects):
            path = Path(tmp) / f"{index}.parquet"
            store.download(obj.key.key, path)
            problem = parquet.schema_problem(path, con)
            if problem is None:
                readable.append((obj, path))
                continue
            result.quarantined.append(store.quarantine(obj.key.key))
            log.warning(
                "archive object quarantined",
                extra={"key": obj.key.key, "problem": problem[:300]},
            )
        if len(readable) <= 1:  # only one readable object left: nothing to merge
            return result
        names = [obj.key.name for obj, _ in readable]
        target = layout.compact_key(site, day, names)
        merged_path = Path(tmp) / "merged.parquet"
        result.events = parquet.merge_files([path for _, path in readable], merged_path, con)
        store.put_file(target, merged_path)
        # its visits before the merged objects go: a reader meanwhile sees parts without
        # visits and answers from events
        result.visits = _put_visits(store, site, day, target.name, merged_path, con)
    result.written = target.key
    result.merged = [obj.key.key for obj, _ in readable if obj.key.key != target.key]
    store.delete(result.merged)
    return result


def expired_before(today: date, retention_months: int) -> str:
    """The first day kept (YYYY-MM-DD) when `retention_months` months are kept up to `today`:
    the same day of the month that many months earlier (the month's last day if it is shorter)."""
    months = today.year * 12 + today.month - 1 - retention_months
    year, month = divmod(months, 12)
    month += 1
    for day in (today.day, 30, 29, 28):
        try:
            return date(year, month, day).isoformat()
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has a 28th")


def apply_retention(
    store: ArchiveStore,
    site: str,
    retention_months: int,
    tz: str,
    now: datetime,
    objects: list[StoredObject] | None = None,
) -> list[str]:
    """Delete the site's objects of days before its retention window, in the site's time zone;
    the keys deleted (quarantined objects of those days too)."""
    first_kept = expired_before(now.astimezone(ZoneInfo(tz)).date(), retention_months)
    listed = objects if objects is not None else store.objects(site)
    expired = [obj.key.key for obj in listed if obj.key.day < first_kept]
    expired += [
        key for key, (parts, _) in store.visit_objects(site).items() if parts.day < first_kept
    ]
    # quarantine/<site>/<day>/<name>
    expired += [key for key in store.quarantined(site) if key.split("/")[2] < first_kept]
    store.delete(expired)
    return expired


@dataclass
class RunReport:
    sites: int = 0
    days_compacted: int = 0
    objects_merged: int = 0
    objects_expired: int = 0
    visits_written: int = 0
    visits_deleted: int = 0
    quarantined: list[str] = field(default_factory=list)
    failed_days: list[str] = field(default_factory=list)
    unfinished: bool = False  # out of time: the next run goes on

    def summary(self) -> dict[str, object]:
        return {
            "sites": self.sites,
            "days_compacted": self.days_compacted,
            "objects_merged": self.objects_merged,
            "objects_expired": self.objects_expired,
            "visits_written": self.visits_written,
            "visits_deleted": self.visits_deleted,
            "quarantined": self.quarantined,
            "failed_days": self.failed_days,
            "unfinished": self.unfinished,
        }


def compact_all(
    store: ArchiveStore,
    retention: dict[str, tuple[int, str]],
    now: datetime,
    out_of_time: Callable[[], bool] = lambda: False,
    default_retention: int = DEFAULT_RETENTION_MONTHS,
) -> RunReport:
    """One scheduled run: for every site with archive objects, its retention (`retention`:
    domain → (months, time zone); a site without a record, removed, keeps the default), then every
    day with more than one object compacted, today's too (the dashboard's default period reads it
    most). A day that fails is logged and left to the next run."""
    report = RunReport()
    for site in store.sites():
        report.sites += 1
        months, tz = retention.get(site, (default_retention, "UTC"))
        objects = store.objects(site)
        expired = set(apply_retention(store, site, months, tz, now, objects))
        report.objects_expired += len(expired)
        written = {k: v for k, v in store.visit_objects(site).items() if k not in expired}
        days: dict[str, list[StoredObject]] = {}
        for obj in objects:
            if obj.key.key not in expired:
                days.setdefault(obj.key.day, []).append(obj)
        for parts, _ in written.values():  # visits of a day whose events are gone
            days.setdefault(parts.day, [])
        for day, listed in sorted(days.items()):
            one = len(listed) == 1 and layout.VisitsKey(site, day, listed[0].key.name).key
            stale = [k for k, (p, _) in written.items() if p.day == day and k != one]
            if len(listed) <= 1 and (not listed or one in written) and not stale:
                continue  # nothing to merge, its visits in step
            if out_of_time():
                report.unfinished = True
                return report
            try:
                if len(listed) > 1:
                    done = compact_day(store, site, day, listed)
                    report.quarantined += done.quarantined
                    if done.written:
                        report.days_compacted += 1
                        report.objects_merged += len(done.merged)
                        report.visits_written += 1
                    # the visits of what was merged (or of an older version) go
                    kept = {done.visits} if done.visits else set()
                    gone = [k for k, (p, _) in written.items() if p.day == day and k not in kept]
                    store.delete(gone)
                    report.visits_deleted += len(gone)
                else:
                    put, gone = visits_of_day(store, site, day, listed, written)
                    report.visits_written += bool(put)
                    report.visits_deleted += len(gone)
            except Exception:  # one bad day must not stop the others
                log.exception("archive day not compacted", extra={"site": site, "day": day})
                report.failed_days.append(f"{site}/{day}")
                continue
    return report
