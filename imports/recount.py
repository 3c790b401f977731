"""Rebuilding a site's counters after an Umami import or its removal: `liveinsight rebuild
--source archive` over the import's days (aggregator/rebuild.py).

Whole months are rebuilt, so month counters hold the imported days too; the range ends at the
start of today (site time), never inside a day the live pipeline is still counting, whose events
of the last rollup window are not archived yet. A month the range does not hold whole (the current
one) keeps its live month counter, and gets the imported days' share beside it: one item per
dimension, sk `<month>#imported`, which readers sum with the month's base and shards as they sum
any shard (query_api/reader.py `summed`). Imported days are before the site's native start
(decision 0035), so their events are in no live count: the two add up exactly. A later rebuild of
that whole month writes the base from the archive, imported events included, and deletes the
item, as it deletes every shard of a bucket it rebuilds (decision 0039).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from core import keys
from core.keys import Granularity
from core.sites import Site

if TYPE_CHECKING:
    from archive.store import ArchiveStore

IMPORTED_SHARD = "imported"


def imported_sk(month: str) -> str:
    """The sk of a month's imported share: a shard of the month's bucket to every reader."""
    return f"{month}{keys.SEP}{IMPORTED_SHARD}"


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
        report = rebuild(
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
        if following > today:  # the last month is not rebuilt whole: its imported share
            write_imported_share(client, aggregates_table, archive, site, last.strftime("%Y-%m"))
        return report

    return recount


def write_imported_share(
    client: Any, table: str, archive: ArchiveStore, site: Site, month: str
) -> int:
    """Write the month's imported share from the archive's imported events of that month's
    days (every Umami import's, as the manifests list them now), and delete the share of each
    dimension that has none any more. The number of items written."""
    from aggregator.bounded import fold_into
    from aggregator.rebuild import FIXED_DIMENSIONS, recount
    from archive.parquet import read_events
    from imports.store import UMAMI, ImportStore

    days = sorted(
        day
        for manifest in ImportStore(archive).manifests(site.domain)
        if manifest.kind == UMAMI
        for day in manifest.days
        if day.startswith(month + "-")
    )
    events = []
    if days:
        files = archive.local_files(site.domain, days[0], days[-1])
        # Umami's ids (imports/umami.py): only what no live counter counted
        events = [e for e in read_events(files) if e.event_id.startswith("umami-")]
    deltas, _, _ = recount(events)
    wanted: dict[str, dict[str, int]] = {}
    for (gran, dimension, label), attrs in deltas.items():
        if gran is Granularity.MONTH and label == month:
            counters = {name: n for name, n in fold_into({}, attrs).items() if n}
            if counters:
                wanted[dimension] = counters
    sk = imported_sk(month)
    for dimension, counters in sorted(wanted.items()):
        client.put_item(
            TableName=table,
            Item={
                "pk": {"S": keys.counter_pk(site.domain, Granularity.MONTH, dimension)},
                "sk": {"S": sk},
                keys.PACKED: {"B": keys.pack({dimension: counters})},
            },
        )
    for dimension in sorted(set(FIXED_DIMENSIONS) - set(wanted)):
        pk = keys.counter_pk(site.domain, Granularity.MONTH, dimension)
        client.delete_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}})
    return len(wanted)
