"""Where imports live: beside the event archive, under `imports/<site>/<import id>/` in its
bucket — `manifest.json` (what was imported, the days it answers for) and one Parquet file per
table (`sources.parquet`, …; an Umami import's converted events as `events.parquet`, which its
removal needs). The one module that builds these keys.

Readers fetch table files through the archive's local file cache (keyed by key and ETag), so a
warm query function reads an import's bytes once.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imports.errors import ImportNotFound

if TYPE_CHECKING:
    from archive.store import ArchiveStore

PREFIX = "imports"
MANIFEST = "manifest.json"
PLAUSIBLE, UMAMI = "plausible", "umami"
# An Umami upload or removal asked through the admin API (decision 0039): the file as sent, the
# request (whose creation S3 notifies to the archive function: terraform/archive.tf filters on
# this suffix) and its status while it is pending or after it failed.
UPLOAD = "upload"
REQUEST = "request.json"
STATUS = "status.json"
PENDING, REMOVING, FAILED, DONE = "pending", "removing", "failed", "done"


@dataclass(frozen=True)
class Manifest:
    id: str
    site: str
    kind: str  # plausible | umami
    filename: str
    created_at: int  # epoch seconds
    file_first: str  # the days the file holds (YYYY-MM-DD)
    file_last: str
    # The days this import answers for: the file's, minus days of earlier imports and days on or
    # after the site's native start (Plausible's rule), as inclusive [first, last] ranges.
    ranges: list[list[str]] = field(default_factory=list)
    native_start: str = ""
    tables: dict[str, int] = field(default_factory=dict)  # table → rows
    events: int = 0  # Umami: events added to the archive
    days: list[str] = field(default_factory=list)  # Umami: the archive days it wrote
    skipped: dict[str, int] = field(default_factory=dict)  # reason → rows left out

    def covers(self, day: str) -> bool:
        return any(first <= day <= last for first, last in self.ranges)

    def out(self) -> dict[str, Any]:
        return asdict(self)


def site_prefix(site: str) -> str:
    return f"{PREFIX}/{site}/"


def import_prefix(site: str, import_id: str) -> str:
    return f"{PREFIX}/{site}/{import_id}/"


def table_key(site: str, import_id: str, table: str) -> str:
    return f"{import_prefix(site, import_id)}{table}.parquet"


class ImportStore:
    def __init__(self, archive: ArchiveStore) -> None:
        self.archive = archive
        self._lock = threading.Lock()
        self._manifests: dict[tuple[str, str], Manifest] = {}  # (key, etag) → manifest

    # ---- manifests -----------------------------------------------------------------------------

    def manifests(self, site: str) -> list[Manifest]:
        """The site's imports, oldest first. One LIST; a GET per manifest not seen yet."""
        return self._manifests_of(list(self.archive.listing(site_prefix(site))))

    def _manifests_of(self, entries: list[Any]) -> list[Manifest]:
        found = []
        for entry in entries:
            key = entry["Key"]
            if not key.endswith("/" + MANIFEST):
                continue
            cached = (key, entry["ETag"])
            with self._lock:
                manifest = self._manifests.get(cached)
            if manifest is None:
                body = self.archive.s3.get_object(Bucket=self.archive.bucket, Key=key)["Body"]
                manifest = Manifest(**json.loads(body.read()))
                with self._lock:
                    self._manifests[cached] = manifest
            found.append(manifest)
        return sorted(found, key=lambda m: (m.created_at, m.id))

    def listed(self, site: str) -> list[dict[str, Any]]:
        """The site's imports with their status (decision 0039): each manifest `done` (or
        `removing`, or `failed` with the removal's message), and the asked imports that have no
        manifest yet, `pending` or `failed`. One LIST; a GET per manifest not seen yet and per
        status object (there are few: they go when their work is done)."""
        entries = list(self.archive.listing(site_prefix(site)))
        statuses = {
            str(status["id"]): status
            for entry in entries
            if entry["Key"].endswith("/" + STATUS)
            and (status := self._json(entry["Key"])) is not None
        }
        out = []
        for manifest in self._manifests_of(entries):
            status = statuses.pop(manifest.id, None)
            row = {**manifest.out(), "status": DONE}
            if status is not None and status.get("action") == "remove":
                row.update(status=status["status"], message=status.get("message", ""))
            out.append(row)
        for status in sorted(statuses.values(), key=lambda s: (s.get("created_at", 0), s["id"])):
            out.append({**status, "site": site})
        return out

    def _json(self, key: str) -> dict[str, Any] | None:
        try:
            body = self.archive.s3.get_object(Bucket=self.archive.bucket, Key=key)["Body"]
        except self.archive.s3.exceptions.NoSuchKey:
            return None  # deleted between the LIST and the GET: its work just ended
        value = json.loads(body.read())
        return value if isinstance(value, dict) else None

    # ---- asked imports and removals (decision 0039) ------------------------------------------

    def put_json(self, site: str, import_id: str, name: str, value: dict[str, Any]) -> None:
        self.archive.s3.put_object(
            Bucket=self.archive.bucket,
            Key=import_prefix(site, import_id) + name,
            Body=json.dumps(value, sort_keys=True).encode(),
            ContentType="application/json",
        )

    def get_json(self, site: str, import_id: str, name: str) -> dict[str, Any] | None:
        return self._json(import_prefix(site, import_id) + name)

    def put_upload(self, site: str, import_id: str, data: bytes) -> None:
        self.archive.s3.put_object(
            Bucket=self.archive.bucket, Key=import_prefix(site, import_id) + UPLOAD, Body=data
        )

    def get_upload(self, site: str, import_id: str) -> bytes | None:
        try:
            body = self.archive.s3.get_object(
                Bucket=self.archive.bucket, Key=import_prefix(site, import_id) + UPLOAD
            )["Body"]
        except self.archive.s3.exceptions.NoSuchKey:
            return None
        data: bytes = body.read()
        return data

    def drop(self, site: str, import_id: str, names: Iterable[str]) -> None:
        """Delete these objects of the import (its upload, request, status)."""
        self.archive.delete([import_prefix(site, import_id) + name for name in names])

    def get(self, site: str, import_id: str) -> Manifest:
        for manifest in self.manifests(site):
            if manifest.id == import_id:
                return manifest
        raise ImportNotFound(f"no import {import_id} for {site}")

    def put_manifest(self, manifest: Manifest) -> None:
        self.archive.s3.put_object(
            Bucket=self.archive.bucket,
            Key=import_prefix(manifest.site, manifest.id) + MANIFEST,
            Body=json.dumps(manifest.out(), sort_keys=True).encode(),
            ContentType="application/json",
        )

    # ---- files ---------------------------------------------------------------------------------

    def put_file(self, site: str, import_id: str, table: str, path: Path) -> None:
        self.archive.put_bytes_file(table_key(site, import_id, table), path)

    def local_files(self, site: str, import_ids: Iterable[str], table: str) -> list[Path]:
        """Local copies of that table of those imports (those that have it)."""
        wanted = {table_key(site, i, table) for i in import_ids}
        if not wanted:
            return []
        etags = {
            e["Key"]: e["ETag"]
            for e in self.archive.listing(site_prefix(site))
            if e["Key"] in wanted
        }
        files = []
        with self.archive.cache.pinned() as pin:
            for key, etag in sorted(etags.items()):
                path = self.archive.cache.get(key, etag, self._fetch, pin)
                if path is not None:
                    files.append(path)
        return files

    def _fetch(self, key: str, etag: str, path: Path) -> bool:
        self.archive.download(key, path)
        return True

    def delete(self, site: str, import_id: str) -> list[str]:
        """Delete the import's objects, its manifest last (a crash leaves it listed, to be
        removed again); the keys deleted."""
        keys = [e["Key"] for e in self.archive.listing(import_prefix(site, import_id))]
        manifest = import_prefix(site, import_id) + MANIFEST
        self.archive.delete([k for k in keys if k != manifest])
        if manifest in keys:
            self.archive.delete([manifest])
        return keys

    def purge(self, site: str) -> list[str]:
        keys = [e["Key"] for e in self.archive.listing(site_prefix(site))]
        self.archive.delete(keys)
        return keys


def scratch_dir() -> str:
    return tempfile.mkdtemp(prefix="li-import-", dir=os.environ.get("TMPDIR"))
