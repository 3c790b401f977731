"""Bounded dimension items: first come, capped by count and bytes, the rest under "(other)"."""

from __future__ import annotations

from aggregator.bounded import (
    MAX_VALUE_BYTES,
    MAX_VALUES,
    KnownValues,
    admit,
    item_size,
    write_units,
)
from core.keys import OTHER


def test_new_values_are_admitted_while_the_item_has_room() -> None:
    admission = admit(KnownValues(), {"pageviews|/a": 2, "visitors|/a": 1, "pageviews|/b": 1})
    assert admission.attrs == {"pageviews|/a": 2, "visitors|/a": 1, "pageviews|/b": 1}
    assert admission.admitted == ("/a", "/b")
    assert admission.expected_count == 0
    assert admission.added_bytes == 4


def test_a_full_item_sends_new_values_to_other_and_keeps_the_total() -> None:
    known = KnownValues({f"/p{i}" for i in range(MAX_VALUES)}, MAX_VALUES, 100)
    deltas = {"pageviews|/p1": 3, "pageviews|/new": 2, "pageviews|/newer": 5, "visitors|/new": 1}
    admission = admit(known, deltas)
    assert admission.attrs == {"pageviews|/p1": 3, f"pageviews|{OTHER}": 7, f"visitors|{OTHER}": 1}
    assert admission.admitted == ()
    assert sum(v for k, v in admission.attrs.items() if k.startswith("pageviews")) == 10


def test_the_byte_budget_stops_admission_before_the_count_does() -> None:
    long_value = "/" + "x" * 200
    known = KnownValues(set(), 0, MAX_VALUE_BYTES - 100)
    admission = admit(known, {f"pageviews|{long_value}": 1, "pageviews|/short": 1})
    assert admission.admitted == ("/short",)
    assert admission.attrs == {f"pageviews|{OTHER}": 1, "pageviews|/short": 1}


def test_a_correction_for_a_value_counted_under_other_lands_under_other() -> None:
    known = KnownValues({f"/p{i}" for i in range(MAX_VALUES)}, MAX_VALUES, 100)
    assert admit(known, {"visits|/late": -1}).attrs == {f"visits|{OTHER}": -1}


def test_known_values_are_read_back_from_a_stored_item() -> None:
    item = {
        "pk": {"S": "x"},
        "pageviews|/a": {"N": "3"},
        f"pageviews|{OTHER}": {"N": "9"},
        "n": {"N": "1"},
        "b": {"N": "2"},
    }
    known = KnownValues.from_item(item)
    assert known.values == {"/a"} and known.count == 1 and known.size == 2


def test_an_items_size_counts_names_and_values_and_a_write_each_started_kb() -> None:
    item = {"pk": {"S": "ab"}, "p|/a": {"N": "12"}, "ids": {"BS": [b"xyz", b"q"]}}
    assert item_size(item) == (2 + 3) + (4 + 3) + (3 + 4 + 2)
    assert KnownValues.from_item(item).item_bytes == item_size(item)
    assert [write_units(n) for n in (0, 1, 1024, 1025, 4096, 4097)] == [1, 1, 1, 2, 4, 5]


def test_a_shards_spent_units_are_read_back_from_the_item() -> None:
    assert KnownValues.from_item({"w": {"N": "7"}, "n": {"N": "0"}}).spent == 7
    assert KnownValues.from_item({}).spent == 0
