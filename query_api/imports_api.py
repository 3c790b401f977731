"""Admin routes of a site's imports (decisions 0035, 0039): upload an export, list the imports
with their status, delete one. The admin's session and CSRF token are required
(query_api/admin.py).

An upload is the request body itself (the file's bytes; `?filename=` names it, `?kind=` may say
which export it is), at most MAX_UPLOAD_BYTES: API Gateway hands a binary body to Lambda in
base64 within Lambda's 6 MB payload. A bigger export goes through `liveinsight import`.

A Plausible export is imported here (201). An Umami export rewrites archive days and rebuilds
counters, which this function's role may not (least privilege: it reads the archive and writes
only under imports/): its upload is stored with a request under imports/<site>/<id>/, and the
answer is 202 with the import's id and status `pending`. S3 notifies the request to the archive
function, which does the work (imports/worker.py); the list shows the import `pending`, then
`done`, or `failed` with a message. Removing an Umami import is asked the same way (202,
`removing`). An S3 error on these paths (a role without the imports/ grants, throttling) is a
503 saying so, never a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import Path, Query, Request
from fastapi.responses import JSONResponse

from core.observability import logger
from core.sites import Site as SiteRecord
from imports.errors import ImportNotFound, ImportRefused
from imports.formats import UMAMI_REQUIRED, looks_like_umami
from imports.service import detect_kind, import_file, import_id_of, remove_import
from imports.store import (
    DONE,
    PENDING,
    PLAUSIBLE,
    REMOVING,
    REQUEST,
    STATUS,
    UMAMI,
    ImportStore,
)
from query_api.admin import _domain, admin_router, site_errors
from query_api.deps import Deps, Now, QueryDeps
from query_api.errors import BadRequest, Conflict, ErrorOut, NotFound, TooLarge, Unavailable

MAX_UPLOAD_BYTES = 4 * 1024 * 1024
STILL_IMPORTING = "import {id} is still being imported: delete it once it is done or failed"

log = logger("query")

import_routes = admin_router("/sites/{domain}/imports")
Domain = Annotated[str, Path(min_length=1, max_length=253)]


def _store(d: QueryDeps) -> ImportStore:
    if d.archive is None:
        raise Unavailable("imports need the event archive (LIVEINSIGHT_ARCHIVE_BUCKET)")
    return d.archive.imports


def _site(d: QueryDeps, domain: str) -> SiteRecord:
    with site_errors():
        return d.sites.require(_domain(domain))


@contextmanager
def import_errors() -> Iterator[None]:
    try:
        yield
    except ImportRefused as exc:
        raise BadRequest(str(exc)) from None
    except ImportNotFound as exc:
        raise NotFound(str(exc)) from None
    except (BotoCoreError, ClientError) as exc:
        # The bucket refused or failed (a role without the imports/ grants, throttling): the
        # caller may try again; a half-written import is never listed (its manifest goes last).
        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
        log.warning("imports storage error", extra={"error": type(exc).__name__, "code": code})
        raise Unavailable(
            f"the imports storage is unavailable ({code or type(exc).__name__}); try again later"
        ) from None


def _no_recount(first: Any, last: Any) -> None:
    """Plausible imports never recount (their tables sit beside the archive); Umami's are done by
    the archive function (decision 0039)."""
    raise AssertionError("a Plausible import asked for a recount")


def _ask(store: ImportStore, site: str, status: dict[str, Any], now: Any) -> None:
    """Store the status, then the request: its creation is what S3 notifies to the archive
    function (terraform/archive.tf), so the status is listed before any work can end it."""
    store.put_json(site, status["id"], STATUS, status)
    request = {k: status[k] for k in ("id", "kind", "filename", "created_at", "action")}
    store.put_json(site, status["id"], REQUEST, {**request, "requested_at": now.timestamp()})


def _ask_umami_import(
    store: ImportStore, site: SiteRecord, data: bytes, filename: str, now: Any
) -> JSONResponse:
    # What can be told at once is a 400 now; the rows are read by the archive function.
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused(f"{filename}: not UTF-8 text") from None
    if not looks_like_umami(data):
        raise ImportRefused(
            f"{filename}: not Umami's website_event export (a CSV with the columns "
            f"{', '.join(UMAMI_REQUIRED)})"
        )
    import_id = import_id_of(site.domain, UMAMI, data)
    for manifest in store.manifests(site.domain):
        if manifest.id == import_id:  # this very file, imported before: nothing changes
            return JSONResponse({"import": {**manifest.out(), "status": DONE}, "new": False})
    asked = store.get_json(site.domain, import_id, STATUS)
    if asked is not None and asked.get("status") == PENDING:
        return JSONResponse({"import": asked, "new": False}, status_code=202)
    status = {
        "id": import_id,
        "site": site.domain,
        "kind": UMAMI,
        "filename": filename.rsplit("/", 1)[-1][:200],
        "created_at": int(now.timestamp()),
        "action": "import",
        "status": PENDING,
        "message": "",
    }
    store.put_upload(site.domain, import_id, data)
    _ask(store, site.domain, status, now)
    return JSONResponse({"import": status, "new": True}, status_code=202)


@import_routes.post(
    "",
    status_code=201,
    responses={
        200: {"description": "This file was imported before: its import, unchanged"},
        202: {"description": "An Umami export: stored, imported by the archive function"},
        400: {"model": ErrorOut, "description": "Not an importable export"},
        413: {"model": ErrorOut, "description": "Bigger than an upload carries: use the CLI"},
        503: {"model": ErrorOut, "description": "No event archive, or its bucket failed"},
    },
)
async def upload_import(
    domain: Domain,
    request: Request,
    d: Deps,
    now: Now,
    filename: Annotated[str, Query(min_length=1, max_length=200)] = "export.zip",
    kind: Annotated[str | None, Query(pattern="^(plausible|umami)$")] = None,
) -> JSONResponse:
    """Import Plausible's CSV export (the zip, or one of its CSVs), sent as the request body, or
    ask for Umami's website_event CSV to be imported (202, `pending`: see the list)."""
    site = _site(d, domain)
    store = _store(d)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise TooLarge(_too_large(int(declared)))
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_UPLOAD_BYTES:
            raise TooLarge(_too_large(len(data)))
    with import_errors():
        if data and (kind or detect_kind(bytes(data), filename)) == UMAMI:
            return _ask_umami_import(store, site, bytes(data), filename, now)
        manifest, new = import_file(store, site, bytes(data), filename, now, _no_recount, PLAUSIBLE)
    return JSONResponse({"import": manifest.out(), "new": new}, status_code=201 if new else 200)


