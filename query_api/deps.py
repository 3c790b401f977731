"""What every route depends on: the stores, the clock, and who may read which site."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Header, Query

from core import settings
from core.aws import make_client
from core.sites import Site as SiteRecord
from core.sites import SiteStore
from query_api.errors import INVALID_KEY, Unauthorized
from query_api.reader import CounterReader


@dataclass(frozen=True)
class QueryDeps:
    sites: SiteStore
    counters: CounterReader


@lru_cache(maxsize=1)
def get_deps() -> QueryDeps:
    config = settings.load(settings.QuerySettings)
    client = make_client("dynamodb")
    return QueryDeps(
        sites=SiteStore(client, config.meta_table, cache_seconds=5.0),
        counters=CounterReader(client, config.aggregates_table),
    )


def deps() -> QueryDeps:
    return get_deps()


def clock() -> datetime:
    return datetime.now(UTC)


def authorized_site_record(
    site_id: Annotated[str, Query(min_length=1, max_length=253)],
    authorization: Annotated[str | None, Header()] = None,
    d: QueryDeps = Depends(deps),  # noqa: B008 - FastAPI's dependency idiom
) -> SiteRecord:
    """The site the caller may read: its key's site, or a site whose stats are public."""
    site = d.sites.get(site_id)
    if site is None:
        raise Unauthorized(INVALID_KEY)
    if authorization:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or d.sites.site_for_key(key.strip()) != site.domain:
            raise Unauthorized(INVALID_KEY)
        return site
    if site.public:
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
