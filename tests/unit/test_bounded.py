"""Bounded dimension items: first come, capped by count and bytes, the rest under "(other)"."""

from __future__ import annotations

from aggregator.bounded import (
    MAX_VALUE_BYTES,
    MAX_VALUES,
    KnownValues,
    admit,
    fold_into,
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


def test_a_fold_admits_new_values_heaviest_first_and_keeps_the_totals() -> None:
    base = {f"pageviews|/p{i}": 1 for i in range(MAX_VALUES - 2)}
    deltas = {
        "pageviews|/p0": 4,  # held: adds where it is
        "pageviews|/light": 1,
        "pageviews|/heavy": 9,
        "visitors|/heavy": 2,
        "pageviews|/middle": 5,
        "visits|/light": 1,
    }
    out = fold_into(base, deltas)
    assert out["pageviews|/p0"] == 5
    assert out["pageviews|/heavy"] == 9 and out["visitors|/heavy"] == 2
    assert out["pageviews|/middle"] == 5  # the last place went by weight, not by name
    assert "pageviews|/light" not in out
    assert out[f"pageviews|{OTHER}"] == 1 and out[f"visits|{OTHER}"] == 1
    pageviews = sum(v for k, v in out.items() if k.startswith("pageviews|"))
    assert pageviews == sum(base.values()) + 4 + 1 + 9 + 5


def test_a_folds_admission_is_final_so_corrections_land_where_their_counts_did() -> None:
    full = fold_into({}, {f"pageviews|/p{i}": 1 for i in range(MAX_VALUES)})
    refused = fold_into(full, {"visits|/late": 1})
    assert refused[f"visits|{OTHER}"] == 1
    corrected = fold_into(refused, {"visits|/late": -1, "visits|/p3": -1})
    assert corrected[f"visits|{OTHER}"] == 0 and corrected["visits|/p3"] == -1
    long_value = "/" + "x" * 300
    by_bytes = fold_into({"pageviews|/" + "y" * (MAX_VALUE_BYTES - 100): 1}, {})
    assert fold_into(by_bytes, {f"pageviews|{long_value}": 1}) == {
        **by_bytes,
        f"pageviews|{OTHER}": 1,
    }