def _too_large(size: int) -> str:
    return (
        f"the file is {size:,} bytes, more than an upload carries ({MAX_UPLOAD_BYTES:,}); "
        "use `liveinsight import --site SITE FILE`"
    )


STORAGE_ERROR: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "No event archive, or its bucket failed"}
}


@import_routes.get("", responses=STORAGE_ERROR)
def list_imports(domain: Domain, d: Deps) -> dict[str, list[dict[str, Any]]]:
    """The imports, oldest first, each with its `status`: done, pending (an Umami import not
    done yet), removing, or failed with a `message`."""
    site = _site(d, domain)
    with import_errors():
        return {"imports": _store(d).listed(site.domain)}


@import_routes.delete(
    "/{import_id}",
    responses={
        **STORAGE_ERROR,
        202: {"description": "An Umami import: its removal asked of the archive function"},
        409: {"model": ErrorOut, "description": "An Umami import still pending"},
    },
)
def delete_import(
    domain: Domain,
    d: Deps,
    now: Now,
    import_id: Annotated[str, Path(pattern="^[0-9a-f]{16}$")],
) -> JSONResponse:
    site = _site(d, domain)
    store = _store(d)
    with import_errors():
        asked = store.get_json(site.domain, import_id, STATUS)
        try:
            manifest = store.get(site.domain, import_id)
        except ImportNotFound:
            if asked is None:
                raise
            if asked.get("status") == PENDING:
                raise Conflict(STILL_IMPORTING.format(id=import_id)) from None
            store.delete(site.domain, import_id)  # a failed import: only its own objects
            return JSONResponse({"removed": import_id})
        if manifest.kind == UMAMI:
            status = {
                **{k: v for k, v in manifest.out().items() if k in ("id", "kind", "filename")},
                "created_at": manifest.created_at,
                "action": "remove",
                "status": REMOVING,
                "message": "",
            }
            _ask(store, site.domain, status, now)
            return JSONResponse({"removing": import_id, "status": REMOVING}, status_code=202)
        removed = remove_import(store, site, import_id, _no_recount)
    return JSONResponse({"removed": removed.id})


routes = import_routes.routes
