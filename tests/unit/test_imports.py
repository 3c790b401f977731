"""The import files' parsers and the imported-data rules, without AWS (decision 0035)."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from typing import Any

import pytest
from botocore.exceptions import ClientError

from imports import plausible, umami
from imports.errors import ImportRefused
from imports.service import _ranges, detect_kind
from query_api.imported import tables_for
from tests.import_files import plausible_export, umami_export


def test_a_plausible_zip_parses_into_its_tables_with_direct_traffic_named() -> None:
    export = plausible.parse(plausible_export(date(2026, 1, 30), 3).data, "export.zip")
    assert export.days == ("2026-01-30", "2026-02-01")
    assert set(export.tables) == set(plausible.TABLES)
    sources = {r["source"] for r in export.tables["sources"].rows}
    assert sources == {"Google", "Direct / None"}
    entries = export.tables["entry_pages"].rows[0]
    assert entries["visits"] > 0  # Plausible's `entrances`


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("imported_visitors_20260101_20260101.csv", b"date,visitors\n2026-1-5,3\n", "line 2: date"),
        (
            "imported_visitors_20260101_20260101.csv",
            b"date,visitors\n2026-01-05,-3\n",
            "out of range",
        ),
        (
            "imported_sources_20260101_20260101.csv",
            b"date,visitors\n2026-01-05,3\n",
            "missing column(s) source",
        ),
        ("visits.csv", b"date,visitors\n", "not a Plausible export table"),
        ("export.zip", b"PK\x03\x04garbage", "not a readable zip"),
    ],
)
def test_a_bad_plausible_file_is_refused_saying_where(name: str, data: bytes, said: str) -> None:
    with pytest.raises(ImportRefused) as caught:
        plausible.parse(data, name)
    assert said in str(caught.value)


def test_a_zip_without_the_visitors_table_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("imported_sources_20260101_20260101.csv", "date,source,visitors\n")
    with pytest.raises(ImportRefused, match="imported_visitors"):
        plausible.parse(buffer.getvalue(), "export.zip")


def test_umami_rows_become_events_with_daily_hashed_visitors_and_stable_ids() -> None:
    export = umami_export(date(2026, 2, 1), 2, "www.site.example")
    first = umami.parse(export.data, "e.csv", "site.example", "UTC").events
    again = umami.parse(export.data, "e.csv", "site.example", "UTC").events
    assert [e.event_id for e in first] == [e.event_id for e in again]
    assert len({e.event_id for e in first}) == len(first)
    assert all(len(e.visitor_id) == 16 for e in first)
    raw_sessions = {line.split(b",")[1].decode() for line in export.data.splitlines()[1:]}
    assert not {e.visitor_id for e in first} & raw_sessions  # never stored raw
    assert {e.hostname for e in first} == {"site.example"}
    assert {e.browser for e in first} == {"Chrome", "Firefox"}  # Umami's crios, firefox
    assert {e.source for e in first if e.referrer} == {"Google"}
    assert sum(1 for e in first if e.name == "Signup") == 2


def test_kinds_are_told_apart_and_anything_else_refused() -> None:
    assert detect_kind(umami_export(date(2026, 2, 1), 1, "a.example").data, "x.csv") == "umami"
    assert detect_kind(b"PK\x03\x04", "x.zip") == "plausible"
    assert detect_kind(b"date,visitors\n", "imported_visitors_20260101_20260102.csv") == "plausible"
    with pytest.raises(ImportRefused, match="neither"):
        detect_kind(b"a,b\n1,2\n", "data.csv")


def test_days_fold_into_ranges() -> None:
    days = ["2026-01-03", "2026-01-01", "2026-01-02", "2026-01-05"]
    assert _ranges(days) == [["2026-01-01", "2026-01-03"], ["2026-01-05", "2026-01-05"]]


class _Refusing:
    """An archive whose imports/ listing the role may not read (a deployment before 0035's IAM)."""

    @property
    def imports(self) -> Any:
        class Store:
            def manifests(self, site: str) -> Any:
                raise ClientError({"Error": {"Code": "AccessDenied"}}, "ListObjectsV2")

        return Store()


def test_imports_that_cannot_be_read_leave_the_native_answer_alone() -> None:
    assert tables_for(_Refusing(), "a.example", "true") is None
    assert tables_for(None, "a.example", "true") is None
    assert tables_for(_Refusing(), "a.example", None) is None
