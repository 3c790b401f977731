"""The event archive on S3 (moto): writes named by their events, reads through the local cache,
compaction, quarantine, retention and purge (decision 0027)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from archive import layout
from archive.compact import apply_retention, compact_day
from archive.parquet import read_events
from archive.store import ArchiveStore
from core.aws import make_client
from core.events import RawEvent

SITE = "shop.example"
# 2026-03-10 22:30 UTC: 23:30 in Berlin, the same day; 23:30 UTC is already the 11th there
NIGHT = int(datetime(2026, 3, 10, 22, 30, tzinfo=UTC).timestamp() * 1000)


def event(
    n: int, ts: int = NIGHT, site: str = SITE, tz: str = "Europe/Berlin", **extra: Any
) -> RawEvent:
    fields: dict[str, Any] = {"page": f"/p{n % 4}", "correlation_id": "req-1", **extra}
    return RawEvent(
        event_id=f"ev-{n:04d}",
        site=site,
        ts=ts + n * 1000,
        name="pageview",
        visitor_id=f"v{n % 3}",
        tz=tz,
        **fields,
    )


@pytest.fixture()
def store(aws_env: dict[str, str], tmp_path: Path) -> ArchiveStore:
    from core import settings

    bucket = settings.load(settings.AggregatorSettings).archive_bucket
    return ArchiveStore(make_client("s3"), bucket, tmp_path / "cache")


def keys_of(store: ArchiveStore, site: str = SITE) -> list[str]:
    return [obj.key.key for obj in store.objects(site)]


def read_all(store: ArchiveStore, site: str = SITE) -> list[RawEvent]:
    return read_events(store.local_files(site, "2000-01-01", "2100-01-01"))


def put_bytes(store: ArchiveStore, key: str, body: bytes) -> None:
    store.s3.put_object(Bucket=store.bucket, Key=key, Body=body)


def test_batch_reads_back_as_its_events_grouped_by_site_and_local_day(store: ArchiveStore) -> None:
    # Given a batch of two sites, one event past midnight in Berlin
    events = [event(n) for n in range(5)] + [event(9, ts=NIGHT + 3_600_000)]
    events += [event(20, site="other.example", tz="UTC", props={"plan": "pro"}, scroll_depth=40)]
    # When it is archived
    written = store.write_batch(events)
    # Then one object per site and site-local day, holding exactly those events as stored
    assert sorted((k.site, k.day) for k in written) == [
        ("other.example", "2026-03-10"),
        (SITE, "2026-03-10"),
        (SITE, "2026-03-11"),
    ]
    assert all(k.name.startswith("part-") for k in written)
    assert store.keys(SITE, "2026-03-11", "2026-03-11") == [
        k for k in written if k.day == "2026-03-11"
    ]
    from dataclasses import replace

    expected = [replace(e, correlation_id="") for e in events]  # a request's id is not archived
    assert read_all(store) == [e for e in expected if e.site == SITE]
    assert read_all(store, "other.example") == [expected[-1]]


def test_retried_batch_overwrites_its_own_object(store: ArchiveStore) -> None:
    batch = [event(n) for n in range(10)]
    first = store.write_batch(batch)
    # When Lambda delivers the same batch again (in another order, even)
    second = store.write_batch(list(reversed(batch)))
    # Then the same key was written: still one object
    assert first == second
    assert len(keys_of(store)) == 1


def test_batch_cut_differently_writes_another_object_but_readers_see_each_event_once(
    store: ArchiveStore,
) -> None:
    batch = [event(n) for n in range(10)]
    store.write_batch(batch[:4])  # a bisected delivery: the first half
    store.write_batch(batch)  # then the whole batch again
    assert len(keys_of(store)) == 2
    assert [e.event_id for e in read_all(store)] == [e.event_id for e in batch]


def test_local_files_fetch_an_object_again_only_when_it_was_rewritten(store: ArchiveStore) -> None:
    store.write_batch([event(n) for n in range(3)])
    store.local_files(SITE, "2026-03-10", "2026-03-10")
    store.local_files(SITE, "2026-03-10", "2026-03-10")
    assert store.cache.fetches == 1  # the unchanged object came from the cache
    # When the object's key gets other bytes (a new ETag)
    key = keys_of(store)[0]
    other = ArchiveStore(store.s3, store.bucket, store.cache.directory.parent / "other")
    other.write_batch([event(50)])
    put_bytes(
        store, key, store.s3.get_object(Bucket=store.bucket, Key=keys_of(store)[1])["Body"].read()
    )
    events = read_all(store)
    # Then it is fetched again and read as it is now
    assert store.cache.fetches == 3  # the changed object, and the new one
    assert [e.event_id for e in events] == ["ev-0050"]


def test_cache_evicts_the_least_recently_used_files_beyond_its_budget(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    from core import settings

    bucket = settings.load(settings.AggregatorSettings).archive_bucket
    store = ArchiveStore(make_client("s3"), bucket, tmp_path, cache_bytes=1)
    day = 86_400_000
    for n in range(3):
        store.write_batch([event(n, ts=NIGHT + n * day)])
    # A call keeps every file it needs, however small the budget
    assert len(store.local_files(SITE, "2026-03-10", "2026-03-12")) == 3
    # The next call evicts what it does not use
    assert len(store.local_files(SITE, "2026-03-12", "2026-03-12")) == 1
    assert len(list(store.cache.directory.glob("*.parquet"))) == 1


def test_poison_object_is_skipped_with_a_warning_and_the_day_still_reads(
    store: ArchiveStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.write_batch([event(n) for n in range(3)])
    put_bytes(store, layout.ObjectKey(SITE, "2026-03-10", "part-bad.parquet").key, b"not parquet")
    wrong = layout.ObjectKey(SITE, "2026-03-10", "part-wrong.parquet").key
    _put_parquet_without_archive_columns(store, wrong)
    with caplog.at_level(logging.WARNING):
        events = read_all(store)
    assert [e.event_id for e in events] == ["ev-0000", "ev-0001", "ev-0002"]
    assert "unreadable" in caplog.text


def _put_parquet_without_archive_columns(store: ArchiveStore, key: str) -> None:
    from archive.parquet import connect

    path = store.cache.directory.parent / "wrong.parquet"
    connect().execute(f"COPY (SELECT 1 AS event_id) TO '{path}' (FORMAT parquet)")
    put_bytes(store, key, path.read_bytes())


def test_compaction_merges_a_day_into_one_object_and_a_second_run_changes_nothing(
    store: ArchiveStore,
) -> None:
    batch = [event(n) for n in range(12)]
    store.write_batch(batch[:5])
    store.write_batch(batch[3:9])  # overlapping: a redelivery cut differently
    store.write_batch(batch[9:])
    before = read_all(store)
    result = compact_day(store, SITE, "2026-03-10")
    assert len(result.merged) == 3 and result.events == 12
    assert keys_of(store) == [result.written]
    assert layout.parse_key(result.written).compacted  # type: ignore[union-attr]
    assert read_all(store) == before
    # And again: a day of one object is left alone
    again = compact_day(store, SITE, "2026-03-10")
    assert again.merged == [] and again.written == ""
    assert keys_of(store) == [result.written]


def test_compaction_beside_a_write_keeps_the_object_put_after_its_listing(
    store: ArchiveStore,
) -> None:
    store.write_batch([event(n) for n in range(3)])
    store.write_batch([event(n) for n in range(3, 6)])
    listed = store.objects(SITE, "2026-03-10", "2026-03-10")
    # A batch lands between compaction's listing and its deletes
    late = store.write_batch([event(n) for n in range(6, 8)])[0]
    # and a listed batch is written again by a retry (same name, same events)
    store.write_batch([event(n) for n in range(3)])
    result = compact_day(store, SITE, "2026-03-10", listed)
    # Then the late object survives, next to the merge, and every event reads once
    assert sorted(keys_of(store)) == sorted([result.written, late.key])
    assert [e.event_id for e in read_all(store)] == [f"ev-{n:04d}" for n in range(8)]
    # and the next run merges it
    compact_day(store, SITE, "2026-03-10")
    assert len(keys_of(store)) == 1
    assert len(read_all(store)) == 8


def test_compaction_quarantines_a_poison_object_and_merges_the_rest(store: ArchiveStore) -> None:
    store.write_batch([event(n) for n in range(3)])
    store.write_batch([event(n) for n in range(3, 5)])
    bad = layout.ObjectKey(SITE, "2026-03-10", "part-bad.parquet").key
    put_bytes(store, bad, b"PAR1 torn upload")
    result = compact_day(store, SITE, "2026-03-10")
    assert result.quarantined == [layout.quarantine_key(bad)]
    assert keys_of(store) == [result.written]
    assert [e.event_id for e in read_all(store)] == [f"ev-{n:04d}" for n in range(5)]
    kept = store.s3.get_object(Bucket=store.bucket, Key=layout.quarantine_key(bad))
    assert kept["Body"].read() == b"PAR1 torn upload"  # kept for a look, out of the readers' way


def test_retention_deletes_the_days_before_the_window_only(store: ArchiveStore) -> None:
    day = 86_400_000
    start = int(datetime(2026, 1, 9, 12, tzinfo=UTC).timestamp() * 1000)
    for n in range(4):  # 2026-01-09 .. 2026-01-12
        store.write_batch([event(n, ts=start + n * day, tz="UTC")])
    put_bytes(
        store,
        layout.quarantine_key(layout.ObjectKey(SITE, "2026-01-09", "part-x.parquet").key),
        b"x",
    )
    store.write_batch([event(9, ts=start, site="other.example", tz="UTC")])
    # Given a 2-month retention on 2026-03-11: 2026-01-11 is the first day kept
    deleted = apply_retention(store, SITE, 2, "UTC", datetime(2026, 3, 11, 8, tzinfo=UTC))
    assert sorted(k.split("/")[2] for k in deleted) == ["2026-01-09", "2026-01-09", "2026-01-10"]
    assert [obj.key.day for obj in store.objects(SITE)] == ["2026-01-11", "2026-01-12"]
    assert store.quarantined(SITE) == []
    assert len(store.objects("other.example")) == 1  # another site's retention is its own


def test_purge_deletes_every_object_of_the_site_and_nothing_else(store: ArchiveStore) -> None:
    store.write_batch([event(n) for n in range(3)] + [event(5, site="shop.example.org")])
    store.write_batch([event(n) for n in range(3, 5)])
    put_bytes(store, layout.quarantine_key(keys_of(store)[0]), b"x")
    before = keys_of(store)
    deleted = store.purge(SITE)
    assert sorted(deleted) == sorted([*before, layout.quarantine_key(before[0])])
    assert keys_of(store) == [] and store.quarantined(SITE) == []
    assert len(keys_of(store, "shop.example.org")) == 1


def test_newest_is_the_last_write_of_the_latest_day(store: ArchiveStore) -> None:
    assert store.newest(SITE) is None
    store.write_batch([event(1, ts=NIGHT + 3_600_000)])  # the 11th in Berlin
    latest = store.objects(SITE)[-1]
    store.write_batch([event(2)])  # the 10th, written later (a late batch)
    assert store.newest(SITE) == latest.last_modified
