"""The archive's pure parts: which day an event is archived under, the retention window, the
local file cache, and what the realtime tier imports (decision 0027)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from archive.compact import expired_before
from archive.store import FileCache, _Pin, day_of
from core.events import RawEvent


def at(moment: datetime, tz: str) -> RawEvent:
    return RawEvent("e", "s.example", int(moment.timestamp() * 1000), "pageview", "v", tz=tz)


@pytest.mark.parametrize(
    ("moment", "tz", "day"),
    [
        (datetime(2026, 3, 10, 22, 59, tzinfo=UTC), "Europe/Berlin", "2026-03-10"),
        (datetime(2026, 3, 10, 23, 0, tzinfo=UTC), "Europe/Berlin", "2026-03-11"),
        # summer time: midnight in Berlin is 22:00 UTC
        (datetime(2026, 3, 29, 22, 0, tzinfo=UTC), "Europe/Berlin", "2026-03-30"),
        (datetime(2026, 3, 11, 3, 0, tzinfo=UTC), "America/New_York", "2026-03-10"),
        (datetime(2026, 3, 11, 3, 0, tzinfo=UTC), "UTC", "2026-03-11"),
    ],
)
def test_an_event_is_archived_under_its_site_local_day(moment: datetime, tz: str, day: str) -> None:
    assert day_of(at(moment, tz)) == day


@pytest.mark.parametrize(
    ("today", "months", "first_kept"),
    [
        (date(2026, 3, 11), 2, "2026-01-11"),
        (date(2026, 3, 11), 24, "2024-03-11"),
        (date(2026, 1, 15), 1, "2025-12-15"),
        (date(2026, 5, 31), 3, "2026-02-28"),  # no 31st: the month's last day
        (date(2028, 5, 31), 3, "2028-02-29"),
        (date(2026, 3, 11), 120, "2016-03-11"),
    ],
)
def test_retention_keeps_whole_months_back_from_today(
    today: date, months: int, first_kept: str
) -> None:
    assert expired_before(today, months) == first_kept


def _fetch_bytes(size: int) -> object:
    def fetch(key: str, etag: str, path: Path) -> bool:
        path.write_bytes(b"x" * size)
        return True

    return fetch


def test_cache_serves_a_key_and_etag_from_disk_and_another_etag_fetches(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, budget=1000)
    with _Pin() as pin:
        first = cache.get("k", '"a"', _fetch_bytes(10), pin)
        assert cache.get("k", '"a"', _fetch_bytes(10), pin) == first
        assert cache.fetches == 1
        assert cache.get("k", '"b"', _fetch_bytes(10), pin) != first
        assert cache.fetches == 2


def test_cache_evicts_least_recently_used_first_and_never_a_pinned_file(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, budget=250)
    with _Pin() as pin:
        a = cache.get("a", "1", _fetch_bytes(100), pin)
        b = cache.get("b", "1", _fetch_bytes(100), pin)
    with _Pin() as pin:
        cache.get("a", "1", _fetch_bytes(100), pin)  # a used again: b is now the oldest
    with _Pin() as pin:
        c = cache.get("c", "1", _fetch_bytes(100), pin)
    assert a and c and a.exists() and c.exists()
    assert b and not b.exists()
    assert cache.size == 200
    # A call needing more than the budget keeps all it needs
    with _Pin() as pin:
        big = [cache.get(k, "1", _fetch_bytes(100), pin) for k in ("x", "y", "z")]
        assert all(p and p.exists() for p in big)


def test_cache_finds_the_files_an_earlier_instance_left(tmp_path: Path) -> None:
    with _Pin() as pin:
        path = FileCache(tmp_path, budget=1000).get("a", "1", _fetch_bytes(10), pin)
    again = FileCache(tmp_path, budget=1000)
    with _Pin() as pin:
        assert again.get("a", "1", _fetch_bytes(10), pin) == path
    assert again.fetches == 0


def test_a_fetch_that_finds_nothing_to_keep_leaves_no_file(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, budget=1000)
    with _Pin() as pin:
        assert cache.get("a", "1", lambda key, etag, path: False, pin) is None
    assert list(tmp_path.iterdir()) == []


IMPORTS = """
import sys
import aggregator.handler
print(int("duckdb" in sys.modules), int("archive.store" in sys.modules))
"""


def test_the_aggregator_imports_neither_duckdb_nor_the_archive_at_cold_start() -> None:
    # In a fresh interpreter: this one has imported everything already. The realtime tier's
    # invocations never call get_archive(), which is where the archive is imported.
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.split() == ["0", "0"]
