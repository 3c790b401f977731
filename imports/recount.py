"""Rebuilding a site's counters after an Umami import or its removal: `liveinsight rebuild
--source archive` over the import's days (aggregator/rebuild.py).

Whole months are rebuilt, so month counters hold the imported days too; the range ends at the
start of today (site time), never inside a day the live pipeline is still counting, whose events
of the last rollup window are not archived yet. The current month's month counter is therefore
not rewritten: a question over the whole current month adds its days (decision 0035).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.sites import Site


def archive_recount(
    client: Any, aggregates_table: str, archive: Any, site: Site, now: datetime
) -> Callable[[date, date], object]:
    def recount(first: date, last: date) -> object:
        from aggregator.rebuild import rebuild
        from core.schema import load_schema

        zone = ZoneInfo(site.tz)
        start = datetime.combine(first.replace(day=1), time(), zone)
        following = (last.replace(day=1) + timedelta(days=32)).replace(day=1)
        today = now.astimezone(zone).date()
        end = datetime.combine(min(following, today), time(), zone)
        if end <= start:
            return None
        return rebuild(
            client,
            "",  # read from the archive, never the events table
            aggregates_table,
            site.domain,
            site.tz,
            start,
            end,
            now,
            load_schema().retention.minute_bucket_ttl_seconds,
            archive=archive,
        )

    return recount
