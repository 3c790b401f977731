"""Umami imports and removals asked through the admin API, done by the archive function
(decision 0039).

The query function may not rewrite archive days or counters, so it stores the upload and a request
under `imports/<site>/<id>/`; S3 notifies the request's creation to the archive function
(terraform/archive.tf), which runs here the work `liveinsight import` does (imports/service.py):
the events written into the archive and their days' counters rebuilt, or, for a removal, taken
out again. Its outcome is the import's status in the list: done (a manifest, the request and
status gone), or failed with the message a person can act on.

The request carries the time it was asked at: the import's native start and its rebuild's bound
(never inside a day still counting live) are those of that moment, so a retry an hour later
changes nothing, and a test's injected clock reaches the work.

S3 delivers a notification at least once: a request already done is gone (nothing to do), and
importing the same file again finds its manifest and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from core import settings
from core.observability import logger
from imports.errors import ImportNotFound, ImportRefused
from imports.store import FAILED, PREFIX, REQUEST, STATUS, UPLOAD, ImportStore

if TYPE_CHECKING:
    from archive.store import ArchiveStore
    from core.sites import SiteStore

log = logger("archive")


def aggregates_table() -> str:
    """The counters an import rebuilds (ArchiveSettings: the archive function's environment)."""
    table = settings.load(settings.ArchiveSettings).aggregates_table
    if not table:
        raise settings.SettingsError("LIVEINSIGHT_AGGREGATES_TABLE is required for imports")
    return table


def is_import_event(event: Any) -> bool:
    """An S3 notification of an import request (and not the compaction's schedule)."""
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:s3" for r in records)
    )


def request_keys(event: dict[str, Any]) -> list[tuple[str, str]]:
    """(site, import id) of each notified request key `imports/<site>/<id>/request.json`."""
    out = []
    for record in event["Records"]:
        key = unquote_plus(str(record.get("s3", {}).get("object", {}).get("key", "")))
        parts = key.split("/")
        if len(parts) == 4 and parts[0] == PREFIX and parts[3] == REQUEST:
            out.append((parts[1], parts[2]))
    return out


def handle(
    event: dict[str, Any], archive: ArchiveStore, sites: SiteStore, client: Any
) -> dict[str, Any]:
    imports = ImportStore(archive)
    done: dict[str, str] = {}
    for site_domain, import_id in request_keys(event):
        done[import_id] = run_request(imports, sites, client, site_domain, import_id)
    return {"imports": done}


def run_request(
    imports: ImportStore, sites: SiteStore, client: Any, domain: str, import_id: str
) -> str:
    """Do one request; its outcome (`done`, `failed`, `gone`: nothing left to do)."""
    from imports.recount import archive_recount
    from imports.service import import_file, remove_import

    request = imports.get_json(domain, import_id, REQUEST)
    if request is None:
        return "gone"  # a second delivery of a request already done
    action = request.get("action")
    at = datetime.fromtimestamp(float(request.get("requested_at", 0)) or 0, UTC)
    site = sites.get(domain)

    def failed(message: str, final: bool = True) -> str:
        status = {
            **{k: request.get(k) for k in ("id", "kind", "filename", "created_at", "action")},
            "status": FAILED,
            "message": message[:1000],
        }
        imports.put_json(domain, import_id, STATUS, status)
        if final:  # else kept for Lambda's retry of this invocation
            imports.drop(domain, import_id, [UPLOAD, REQUEST])
        log.warning("import failed", extra={"site": domain, "id": import_id, "action": action})
        return FAILED

    if site is None:
        return failed(f"no site {domain}")
    recount = archive_recount(client, aggregates_table(), imports.archive, site, at)
    try:
        if action == "remove":
            try:
                remove_import(imports, site, import_id, recount)  # its objects go, these too
            except ImportNotFound:  # removed already (a retry, a second delivery)
                imports.drop(domain, import_id, [UPLOAD, REQUEST, STATUS])
            log.info("import removed", extra={"site": domain, "id": import_id})
            return "done"
        data = imports.get_upload(domain, import_id)
        if data is None:
            return failed("the uploaded file is gone: upload it again")
        manifest, _ = import_file(
            imports, site, data, str(request.get("filename", "upload")), at, recount, "umami"
        )
    except (ImportRefused, ImportNotFound) as exc:
        return failed(str(exc))
    except Exception as exc:
        # Lambda retries the invocation (terraform/archive.tf), then dead-letters it; until then
        # the list says what went wrong. Every step can run again.
        failed(f"stopped ({type(exc).__name__}): retried, else ask again", final=False)
        raise
    imports.drop(domain, import_id, [UPLOAD, REQUEST, STATUS])
    log.info(
        "import done",
        extra={"site": domain, "id": manifest.id, "events": manifest.events},
    )
    return "done"
