"""The event archive on S3 (layout: archive/layout.py): the rollup tier's writes, the readers'
local copies, compaction's listing and moves, a site's purge.

Invariants:
- An object's name follows from its events (`part-<digest of the event ids>`), so a retried
  batch puts the same bytes under the same key, and two objects of one key never differ. A reader
  may see an event in several objects (a batch cut differently on redelivery, a compaction not
  finished): every reader de-duplicates by event id (archive/parquet.py does).
- Readers work on local files: `local_files` fetches a day's objects into a bounded cache on
  local disk keyed by key and ETag, so an object re-written is fetched again and an unchanged one
  never. An object that is not an archive file is skipped with a WARNING, never fails a query;
  compaction moves it to the quarantine prefix.
- This module imports no DuckDB at import time: archive/parquet.py imports it on first use.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive import layout, parquet
from archive.layout import ObjectKey, VisitsKey
from archive.visits import sidecar_path
from core.events import RawEvent
from core.keys import Granularity, bucket_label
from core.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectTypeDef

log = logger("archive")

# The query Lambda's /tmp is 512 MB by default; half of it caches archive files.
DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys


@dataclass(frozen=True)
class StoredObject:
    key: ObjectKey
    etag: str
    size: int
    last_modified: datetime


def day_of(event: RawEvent) -> str:
    """The site-local day an event is archived under: its day counter's bucket."""
    return bucket_label(Granularity.DAY, event.ts, event.tz)


