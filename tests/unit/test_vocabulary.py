"""The counter vocabulary (core/vocabulary.py) is what the writers write and the reader trusts:
every counter the fold writes for a dimension is one its kind keeps, and every counter a kind
keeps is written for it somewhere, so the counters engine never refuses or misreads a question
because the two drifted apart. The oracle keeps its own list and must agree too."""

from __future__ import annotations

from collections import defaultdict

from core import vocabulary
from core.events import ENGAGEMENT
from core.keys import TOTALS, parse_counter_attr
from tests.unit.fold_helpers import GAP_MS, event, folded, ms, oracle_cells

T0 = ms("2026-03-02T10:00:00+00:00")


def _events() -> list:
    """One visitor with every kind of counter: two visits (one bounces), a custom event, a prop,
    a hostname, engagement with scroll depth."""
    return [
        event(T0, page="/", source="Google", country="DE", hostname="example.com"),
        event(T0 + 10_000, page="/pricing", props={"plan": "pro"}, hostname="example.com"),
        event(T0 + 20_000, name=ENGAGEMENT, page="/pricing", scroll_depth=70, engaged_ms=9_000),
        event(T0 + 25_000, name="Signup", page="/pricing", hostname="example.com"),
        event(T0 + GAP_MS + 60_000, page="/blog", source="Direct / None"),
    ]


def _written(cells: dict) -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = defaultdict(set)
    for (_, dimension, _), attrs in cells.items():
        for name, value in attrs.items():
            if value:
                kinds[vocabulary.kind_of(dimension)].add(parse_counter_attr(name)[0])
    return kinds


def test_the_fold_writes_only_what_each_kind_of_dimension_keeps() -> None:
    written = _written(folded(_events()))
    for kind, counters in written.items():
        assert counters <= vocabulary.KEPT[kind], (kind, counters - vocabulary.KEPT[kind])


def test_every_counter_a_kind_keeps_is_written() -> None:
    written = _written(folded(_events()))
    for kind, kept in vocabulary.KEPT.items():
        if kind == vocabulary.GOAL:
            continue  # read from the name and page dimensions, never written as such
        assert kept <= written[kind], (kind, kept - written[kind])


def test_the_oracle_agrees_with_the_vocabulary() -> None:
    written = _written(oracle_cells(_events()))
    assert written[TOTALS] == vocabulary.KEPT[TOTALS]
    for kind, counters in written.items():
        assert counters <= vocabulary.KEPT[kind], (kind, counters - vocabulary.KEPT[kind])


def test_every_counter_has_one_stored_code() -> None:
    codes = list(vocabulary.STORED_CODES.values())
    assert len(codes) == len(set(codes))
    for kept in vocabulary.KEPT.values():
        assert kept <= set(vocabulary.STORED_CODES)
