"""Sign-in (`/api/auth/*`) and site administration (`/api/admin/*`), JSON in and out.

Every `/api/admin/*` route needs the admin's session cookie; a read key (Bearer) or a shared
link's token opens none of them. A state-changing request with the cookie must also carry the
session's CSRF token in `X-CSRF-Token` (from login or `GET /api/auth/me`) and, if the browser
sends an Origin, the dashboard's own. The cookie is HttpOnly, SameSite=Strict, path /api, and
Secure except on http://127.0.0.1 / localhost.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.observability import logger
from core.sites import (
    KEEP,
    MAX_GOAL_LENGTH,
    MAX_GOALS,
    MAX_HOSTNAMES,
    MAX_LABEL_LENGTH,
    Duplicate,
    Missing,
    SiteError,
    hash_key,
    key_id,
    normalize_domain,
)
from core.sites import Site as SiteRecord
from query_api.auth import (
    CSRF_HEADER,
    MAX_PASSWORD_LENGTH,
    SESSION_COOKIE,
    NotConfigured,
    Session,
    TooManyAttempts,
    WrongPassword,
)
from query_api.deps import OVERRIDES, Deps, Now, QueryDeps, signed_in
from query_api.errors import (
    BadRequest,
    Conflict,
    ErrorOut,
    Forbidden,
    NotFound,
    TooLarge,
    Unauthorized,
    Unavailable,
)

log = logger("query")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COOKIE_PATH = "/api"


# ---- request and response models ---------------------------------------------------------------


class LoginIn(BaseModel):
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class SessionOut(BaseModel):
    signed_in: bool
    csrf_token: str
    expires: str


class SignedOut(BaseModel):
    signed_in: bool = False


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    domain: str = Field(min_length=1, max_length=253)
    tz: str = Field("UTC", max_length=64)
    public: bool = False
    hostnames: list[str] = Field(default_factory=list, max_length=MAX_HOSTNAMES)
    goals: list[str] = Field(default_factory=list, max_length=MAX_GOALS)


class SitePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tz: str | None = Field(None, max_length=64)
    public: bool | None = None
    hostnames: list[str] | None = Field(None, max_length=MAX_HOSTNAMES)
    goals: list[str] | None = Field(None, max_length=MAX_GOALS)
    retention_months: int | None = None  # of the event archive: 1 to 120
    # An existing Umami website id (a UUID) to attach, replacing the one attached before; null
    # detaches it; absent leaves it as it is. 409 if another site has it.
    umami_id: str | None = Field(None, max_length=64)


class GoalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    goal: str = Field(min_length=1, max_length=MAX_GOAL_LENGTH)


class ShareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field("", max_length=MAX_LABEL_LENGTH)


class SiteOut(BaseModel):
    domain: str
    tz: str
    public: bool
    created_at: int
    goals: list[str]
    hostnames: list[str]
    retention_months: int  # the event archive keeps the site's events this long
    umami_id: str | None  # the attached Umami website id, if any
    umami_derived_id: str  # the Umami website id every site has (uuid5 of its domain)


class SitesOut(BaseModel):
    sites: list[SiteOut]


class CreatedSite(BaseModel):
    site: SiteOut
    key: str
    snippet: str


class Removed(BaseModel):
    removed: str
    keys: int
    shares: int
    aggregates_kept: bool = True


class KeyOut(BaseModel):
    id: str
    site: str
    created_at: int


class KeysOut(BaseModel):
    keys: list[KeyOut]


class CreatedKey(KeyOut):
    key: str


class Revoked(BaseModel):
    revoked: int


class GoalsOut(BaseModel):
    goals: list[str]


class ShareOut(BaseModel):
    id: str
    site: str
    created_at: int
    label: str


class SharesOut(BaseModel):
    shares: list[ShareOut]


class CreatedShare(ShareOut):
    token: str
    url: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409)
}


# ---- origins, cookies, the admin check ----------------------------------------------------------


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def dashboard_origin(request: Request, d: QueryDeps) -> str:
    """The configured dashboard origin, else this request's (http only on a loopback host)."""
    if configured := d.public_url.get():
        return configured
    host = request.headers.get("host", "")
    return f"{'http' if _is_loopback(host) else 'https'}://{host}"


def _secure_cookie(origin: str) -> bool:
    scheme, _, host = origin.partition("://")
    return not (scheme == "http" and _is_loopback(host))


def check_origin(request: Request, d: QueryDeps) -> None:
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/") != dashboard_origin(request, d):
        raise Forbidden("cross-origin request refused")


