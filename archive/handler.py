"""Lambda entry point: the archive's scheduled compaction and retention (EventBridge, hourly).

Every site with archive objects gets its retention applied and each of its days with more than
one object merged into one (archive/compact.py). A run that nears the invocation's timeout stops
between days; the next run goes on from the listing.

The same function does the Umami imports and removals asked through the admin API: S3 notifies it
of each request stored under imports/ (imports/worker.py, decision 0039).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from archive.compact import compact_all
from archive.store import ArchiveStore
from core import settings
from core.aws import make_client
from core.observability import logger
from core.sites import SiteStore

log = logger("archive")


@lru_cache(maxsize=1)
def get_config() -> settings.ArchiveSettings:
    return settings.load(settings.ArchiveSettings)


@lru_cache(maxsize=1)
def get_store() -> ArchiveStore:
    return ArchiveStore(make_client("s3"), get_config().archive_bucket)


@lru_cache(maxsize=1)
def get_sites() -> SiteStore:
    return SiteStore(make_client("dynamodb"), get_config().meta_table, cache_seconds=0)


def scheduled_time(event: dict[str, Any]) -> datetime:
    """The run's clock: the scheduled event's `time` (EventBridge's, UTC), else now."""
    text = event.get("time") if isinstance(event, dict) else None
    if isinstance(text, str):
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


@log.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from imports import worker  # a few modules; DuckDB is imported either way

    if worker.is_import_event(event):
        # The counters' client, made per request (they are rare), not kept for compaction.
        return worker.handle(event, get_store(), get_sites(), make_client("dynamodb"))
    reserve_ms = get_config().reserve_seconds * 1000
    retention = {site.domain: (site.retention_months, site.tz) for site in get_sites().list()}
    report = compact_all(
        get_store(),
        retention,
        scheduled_time(event),
        out_of_time=lambda: context.get_remaining_time_in_millis() < reserve_ms,
    )
    summary = report.summary()
    (log.warning if report.failed_days or report.quarantined else log.info)(
        "archive compacted", extra=summary
    )
    return summary