class ArchiveStore:
    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        cache_dir: str | Path | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        directory = Path(cache_dir or tempfile.gettempdir()) / f"liveinsight-archive-{os.getuid()}"
        self.cache = FileCache(directory, cache_bytes)
        # (key, etag) of objects found unreadable: not fetched again by this instance
        self._poison: set[tuple[str, str]] = set()

    # ---- writing ------------------------------------------------------------------------------

    def write_batch(self, events: Iterable[RawEvent]) -> list[ObjectKey]:
        """Put the events as one `part-` object per (site, site-local day); the keys written."""
        groups: dict[tuple[str, str], dict[str, RawEvent]] = {}
        for event in events:
            groups.setdefault((event.site, day_of(event)), {})[event.event_id] = event
        if not groups:
            return []
        con = parquet.connect()
        written = []
        with tempfile.TemporaryDirectory(prefix="li-archive-") as tmp:
            for (site, day), by_id in sorted(groups.items()):
                key = layout.part_key(site, day, by_id)
                path = Path(tmp) / key.name
                parquet.write_events(by_id.values(), path, con)
                self.put_file(key, path)
                written.append(key)
        return written

    def put_file(self, key: ObjectKey, path: Path) -> None:
        self.put_bytes_file(key.key, path)

    def put_bytes_file(self, key: str, path: Path) -> None:
        with open(path, "rb") as body:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/vnd.apache.parquet",
            )

    # ---- listing ------------------------------------------------------------------------------

    def listing(self, prefix: str, start_after: str = "") -> Iterator[ObjectTypeDef]:
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if start_after:
            request["StartAfter"] = start_after
        while True:
            page = self.s3.list_objects_v2(**request)
            yield from page.get("Contents", [])
            if not page.get("IsTruncated"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]

    def objects(
        self, site: str, first_day: str | None = None, last_day: str | None = None
    ) -> list[StoredObject]:
        """The site's objects of the days first_day..last_day (YYYY-MM-DD, inclusive; None: no
        bound), in key order. One listing from the first day on: keys sort by day, so it reads
        only the range's days and stops after the last one."""
        # A key under the first day's prefix sorts after the prefix itself.
        start_after = layout.day_prefix(site, first_day)[:-1] if first_day else ""
        found = []
        for entry in self.listing(layout.site_prefix(site), start_after):
            key = layout.parse_key(entry["Key"])
            if key is None or key.site != site:
                continue
            if first_day and key.day < first_day:
                continue
            if last_day and key.day > last_day:
                break
            found.append(
                StoredObject(key, entry["ETag"], int(entry["Size"]), entry["LastModified"])
            )
        return found

    def visit_objects(
        self, site: str, first_day: str | None = None, last_day: str | None = None
    ) -> dict[str, tuple[VisitsKey, str]]:
        """The site's visits objects (archive/visits.py) of those days, any version: key →
        (its parts, ETag). One listing from the first day on, as `objects`."""
        prefix = layout.visits_prefix(site)
        start_after = f"{prefix}{first_day}" if first_day else ""
        found: dict[str, tuple[VisitsKey, str]] = {}
        for entry in self.listing(prefix, start_after):
            key = layout.parse_visits_key(entry["Key"])
            if key is None or (first_day and key.day < first_day):
                continue
            if last_day and key.day > last_day:
                break
            found[entry["Key"]] = (key, entry["ETag"])
        return found

    def keys(self, site: str, first_day: str, last_day: str) -> list[ObjectKey]:
        return [obj.key for obj in self.objects(site, first_day, last_day)]

    def sites(self) -> list[str]:
        """Every site with an archive object (its domain), from the bucket's listing."""
        request: dict[str, Any] = {
            "Bucket": self.bucket,
            "Prefix": layout.PREFIX + "/",
            "Delimiter": "/",
        }
        sites = []
        while True:
            page = self.s3.list_objects_v2(**request)
            for common in page.get("CommonPrefixes", []):
                sites.append(common["Prefix"].split("/")[1])
            if not page.get("IsTruncated"):
                return sites
            request["ContinuationToken"] = page["NextContinuationToken"]

    def newest(self, site: str) -> datetime | None:
        """When the site's archive last grew: the newest LastModified among the objects of its
        latest day (older days' objects are re-written by compaction, so they do not count).
        None: nothing archived."""
        objects = self.objects(site)
        if not objects:
            return None
        latest = objects[-1].key.day
        return max(obj.last_modified for obj in objects if obj.key.day == latest)

    # ---- reading ------------------------------------------------------------------------------

    def local_files(
        self, site: str, first_day: str, last_day: str, visits: bool = True
    ) -> list[Path]:
        """Local Parquet files holding the site's archived events of those days (each event at
        least once: de-duplicate by event id). Unreadable objects are skipped, with a WARNING.
        With `visits`, an events file whose visits object exists (archive/visits.py) has it
        beside it (`visits.sidecar_path`), where the archive engine looks: one more LIST, and a
        GET per such object not cached yet."""
        objects = self.objects(site, first_day, last_day)
        written = self.visit_objects(site, first_day, last_day) if visits and objects else {}
        files = []
        with self.cache.pinned() as pin:
            for obj in objects:
                if (obj.key.key, obj.etag) in self._poison:
                    log.warning("archive object skipped: unreadable", extra={"key": obj.key.key})
                    continue
                path = self.cache.get(obj.key.key, obj.etag, self._fetch_checked, pin)
                if path is None:
                    continue
                files.append(path)
                key = layout.VisitsKey(site, obj.key.day, obj.key.name).key
                if key in written:
                    # named by the events object, whose bytes determine its own: the events
                    # file's cache name (key and ETag) names it too
                    self.cache.get(
                        key, written[key][1], self._fetch_visits, pin, sidecar_path(path)
                    )
        return files

    def download(self, key: str, path: Path) -> None:
        response = self.s3.get_object(Bucket=self.bucket, Key=key)
        body = response["Body"]
        with open(path, "wb") as out:
            for chunk in iter(lambda: body.read(1024 * 1024), b""):
                out.write(chunk)

    def _fetch_visits(self, key: str, etag: str, path: Path) -> bool:
        self.download(key, path)
        return True

    def _fetch_checked(self, key: str, etag: str, path: Path) -> bool:
        self.download(key, path)
        problem = parquet.schema_problem(path)
        if problem is None:
            return True
        self._poison.add((key, etag))
        log.warning(
            "archive object skipped: unreadable", extra={"key": key, "problem": problem[:300]}
        )
        return False

    # ---- removing -----------------------------------------------------------------------------

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            chunk = keys[start : start + DELETE_BATCH]
            response = self.s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True},
            )
            errors = response.get("Errors", [])
            if errors:
                raise ArchiveError(f"{len(errors)} deletes failed, the first: {errors[0]}")

    def quarantine(self, key: str) -> str:
        """Move an object aside (copy, then delete): readers and compaction no longer see it."""
        target = layout.quarantine_key(key)
        self.s3.copy_object(
            Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": key}
        )
        self.s3.delete_object(Bucket=self.bucket, Key=key)
        return target

    def quarantined(self, site: str) -> list[str]:
        """The keys of the site's quarantined objects."""
        prefix = layout.quarantine_key(layout.site_prefix(site))
        return [entry["Key"] for entry in self.listing(prefix)]

    def purge(self, site: str) -> list[str]:
        """Delete every object of the site, its quarantined ones too; the keys deleted."""
        keys = [entry["Key"] for entry in self.listing(layout.site_prefix(site))]
        keys += self.quarantined(site)
        self.delete(keys)
        return keys


