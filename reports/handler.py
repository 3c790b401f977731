"""Lambda entry point: the reports schedule (EventBridge Scheduler, hourly) → the weekly and
monthly reports due in each site's zone, by SES (decision 0038)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from core import mail, settings
from core.aws import make_client
from core.observability import logger
from core.sites import Site, SiteStore
from reports import content, run
from reports.schedule import Period
from reports.store import ReportStore
from reports.unsubscribe import link_key

log = logger("reports")


@lru_cache(maxsize=1)
def get_config() -> settings.ReportSettings:
    return settings.load(settings.ReportSettings)


@lru_cache(maxsize=1)
def get_runner() -> run.Runner:
    config = get_config()
    ddb = make_client("dynamodb")
    sites = SiteStore(ddb, config.meta_table, cache_seconds=0)
    return run.Runner(
        sites.list,
        ReportStore(ddb, config.meta_table),
        build,
        lambda message: mail.send(make_ses(), message, config.email_from),
        run.Links(public_url, session_key),
    )


@lru_cache(maxsize=1)
def make_ses() -> Any:
    return make_client("sesv2")


@lru_cache(maxsize=1)
def _parameter(name: str) -> str:
    response = make_client("ssm").get_parameter(Name=name, WithDecryption=True)
    return str(response["Parameter"]["Value"])


def public_url() -> str:
    config = get_config()
    if config.public_url or not config.public_url_parameter:
        return config.public_url
    return _parameter(config.public_url_parameter)


def session_key() -> bytes | None:
    config = get_config()
    secret = config.session_secret
    if not secret and config.session_secret_parameter:
        secret = _parameter(config.session_secret_parameter)
    return link_key(secret.encode()) if secret else None


def build(site: Site, period: Period, now: datetime) -> content.Report:
    """The report's numbers from the query side's planner (imported on this path only)."""
    from query_api.deps import Archive
    from query_api.plan import Planner
    from query_api.reader import CounterReader

    config = get_config()
    archive = (
        Archive(config.archive_bucket, config.archive_cache_bytes)
        if config.archive_bucket
        else None
    )
    reader = CounterReader(make_client("dynamodb"), config.aggregates_table)
    return content.build(Planner(reader, site, archive, now), site, period, now)


def clock() -> datetime:
    return datetime.now(UTC)


@log.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"sent": len(get_runner().run(clock()))}
