"""archive/parquet.py: what every archive file promises its readers, and DuckDB's limits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from archive.parquet import connect, memory_limit_mb, write_events
from tests.unit.archive_traffic import random_events


def test_a_file_holds_each_event_once_sorted_by_visitor_time_and_id(tmp_path: Path) -> None:
    events = random_events(2, count=60)
    doubled = [*events, *events[:10], replace(events[0], ts=events[0].ts + 5)]
    path = tmp_path / "part.parquet"
    assert write_events(doubled, path) == len(events)
    rows = connect().execute(f"SELECT visitor_id, ts, event_id FROM read_parquet('{path}')")
    got = rows.fetchall()
    assert len({r[2] for r in got}) == len(got) == len(events)
    assert got == sorted(got)


@pytest.mark.parametrize(
    ("function_mb", "limit_mb"), [("2048", 1228), ("10240", 6144), ("x", 1228)]
)
def test_duckdb_gets_a_share_of_the_function_memory_and_spills_to_tmp(
    monkeypatch: pytest.MonkeyPatch, function_mb: str, limit_mb: int
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", function_mb)
    assert memory_limit_mb() == limit_mb
    con = connect()
    setting = con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert setting is not None and str(setting[0]).endswith(" GiB")  # DuckDB cuts to 0.1 GiB
    assert 0 <= limit_mb / 1024 - float(str(setting[0]).split()[0]) < 0.1
    temp = con.execute("SELECT current_setting('temp_directory')").fetchone()
    assert temp is not None and "duckdb-spill" in str(temp[0])