def admin_session(request: Request, d: Deps, now: Now) -> Session:
    """The admin's session; for a state-changing request, also a same-origin CSRF token."""
    if request.headers.get("authorization"):
        raise Forbidden("admin endpoints need the admin's sign-in, not an API key")
    session = signed_in(request, d, now)
    if session is None:
        raise Unauthorized("sign in first: POST /api/auth/login")
    if request.method not in SAFE_METHODS:
        check_origin(request, d)
        if not d.auth.csrf_ok(session, request.headers.get(CSRF_HEADER)):
            raise Forbidden("missing or invalid CSRF token (send X-CSRF-Token)")
    return session


def _session_out(session: Session, csrf_token: str) -> dict[str, Any]:
    return {
        "signed_in": True,
        "csrf_token": csrf_token,
        "expires": datetime.fromtimestamp(session.expires, UTC).isoformat(),
    }


# ---- sign-in -------------------------------------------------------------------------------------

LOGIN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": LoginIn.model_json_schema()}
            for media in ("application/json", "application/x-www-form-urlencoded")
        },
    }
}


async def login_body(request: Request) -> LoginIn:
    """The password from a JSON body or an HTML form."""
    body = await request.body()
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if media == "application/x-www-form-urlencoded":
            fields = parse_qs(body.decode(), max_num_fields=10)
            data: Any = {name: values[0] for name, values in fields.items()}
        elif media in ("application/json", ""):
            data = json.loads(body or b"null")
        else:
            raise BadRequest("send the password as JSON or as a form")
        return LoginIn.model_validate(data)
    # json and unicode errors are ValueErrors; json raises RecursionError on deep nesting ([[[…)
    except (ValueError, ValidationError, RecursionError) as exc:
        raise BadRequest('body: expected {"password": "…"}') from exc


auth_routes = APIRouter(
    prefix="/api/auth", tags=["sign-in"], dependency_overrides_provider=OVERRIDES
)


@auth_routes.post(
    "/login",
    response_model=SessionOut,
    openapi_extra=LOGIN_BODY,
    responses={**ERRORS, 429: {"model": ErrorOut}, 503: {"model": ErrorOut}},
)
def login(
    request: Request, credentials: Annotated[LoginIn, Depends(login_body)], d: Deps, now: Now
) -> JSONResponse:
    check_origin(request, d)
    peer = request.client.host if request.client else ""
    try:
        signed = d.auth.login(
            credentials.password,
            d.auth.client_address(request.headers, peer),
            int(now.timestamp()),
        )
    except NotConfigured:
        log.warning("sign-in refused", extra={"outcome": "not_configured"})
        raise Unavailable("sign-in is not available: set the admin password (RUNBOOK.md)") from None
    except TooManyAttempts as exc:
        log.warning("sign-in refused", extra={"outcome": "rate_limited"})
        return JSONResponse(
            {"error": "too many failed sign-ins: try again later"},
            status_code=429,
            headers={"retry-after": str(exc.retry_after)},
        )
    except WrongPassword:
        log.warning("sign-in refused", extra={"outcome": "wrong_password"})
        raise Unauthorized("wrong password") from None
    log.info("signed in")
    response = JSONResponse(_session_out(signed.session, signed.csrf_token))
    response.set_cookie(
        SESSION_COOKIE,
        signed.cookie,
        max_age=signed.session.expires - int(now.timestamp()),
        path=COOKIE_PATH,
        secure=_secure_cookie(dashboard_origin(request, d)),
        httponly=True,
        samesite="strict",
    )
    return response


@auth_routes.get("/me", response_model=SessionOut, responses=ERRORS)
def me(request: Request, d: Deps, now: Now) -> dict[str, Any]:
    session = signed_in(request, d, now)
    if session is None:
        raise Unauthorized("not signed in")
    return _session_out(session, d.auth.csrf_token(session))


@auth_routes.post("/logout", response_model=SignedOut, responses=ERRORS)
def logout(request: Request, d: Deps, now: Now) -> JSONResponse:
    session = signed_in(request, d, now)
    if session is not None:
        check_origin(request, d)
        if not d.auth.csrf_ok(session, request.headers.get(CSRF_HEADER)):
            raise Forbidden("missing or invalid CSRF token (send X-CSRF-Token)")
        d.auth.logout(session)
    response = JSONResponse({"signed_in": False})
    response.delete_cookie(
        SESSION_COOKIE,
        path=COOKIE_PATH,
        secure=_secure_cookie(dashboard_origin(request, d)),
        httponly=True,
        samesite="strict",
    )
    return response


# ---- sites, keys, goals, shared links --------------------------------------------------------------


def admin_router(prefix: str = "") -> APIRouter:
    """A router of admin routes under `/api/admin{prefix}`: the admin's session (and CSRF on
    changes) required, the admin errors documented. Other modules' admin routes use it too."""
    return APIRouter(
        prefix="/api/admin" + prefix,
        dependency_overrides_provider=OVERRIDES,
        tags=["admin"],
        dependencies=[Depends(admin_session)],
        responses=ERRORS,
    )


