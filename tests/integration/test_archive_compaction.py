"""The scheduled compaction function (archive/handler.py) through the local Lambda emulation, and
the local stack's copy of the bucket on disk (decision 0027)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from archive import layout
from archive.handler import handler
from archive.store import ArchiveStore
from core.aws import make_client
from core.sites import SiteStore
from local import tables
from local.runtime import LocalFunction
from tests.integration.test_archive_store import event

DAY = 86_400_000
JAN_9 = int(datetime(2026, 1, 9, 12, tzinfo=UTC).timestamp() * 1000)


def scheduled(moment: datetime) -> dict[str, Any]:
    """What an EventBridge schedule sends."""
    return {
        "version": "0",
        "id": "e1",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/compaction"],
        "detail": {},
    }


@pytest.fixture()
def store(aws_env: dict[str, str], tmp_path: Path) -> ArchiveStore:
    from core import settings

    bucket = settings.load(settings.AggregatorSettings).archive_bucket
    return ArchiveStore(make_client("s3"), bucket, tmp_path / "cache")


def days(store: ArchiveStore, site: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for obj in store.objects(site):
        found[obj.key.day] = found.get(obj.key.day, 0) + 1
    return found


def test_scheduled_run_compacts_every_sites_days_and_applies_each_retention(
    aws_env: dict[str, str], store: ArchiveStore
) -> None:
    sites = SiteStore(make_client("dynamodb"), aws_env["meta"], cache_seconds=0)
    sites.add("short.example", retention_months=2)
    sites.add("long.example")  # the default: 24 months
    for site in ("short.example", "long.example", "removed.example"):
        for n in range(4):  # 2026-01-09 .. 2026-01-12, two objects a day
            store.write_batch([event(2 * n, ts=JAN_9 + n * DAY, site=site, tz="UTC")])
            store.write_batch([event(2 * n + 1, ts=JAN_9 + n * DAY, site=site, tz="UTC")])
    poison = layout.ObjectKey("long.example", "2026-01-12", "part-torn.parquet").key
    store.s3.put_object(Bucket=store.bucket, Key=poison, Body=b"PAR1")

    # When the schedule fires on 2026-03-11 (the short site keeps 2026-01-11 on)
    function = LocalFunction("archive", handler, timeout_seconds=900)
    summary = function.invoke(scheduled(datetime(2026, 3, 11, 3, tzinfo=UTC)))

    # Then each kept day is one object, the expired days are gone, the poison is aside
    assert days(store, "short.example") == {"2026-01-11": 1, "2026-01-12": 1}
    assert days(store, "long.example") == dict.fromkeys(
        ("2026-01-09", "2026-01-10", "2026-01-11", "2026-01-12"), 1
    )
    assert days(store, "removed.example") == days(store, "long.example")  # a removed site: 24
    assert summary["objects_expired"] == 4 and summary["quarantined"] == [
        layout.quarantine_key(poison)
    ]
    assert summary["days_compacted"] == 10 and not summary["unfinished"]
    assert len(store.local_files("long.example", "2026-01-01", "2026-01-31")) == 4
    # And the next run has nothing to do
    again = function.invoke(scheduled(datetime(2026, 3, 11, 4, tzinfo=UTC)))
    assert (again["days_compacted"], again["objects_expired"]) == (0, 0)


def test_a_run_out_of_time_stops_between_days_and_the_next_goes_on(
    aws_env: dict[str, str], store: ArchiveStore
) -> None:
    for n in range(3):
        store.write_batch([event(2 * n, ts=JAN_9 + n * DAY, tz="UTC")])
        store.write_batch([event(2 * n + 1, ts=JAN_9 + n * DAY, tz="UTC")])
    # A function whose timeout leaves less than the reserve: it stops before the first day
    short = LocalFunction("archive", handler, timeout_seconds=1)
    assert short.invoke(scheduled(datetime(2026, 1, 20, tzinfo=UTC)))["unfinished"] is True
    assert sum(days(store, "shop.example").values()) == 6
    full = LocalFunction("archive", handler, timeout_seconds=900)
    assert full.invoke(scheduled(datetime(2026, 1, 20, tzinfo=UTC)))["days_compacted"] == 3


def test_the_bucket_is_kept_on_disk_and_restored(store: ArchiveStore, tmp_path: Path) -> None:
    mirror = tmp_path / "archive"
    store.write_batch([event(n) for n in range(3)])
    store.write_batch([event(n) for n in range(3, 6)])
    assert tables.save_bucket(store.s3, store.bucket, mirror) == 2
    # compaction replaces the two objects with one: the next save follows
    from archive.compact import compact_day

    compact_day(store, "shop.example", "2026-03-10")
    # the compact object and its visits object (decision 0032)
    assert tables.save_bucket(store.s3, store.bucket, mirror) == 2
    compact = store.objects("shop.example")[0].key.name
    assert sorted(p.name for p in mirror.rglob("*.parquet")) == [
        compact,
        f"v{layout.VISITS_VERSION}-{compact}",
    ]
    # and a fresh bucket restored from the copy reads the same events
    fresh = ArchiveStore(store.s3, f"{store.bucket}-restored", tmp_path / "cache2")
    tables.create_bucket(store.s3, fresh.bucket)
    assert tables.load_bucket(store.s3, fresh.bucket, mirror) == 2
    from archive.parquet import read_events

    assert read_events(
        fresh.local_files("shop.example", "2026-03-10", "2026-03-10")
    ) == read_events(store.local_files("shop.example", "2026-03-10", "2026-03-10"))


def test_compacting_objects_written_before_visitor_keys_gives_the_day_its_keys(
    store: ArchiveStore, tmp_path: Path
) -> None:
    """Objects written before the `visitor_key` column (decision 0028) are merged, not
    quarantined, and the compact object holds every visitor's key."""
    from archive.compact import compact_day
    from archive.parquet import connect, write_events

    con = connect()
    hex_id = "00ff00ff00ff00ff"
    for part in range(2):
        events = [event(2 * n + part, ts=JAN_9, site="old.example", tz="UTC") for n in range(3)]
        events[0] = replace(events[0], visitor_id=hex_id)
        fresh, old = tmp_path / f"fresh-{part}.parquet", tmp_path / f"old-{part}.parquet"
        write_events(events, fresh)
        con.execute(
            f"COPY (SELECT * EXCLUDE (visitor_key) FROM read_parquet('{fresh}')) TO '{old}' "
            "(FORMAT parquet)"
        )
        store.put_file(layout.ObjectKey("old.example", "2026-01-09", f"part-{part}.parquet"), old)

    done = compact_day(store, "old.example", "2026-01-09")

    assert done.written and not done.quarantined and done.events == 6
    merged = tmp_path / "merged.parquet"
    store.download(done.written, merged)
    keys = dict(
        con.execute(f"SELECT visitor_id, visitor_key FROM read_parquet('{merged}')").fetchall()
    )
    md5 = {v: int(hashlib.md5(v.encode()).hexdigest()[:16], 16) for v in ("v0", "v1", "v2")}
    assert keys == {hex_id: 0x00FF00FF00FF00FF, **{v: k for v, k in md5.items() if v in keys}}
    assert len(keys) >= 3