class ArchiveError(RuntimeError):
    """S3 refused part of a request that said it succeeded (DeleteObjects' per-key errors)."""


class FileCache:
    """Files on local disk under a byte budget, named by (key, ETag); the least recently used go
    first. The files of the current call (`pinned`) are never evicted during it, nor the last
    call's before the next one starts using the cache (its caller reads them after it returns):
    a call needing more than the budget keeps what it needs and the next call trims the cache."""

    def __init__(self, directory: Path, budget: int) -> None:
        self.directory = directory
        self.budget = budget
        self._lock = threading.Lock()
        self._files: OrderedDict[Path, int] = OrderedDict()  # path → bytes, oldest use first
        self.fetches = 0
        directory.mkdir(parents=True, exist_ok=True)
        # Files another instance left (a warm sandbox's /tmp, a restarted local process): known
        # by their last use, kept if the budget allows.
        kept = sorted(
            (p for p in directory.glob("*.parquet") if p.is_file()), key=lambda p: p.stat().st_mtime
        )
        for path in kept:
            self._files[path] = path.stat().st_size

    def path_for(self, key: str, etag: str) -> Path:
        name = hashlib.sha256(f"{key}\0{etag}".encode()).hexdigest()[:32]
        return self.directory / f"{name}.parquet"

    @property
    def size(self) -> int:
        with self._lock:
            return sum(self._files.values())

    def pinned(self) -> _Pin:
        return _Pin()

    def get(
        self, key: str, etag: str, fetch: Any, pin: _Pin, path: Path | None = None
    ) -> Path | None:
        """The cached file of (key, etag), fetched by `fetch(key, etag, path) -> bool` when it is
        not here (False: nothing to cache, None returned); `path`: where, when the caller names
        it (a visits file beside its events file)."""
        path = path or self.path_for(key, etag)
        with self._lock:
            if path in self._files and path.exists():
                self._files.move_to_end(path)
                pin.paths.add(path)
                self._evict(pin.paths)  # what an earlier call needed beyond the budget
                return path
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".fetch-")
        os.close(fd)
        try:
            self.fetches += 1
            if not fetch(key, etag, Path(tmp)):
                return None
            os.replace(tmp, path)  # atomic: a reader never sees half a file
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        with self._lock:
            self._files[path] = path.stat().st_size
            self._files.move_to_end(path)
            pin.paths.add(path)
            self._evict(pin.paths)
        return path

    def _evict(self, keep: set[Path]) -> None:
        total = sum(self._files.values())
        for path in list(self._files):
            if total <= self.budget:
                return
            if path in keep:
                continue
            total -= self._files.pop(path)
            path.unlink(missing_ok=True)


class _Pin:
    """The files one call uses: never evicted during it."""

    def __init__(self) -> None:
        self.paths: set[Path] = set()

    def __enter__(self) -> _Pin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.paths.clear()