admin_routes = admin_router()
Domain = Annotated[str, Path(min_length=1, max_length=253)]


@contextmanager
def site_errors() -> Iterator[None]:
    """The store's typed errors as the API's."""
    try:
        yield
    except Missing as exc:
        raise NotFound(str(exc)) from None
    except Duplicate as exc:
        raise Conflict(str(exc)) from None
    except SiteError as exc:
        raise BadRequest(str(exc)) from None


def _domain(domain: str) -> str:
    try:
        return normalize_domain(domain)
    except SiteError:
        raise NotFound(f"no site {domain}") from None


def _site_out(site: SiteRecord) -> SiteOut:
    return SiteOut(
        domain=site.domain,
        tz=site.tz,
        public=site.public,
        created_at=site.created_at,
        goals=list(site.goals),
        hostnames=list(site.hostnames),
        retention_months=site.retention_months,
        umami_id=site.umami_id,
        umami_derived_id=site.derived_umami_id,
    )


@admin_routes.get("/sites", response_model=SitesOut)
def list_sites(d: Deps) -> SitesOut:
    return SitesOut(sites=[_site_out(s) for s in d.sites.list()])


@admin_routes.post("/sites", response_model=CreatedSite, status_code=201)
def add_site(body: SiteIn, request: Request, d: Deps) -> CreatedSite:
    with site_errors():
        site = d.sites.add(
            body.domain, body.tz, body.public, tuple(body.hostnames), tuple(body.goals)
        )
        key = d.sites.create_key(site.domain)
    origin = dashboard_origin(request, d)
    snippet = f'<script defer data-domain="{site.domain}" src="{origin}/js/script.js"></script>'
    return CreatedSite(site=_site_out(site), key=key, snippet=snippet)


@admin_routes.get("/sites/{domain}", response_model=SiteOut)
def get_site(domain: Domain, d: Deps) -> SiteOut:
    with site_errors():
        return _site_out(d.sites.require(_domain(domain)))


@admin_routes.patch("/sites/{domain}", response_model=SiteOut)
def update_site(domain: Domain, body: SitePatch, d: Deps) -> SiteOut:
    with site_errors():
        site = d.sites.update(
            _domain(domain),
            tz=body.tz,
            public=body.public,
            hostnames=body.hostnames,
            goals=body.goals,
            retention_months=body.retention_months,
            # null detaches, absent keeps: only a field that was sent changes it
            umami_id=body.umami_id if "umami_id" in body.model_fields_set else KEEP,
        )
    return _site_out(site)


@admin_routes.delete("/sites/{domain}", response_model=Removed)
def remove_site(domain: Domain, d: Deps) -> Removed:
    with site_errors():
        removal = d.sites.remove(_domain(domain))
    return Removed(removed=removal.domain, keys=removal.keys, shares=removal.shares)


# A function URL answers at most 6 MB; a bigger export is the CLI's (`liveinsight export`).
MAX_EXPORT_BYTES = 5 * 1024 * 1024
EXPORT_MEDIA = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv; charset=utf-8"}
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
MAX_EXPORT_DAYS = 92  # a response's worth; longer ranges are the CLI's


@admin_routes.get(
    "/sites/{domain}/export",
    responses={
        200: {"description": "The raw events", "content": {m: {} for m in EXPORT_MEDIA.values()}},
        413: {"model": ErrorOut, "description": "Too large for one response: use the CLI"},
        503: {"model": ErrorOut, "description": "No event archive is configured"},
    },
)
def export_events(
    domain: Domain,
    d: Deps,
    from_: Annotated[str, Query(alias="from", pattern=DAY_PATTERN)],
    to: Annotated[str, Query(pattern=DAY_PATTERN)],
    format: Annotated[str, Query(max_length=10)] = "csv",
) -> Response:
    """The site's archived raw events of the site-local days from..to: each event once, no IP
    address or user agent (none is stored); CSV with props as JSON text, or Parquet."""
    from archive.export import ExportError, export

    with site_errors():
        site = d.sites.require(_domain(domain))
    if d.archive is None:
        raise Unavailable("no event archive is configured (LIVEINSIGHT_ARCHIVE_BUCKET)")
    try:
        days = (date.fromisoformat(to) - date.fromisoformat(from_)).days + 1
    except ValueError:
        raise BadRequest("`from` and `to` must be days (YYYY-MM-DD)") from None
    if not 1 <= days <= MAX_EXPORT_DAYS:
        raise BadRequest(
            f"export 1 to {MAX_EXPORT_DAYS} days at a time (`from` on or before `to`); "
            "`liveinsight export` takes any range"
        )
    try:
        body = export(d.archive.store, site.domain, from_, to, format)
    except ExportError as exc:
        raise BadRequest(str(exc)) from None
    if len(body) > MAX_EXPORT_BYTES:
        raise TooLarge(
            f"the export is {len(body):,} bytes, more than one response carries "
            f"({MAX_EXPORT_BYTES:,}); export fewer days, or use `liveinsight export`"
        )
    name = f"{site.domain}-events-{from_}-{to}.{format}"
    return Response(
        body,
        media_type=EXPORT_MEDIA[format],
        headers={
            "content-disposition": f'attachment; filename="{name}"',
            "cache-control": "no-store",
        },
    )


