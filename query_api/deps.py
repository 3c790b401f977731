"""What every route depends on: the stores, the clock, and who may read which site.

A site's stats may be read with (in this order): a Bearer read key of that site, a shared-link
token of that site (`?auth=`, as Plausible's shared links), the admin's session cookie, or
nothing if the site is public. Credentials that are present but wrong are refused even for a
public site. A key or share token is looked up on every request, so revoking it works at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import Depends, Header, Query, Request

from core import settings
from core.aws import make_client
from core.observability import logger
from core.sites import Site as SiteRecord
from core.sites import SiteStore, site_domain
from query_api.auth import SESSION_COOKIE, Auth, LoginLimits, SecretSource, Session
from query_api.errors import INVALID_KEY, BadRequest, Unauthorized, Unavailable
from query_api.plan import Planner
from query_api.reader import CounterReader

if TYPE_CHECKING:
    from archive.store import ArchiveStore
    from imports.store import ImportStore

log = logger("query")


class PublicUrl:
    """The dashboard's origin (no trailing slash): from the settings, else from the SSM String
    parameter named there, read when an admin path first needs it and cached per instance for
    `cache_seconds` (decision 0023: without a custom domain, Terraform writes the distribution's
    domain there, since the function cannot name the distribution in front of its own URL).
    "" when neither is set: the request's own origin (local use)."""

    def __init__(
        self,
        direct: str = "",
        parameter: str = "",
        ssm: Callable[[], Any] | None = None,
        cache_seconds: float = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._direct = direct.rstrip("/")
        self._parameter = parameter
        self._ssm = ssm
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cached: tuple[float, str] | None = None

    def get(self) -> str:
        if self._direct or not self._parameter or self._ssm is None:
            return self._direct
        now = self._clock()
        if self._cached and now - self._cached[0] < self._cache_seconds:
            return self._cached[1]
        try:
            response = self._ssm().get_parameter(Name=self._parameter)
        except (BotoCoreError, ClientError) as exc:
            # Not the request's Host instead: behind a function URL that is the URL's own name,
            # which would refuse the dashboard and mint shared links nobody can open.
            log.warning("public URL unreadable", extra={"error": type(exc).__name__})
            raise Unavailable("the dashboard's address is unavailable; try again") from exc
        value = str(response["Parameter"]["Value"]).rstrip("/")
        self._cached = (now, value)
        return value


@dataclass(frozen=True)
class QueryDeps:
    sites: SiteStore
    counters: CounterReader
    auth: Auth
    public_url: PublicUrl = field(default_factory=PublicUrl)  # the dashboard's origin
    archive: Archive | None = None  # the event archive; None: the counters alone answer

    def planner(self, site: SiteRecord, now: datetime) -> Planner:
        return Planner(self.counters, site, self.archive, now)


@lru_cache(maxsize=1)
def get_deps() -> QueryDeps:
    config = settings.load(settings.QuerySettings)
    client = make_client("dynamodb")
    return QueryDeps(
        sites=SiteStore(client, config.meta_table, cache_seconds=5.0),
        counters=CounterReader(client, config.aggregates_table),
        auth=Auth(
            SecretSource(config, lambda: make_client("ssm")),
            client,
            config.meta_table,
            LoginLimits(
                config.login_failures_per_client,
                config.login_failures_global,
                config.login_window_seconds,
            ),
            config.session_hours * 3600,
        ),
        public_url=PublicUrl(
            config.public_url,
            config.public_url_parameter,
            lambda: make_client("ssm"),
            config.secrets_cache_seconds,
        ),
        archive=archive_of(config),
    )


class Archive:
    """The event archive the planner asks what the counters refuse, built on first use: its S3
    client costs ~70 ms of a cold start that a question the counters answer never needs."""

    def __init__(self, bucket: str, cache_bytes: int) -> None:
        self.bucket = bucket
        self.cache_bytes = cache_bytes

    @cached_property
    def store(self) -> ArchiveStore:
        from archive.store import ArchiveStore

        return ArchiveStore(make_client("s3"), self.bucket, cache_bytes=self.cache_bytes)

    @cached_property
    def imports(self) -> ImportStore:
        """The sites' imports, beside the archive in its bucket (imports/store.py)."""
        from imports.store import ImportStore

        return ImportStore(self.store)

    def local_files(self, site: str, first_day: str, last_day: str) -> list[Path]:
        return self.store.local_files(site, first_day, last_day)

    def newest(self, site: str) -> datetime | None:
        return self.store.newest(site)


def archive_of(config: settings.QuerySettings) -> Archive | None:
    return (
        Archive(config.archive_bucket, config.archive_cache_bytes)
        if config.archive_bucket
        else None
    )


def deps() -> QueryDeps:
    return get_deps()


@dataclass
class Overrides:
    """The dependency overrides of the app and of every router's routes (tests pin the clock with
    them). A route reads the table of the provider it was built with; the routers' routes are built
    before the app (query_api/app.py), so they and the app share this one."""

    dependency_overrides: dict[Any, Any] = field(default_factory=dict)


OVERRIDES = Overrides()


def clock() -> datetime:
    return datetime.now(UTC)


def signed_in(request: Request, d: QueryDeps, now: datetime) -> Session | None:
    """The admin's live session, if the request carries its cookie."""
    cookie = request.cookies.get(SESSION_COOKIE)
    return d.auth.session(cookie, int(now.timestamp())) if cookie else None


def authorized_site_record(
    request: Request,
    site_id: Annotated[str, Query(min_length=1, max_length=253)],
    authorization: Annotated[str | None, Header()] = None,
    auth: Annotated[str | None, Query(max_length=200, description="a shared link's token")] = None,
    d: QueryDeps = Depends(deps),  # noqa: B008 - FastAPI's dependency idiom
    now: datetime = Depends(clock),  # noqa: B008
) -> SiteRecord:
    """The site the caller may read (see the module docstring)."""
    return authorize(request, site_id, authorization, auth, d, now)


def authorize(
    request: Request,
    site_id: str,
    authorization: str | None,
    auth: str | None,
    d: QueryDeps,
    now: datetime,
) -> SiteRecord:
    """`authorized_site_record` for a site named elsewhere than the query string (v2's body)."""
    domain = site_domain(site_id)  # as stored: checked after lowercasing, which can grow it
    if domain is None:
        # Says nothing about which sites exist: the syntax of a domain is no secret.
        raise BadRequest("site_id: must be a site's domain")
    site = d.sites.get(domain)
    if site is None:
        raise Unauthorized(INVALID_KEY)
    if authorization:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or d.sites.site_for_key(key.strip()) != site.domain:
            raise Unauthorized(INVALID_KEY)
        return site
    if auth is not None:
        if d.sites.site_for_share(auth) != site.domain:
            raise Unauthorized(INVALID_KEY)
        return site
    if site.public or signed_in(request, d, now) is not None:
        return site
    raise Unauthorized(INVALID_KEY)


def authorized_site(
    record: SiteRecord = Depends(authorized_site_record),  # noqa: B008
) -> str:
    return record.domain


Site = Annotated[str, Depends(authorized_site)]
ReadableSite = Annotated[SiteRecord, Depends(authorized_site_record)]
Deps = Annotated[QueryDeps, Depends(deps)]
Now = Annotated[datetime, Depends(clock)]
