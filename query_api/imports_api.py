"""Admin routes of a site's imports (decision 0035): upload a Plausible export, list the
imports, delete one. The admin's session and CSRF token are required (query_api/admin.py).

An upload is the request body itself (the file's bytes; `?filename=` names it, `?kind=` may say
which export it is), at most MAX_UPLOAD_BYTES: API Gateway hands a binary body to Lambda in
base64 within Lambda's 6 MB payload. A bigger export goes through `liveinsight import`.

Umami exports are refused here (400), and so is removing one: they rewrite archive days and
rebuild counters, and the query function's role may write neither (least privilege: it reads
the archive and writes only under imports/). `liveinsight import` does both with the operator's
credentials. An S3 error on these paths (a role without the imports/ grants, throttling) is a
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
from imports.service import detect_kind, import_file, remove_import
from imports.store import PLAUSIBLE, UMAMI, ImportStore
from query_api.admin import _domain, admin_router, site_errors
from query_api.deps import Deps, Now, QueryDeps
from query_api.errors import BadRequest, ErrorOut, NotFound, TooLarge, Unavailable

MAX_UPLOAD_BYTES = 4 * 1024 * 1024
UMAMI_UPLOAD = (
    "Umami exports are imported with the CLI: `liveinsight import --site {site} FILE` "
    "(they rewrite archive days and counters, which the dashboard's API may not)"
)
UMAMI_REMOVE = (
    "an Umami import is removed with the CLI: `liveinsight import remove --site {site} {id}` "
    "(it rewrites archive days and counters, which the dashboard's API may not)"
)

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
    """Plausible imports never recount (their tables sit beside the archive); only Umami's would,
    and those belong to the CLI."""
    raise AssertionError("a Plausible import asked for a recount")


@import_routes.post(
    "",
    status_code=201,
    responses={
        200: {"description": "This file was imported before: its import, unchanged"},
        400: {
            "model": ErrorOut,
            "description": "Not an importable Plausible export (Umami's: CLI)",
        },
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
    """Import Plausible's CSV export (the zip, or one of its CSVs), sent as the request body.
    Umami's website_event CSV is refused (400): `liveinsight import` imports it."""
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
            raise BadRequest(UMAMI_UPLOAD.format(site=site.domain))
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
    site = _site(d, domain)
    with import_errors():
        return {"imports": [m.out() for m in _store(d).manifests(site.domain)]}


@import_routes.delete("/{import_id}", responses=STORAGE_ERROR)
def delete_import(
    domain: Domain,
    d: Deps,
    import_id: Annotated[str, Path(pattern="^[0-9a-f]{16}$")],
) -> dict[str, Any]:
    site = _site(d, domain)
    store = _store(d)
    with import_errors():
        if store.get(site.domain, import_id).kind == UMAMI:
            raise BadRequest(UMAMI_REMOVE.format(site=site.domain, id=import_id))
        removed = remove_import(store, site, import_id, _no_recount)
    return {"removed": removed.id}


routes = import_routes.routes
