"""The `visitor_key` column (archive/layout.py): the visitor id as a number, written by the writer
and by compaction's merge, which adds it to files written before it; the engine counts visitors
by it when every file holds it, and answers the same as from files without it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from archive.parquet import connect, merge_files, read_events, schema_problem, write_events
from core.events import RawEvent
from core.sites import Site
from query_api import parse
from query_api.archive_engine import ArchiveEngine, Ask, counters_for, sql_for, units_of
from tests.stats_oracle import MultiOracle
from tests.unit.archive_traffic import SITE, random_events, write_with_duplicates
from tests.unit.test_archive_engine import (
    BREAKDOWNS,
    EVENT_METRICS,
    FILTERS,
    FIRST,
    LAST,
    TZ,
    conds,
    expect,
    query,
)


def md5_key(visitor_id: str) -> int:
    return int(hashlib.md5(visitor_id.encode()).hexdigest()[:16], 16)


def blake_id(name: str) -> str:
    return hashlib.blake2b(name.encode(), digest_size=8).hexdigest()


def without_keys(path: Path, out: Path) -> Path:
    """The file as the writer wrote it before `visitor_key`: the same rows in the same order."""
    connect().execute(
        f"COPY (SELECT * EXCLUDE (visitor_key) FROM read_parquet('{path}')) TO '{out}' "
        "(FORMAT parquet)"
    )
    return out


def keys_of(path: Path) -> dict[str, int | None]:
    rows = connect().execute(f"SELECT visitor_id, visitor_key FROM read_parquet('{path}')")
    return dict(rows.fetchall())


def counted_under_own_ids(events: list[RawEvent]) -> list[RawEvent]:
    """The events as ingest stores them since decision 0024 (no previous visitor id), half the
    visitors with ingest's 16-hex-digit ids, half with other ids (md5 keys)."""
    out = []
    for event in events:
        owner = event.previous_visitor_id or event.visitor_id
        number = int(owner.removeprefix("v"))
        visitor = blake_id(owner) if number % 2 == 0 else owner
        out.append(replace(event, visitor_id=visitor, previous_visitor_id=None))
    return out


@pytest.fixture(scope="module")
def both(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[Path], list[Path], MultiOracle]]:
    events = counted_under_own_ids(random_events(5, count=700))
    directory = tmp_path_factory.mktemp("keys")
    keyed = write_with_duplicates(events, directory, seed=5)
    old = [without_keys(f, directory / f"old-{f.name}") for f in keyed]
    yield keyed, old, MultiOracle(events, TZ)


def engine(files: list[Path]) -> ArchiveEngine:
    return ArchiveEngine(Site(SITE, tz=TZ), files)


def test_the_writer_stores_hex_ids_as_their_number_and_other_ids_as_an_md5_prefix(
    tmp_path: Path,
) -> None:
    base = random_events(1, count=1)[0]
    ids = ["0123456789abcdef", "ffffffffffffffff", "v7", "", "0123456789ABCDEF", "0123456789abcde"]
    events = [replace(base, event_id=f"e{i}", visitor_id=v) for i, v in enumerate(ids)]
    path = tmp_path / "part.parquet"
    write_events(events, path)
    assert keys_of(path) == {
        "0123456789abcdef": 0x0123456789ABCDEF,
        "ffffffffffffffff": 2**64 - 1,
        "v7": md5_key("v7"),
        "": md5_key(""),
        "0123456789ABCDEF": md5_key("0123456789ABCDEF"),  # not lowercase: not ingest's
        "0123456789abcde": md5_key("0123456789abcde"),
    }
    assert {e.visitor_id for e in read_events([path])} == set(ids)  # the key is no event field


def test_merging_files_written_before_visitor_keys_adds_them(tmp_path: Path) -> None:
    events = counted_under_own_ids(random_events(6, count=200))
    new = tmp_path / "new.parquet"
    write_events(events[:120], new)
    old = without_keys(new, tmp_path / "old.parquet")
    write_events(events[100:], tmp_path / "other.parquet")
    old_other = without_keys(tmp_path / "other.parquet", tmp_path / "old-other.parquet")
    assert schema_problem(old) is None  # compaction merges an old file, never quarantines it
    merged = tmp_path / "merged.parquet"
    assert merge_files([old, old_other], merged) == len(events)
    both = tmp_path / "both.parquet"
    assert merge_files([old, tmp_path / "other.parquet"], both) == len(events)
    want = {
        e.visitor_id: int(e.visitor_id, 16) if len(e.visitor_id) == 16 else md5_key(e.visitor_id)
        for e in events
    }
    assert keys_of(merged) == want
    assert keys_of(both) == want
    assert read_events([merged]) == read_events([new, tmp_path / "other.parquet"])


def test_the_engine_counts_by_keys_only_when_every_file_holds_them(
    both: tuple[list[Path], list[Path], MultiOracle],
) -> None:
    keyed, old, _ = both
    assert engine(keyed)._file_facts()[2].keyed
    assert not engine(old)._file_facts()[2].keyed
    assert not engine([*keyed[:-1], old[-1]])._file_facts()[2].keyed
    for files, key in ((keyed, True), (old, False)):
        tzs, heirs, source = engine(files)._file_facts()
        ask = Ask(
            parse.parse_filters("visit:source==Google"),
            None,
            counters_for(["visitors"]),
            units_of(parse.DateRange(FIRST, LAST)),
        )
        text, _ = sql_for(Site(SITE, tz=TZ), ask, source, tzs, heirs)
        assert ("visitor_key" in text, "visitor_id" in text) == (key, not key)


@pytest.mark.parametrize("filters", FILTERS)
def test_files_with_and_without_visitor_keys_give_the_oracles_aggregate(
    both: tuple[list[Path], list[Path], MultiOracle], filters: str
) -> None:
    keyed, old, oracle = both
    metrics = EVENT_METRICS + ",visits,bounce_rate,visit_duration"
    want = expect(oracle.answer(FIRST, LAST, conds(filters)).get("", {}), metrics)
    for files in (keyed, old, [*keyed[:2], *old[2:]]):
        got = engine(files).aggregate(query(filters, metrics))
        assert {m: v["value"] for m, v in got.items()} == want


@pytest.mark.parametrize(("prop", "filters"), BREAKDOWNS)
def test_files_with_and_without_visitor_keys_give_the_oracles_breakdown(
    both: tuple[list[Path], list[Path], MultiOracle], prop: str, filters: str
) -> None:
    keyed, old, oracle = both
    event_only = prop.startswith(("event:props", "event:name", "event:goal")) or any(
        p in filters for p in ("event:props", "event:name", "event:goal")
    )
    metrics = EVENT_METRICS + ("" if event_only else ",visits,bounce_rate,visit_duration")
    if prop == "event:page":
        metrics += ",time_on_page,scroll_depth"
    parsed = parse.parse_property(prop)
    want = {
        value: expect(cell, metrics)
        for value, cell in oracle.answer(FIRST, LAST, conds(filters), prop).items()
    }
    assert want
    for files in (keyed, old):
        rows, _ = engine(files).breakdown(query(filters, metrics), parsed, limit=1000)
        assert {str(r[parsed.key]): {m: r[m] for m in metrics.split(",")} for r in rows} == want