@admin_routes.get("/sites/{domain}/keys", response_model=KeysOut)
def list_keys(domain: Domain, d: Deps) -> KeysOut:
    with site_errors():
        site = d.sites.require(_domain(domain))
    listed = d.sites.list_keys(site.domain)
    return KeysOut(keys=[KeyOut(id=k.id, site=k.site, created_at=k.created_at) for k in listed])


@admin_routes.post("/sites/{domain}/keys", response_model=CreatedKey, status_code=201)
def create_key(domain: Domain, d: Deps, now: Now) -> CreatedKey:
    with site_errors():
        site = d.sites.require(_domain(domain))
        key = d.sites.create_key(site.domain)
    return CreatedKey(
        id=key_id(hash_key(key)), site=site.domain, created_at=int(now.timestamp()), key=key
    )


@admin_routes.delete("/sites/{domain}/keys/{key_id}", response_model=Revoked)
def revoke_key(
    domain: Domain,
    key_id: Annotated[str, Path(pattern=r"^([0-9a-f]{12}|all)$")],
    d: Deps,
) -> Revoked:
    with site_errors():
        site = d.sites.require(_domain(domain))
    revoked = d.sites.revoke_key(site.domain, key_id)
    if not revoked:
        raise NotFound(f"no key {key_id} for {site.domain}")
    return Revoked(revoked=revoked)


@admin_routes.get("/sites/{domain}/goals", response_model=GoalsOut)
def list_goals(domain: Domain, d: Deps) -> GoalsOut:
    with site_errors():
        return GoalsOut(goals=list(d.sites.require(_domain(domain)).goals))


@admin_routes.post("/sites/{domain}/goals", response_model=GoalsOut, status_code=201)
def add_goal(domain: Domain, body: GoalIn, d: Deps) -> GoalsOut:
    with site_errors():
        return GoalsOut(goals=list(d.sites.add_goal(_domain(domain), body.goal).goals))


@admin_routes.delete("/sites/{domain}/goals", response_model=GoalsOut)
def remove_goal(
    domain: Domain,
    goal: Annotated[str, Query(min_length=1, max_length=MAX_GOAL_LENGTH)],
    d: Deps,
) -> GoalsOut:
    with site_errors():
        return GoalsOut(goals=list(d.sites.remove_goal(_domain(domain), goal).goals))


@admin_routes.get("/sites/{domain}/shares", response_model=SharesOut)
def list_shares(domain: Domain, d: Deps) -> SharesOut:
    with site_errors():
        site = d.sites.require(_domain(domain))
    return SharesOut(
        shares=[
            ShareOut(id=s.id, site=s.site, created_at=s.created_at, label=s.label)
            for s in d.sites.list_shares(site.domain)
        ]
    )


@admin_routes.post("/sites/{domain}/shares", response_model=CreatedShare, status_code=201)
def create_share(
    domain: Domain, request: Request, d: Deps, body: ShareIn | None = None
) -> CreatedShare:
    with site_errors():
        token, link = d.sites.create_share(_domain(domain), body.label if body else "")
    return CreatedShare(
        id=link.id,
        site=link.site,
        created_at=link.created_at,
        label=link.label,
        token=token,
        url=share_url(dashboard_origin(request, d), link.site, token),
    )


@admin_routes.delete("/sites/{domain}/shares/{share_id}", response_model=Revoked)
def revoke_share(
    domain: Domain,
    share_id: Annotated[str, Path(pattern=r"^([0-9a-f]{12}|all)$")],
    d: Deps,
) -> Revoked:
    with site_errors():
        site = d.sites.require(_domain(domain))
    revoked = d.sites.revoke_share(site.domain, share_id)
    if not revoked:
        raise NotFound(f"no shared link {share_id} for {site.domain}")
    return Revoked(revoked=revoked)


def share_url(origin: str, domain: str, token: str) -> str:
    """The dashboard URL of a shared link, as Plausible's (`?auth=<token>`)."""
    return f"{origin}/?{urlencode({'site': domain, 'auth': token})}"


# Built routes, not a router to include: query_api/app.py hands them to the app (cold start).
routes = [*auth_routes.routes, *admin_routes.routes]
