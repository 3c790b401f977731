"""Raw events out of the archive (archive/export.py): Parquet and CSV, each event once."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from archive.export import ExportError, export
from archive.parquet import read_events
from archive.store import ArchiveStore
from core.aws import make_client
from core.events import RawEvent
from tests.integration.test_archive_store import NIGHT, SITE, event

DAY = 86_400_000


@pytest.fixture()
def store(aws_env: dict[str, str], tmp_path: Path) -> ArchiveStore:
    from core import settings

    bucket = settings.load(settings.AggregatorSettings).archive_bucket
    archive = ArchiveStore(make_client("s3"), bucket, tmp_path / "cache")
    batch = [event(n) for n in range(6)]
    archive.write_batch(batch[:4])
    archive.write_batch(batch)  # a redelivery cut differently: events 0-3 twice
    archive.write_batch([event(7, ts=NIGHT + 2 * DAY), event(8, ts=NIGHT + 5 * DAY)])
    archive.write_batch([event(9, props={"plan": "pro", "q": 'a"b'}, page="=HYPERLINK(1)")])
    archive.write_batch([event(10, site="other.example")])
    return archive


def test_parquet_export_holds_each_event_of_the_days_once(
    store: ArchiveStore, tmp_path: Path
) -> None:
    data = export(store, SITE, "2026-03-10", "2026-03-12", "parquet")
    path = tmp_path / "out.parquet"
    path.write_bytes(data)
    ids = [e.event_id for e in read_events([path])]
    # days 10 and 12 (the 15th is outside), each event once, no other site's
    assert ids == [f"ev-{n:04d}" for n in (0, 1, 2, 3, 4, 5, 9, 7)]
    assert data[:4] == b"PAR1"


def test_csv_export_has_a_header_props_as_json_and_formulas_as_text(store: ArchiveStore) -> None:
    text = export(store, SITE, "2026-03-10", "2026-03-10", "csv").decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["event_id"] for r in rows] == [f"ev-{n:04d}" for n in (0, 1, 2, 3, 4, 5, 9)]
    assert list(rows[0]) == [f.name for f in RawEvent.__dataclass_fields__.values()][:-1]
    with_props = rows[-1]
    assert json.loads(with_props["props"]) == {"plan": "pro", "q": 'a"b'}
    assert with_props["page"] == "'=HYPERLINK(1)"  # a spreadsheet shows it, never runs it
    assert rows[0]["props"] == "{}" and rows[0]["scroll_depth"] == ""


def test_export_of_days_without_events_is_empty_with_the_header(store: ArchiveStore) -> None:
    text = export(store, SITE, "2025-01-01", "2025-01-31", "csv").decode()
    assert text.splitlines() == [
        ",".join(f for f in RawEvent.__dataclass_fields__)[: -len(",correlation_id")]
    ]


@pytest.mark.parametrize(
    ("first", "last", "fmt"),
    [
        ("2026-03-10", "2026-03-11", "xlsx"),
        ("2026-03-12", "2026-03-10", "csv"),
        ("yesterday", "2026-03-10", "csv"),
    ],
)
def test_export_refuses_what_it_cannot_answer(
    store: ArchiveStore, first: str, last: str, fmt: str
) -> None:
    with pytest.raises(ExportError):
        export(store, SITE, first, last, fmt)
