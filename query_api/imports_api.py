"""Admin routes of a site's imports (decision 0035): upload a Plausible or Umami export, list the
imports, delete one. The admin's session and CSRF token are required (query_api/admin.py).

An upload is the request body itself (the file's bytes; `?filename=` names it, `?kind=` may say
which export it is), at most MAX_UPLOAD_BYTES: API Gateway hands a binary body to Lambda in
base64 within Lambda's 6 MB payload. A bigger export goes through `liveinsight import`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import JSONResponse

from core.sites import Site as SiteRecord
from imports.errors import ImportNotFound, ImportRefused
from imports.recount import archive_recount
from imports.service import import_file, remove_import
from imports.store import ImportStore
from query_api.admin import _domain, admin_router, site_errors
from query_api.deps import Deps, Now, QueryDeps
from query_api.errors import BadRequest, ErrorOut, NotFound, TooLarge, Unavailable

MAX_UPLOAD_BYTES = 4 * 1024 * 1024

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


def _recount(d: QueryDeps, site: SiteRecord, now: Any) -> Any:
    """An Umami import's counters, rebuilt from the archive in this request."""
    from core import settings
    from core.aws import make_client

    assert d.archive is not None  # _store() said so
    table = settings.load(settings.QuerySettings).aggregates_table
    return archive_recount(make_client("dynamodb"), table, d.archive.store, site, now)


@import_routes.post(
    "",
    status_code=201,
    responses={
        200: {"description": "This file was imported before: its import, unchanged"},
        413: {"model": ErrorOut, "description": "Bigger than an upload carries: use the CLI"},
        503: {"model": ErrorOut, "description": "No event archive is configured"},
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
    """Import Plausible's CSV export (the zip, or one of its CSVs) or Umami's website_event CSV,
    sent as the request body."""
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
        manifest, new = import_file(
            store, site, bytes(data), filename, now, _recount(d, site, now), kind
        )
    return JSONResponse({"import": manifest.out(), "new": new}, status_code=201 if new else 200)


def _too_large(size: int) -> str:
    return (
        f"the file is {size:,} bytes, more than an upload carries ({MAX_UPLOAD_BYTES:,}); "
        "use `liveinsight import --site SITE FILE`"
    )


@import_routes.get("")
def list_imports(domain: Domain, d: Deps) -> dict[str, list[dict[str, Any]]]:
    site = _site(d, domain)
    return {"imports": [m.out() for m in _store(d).manifests(site.domain)]}


@import_routes.delete("/{import_id}")
def delete_import(
    domain: Domain,
    d: Deps,
    now: Now,
    import_id: Annotated[str, Path(pattern="^[0-9a-f]{16}$")],
) -> dict[str, Any]:
    site = _site(d, domain)
    with import_errors():
        removed = remove_import(_store(d), site, import_id, _recount(d, site, now))
    return {"removed": removed.id}


routes = import_routes.routes
