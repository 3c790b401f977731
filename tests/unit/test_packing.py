"""Packed items (slots and bases, decision 0025): a value's text once, and the first layout still
read."""

from __future__ import annotations

import json
import zlib

from core import keys

LONG = "/blog/2023/notes-on-serverless-analytics-part-17"


def slot_of(values: int) -> dict[str, dict[str, int]]:
    """A quiet batch's slot: a few dimensions, each value with the counters a session gives."""
    pages = {f"{LONG}-{k}": k + 1 for k in range(values)}
    return {
        "_": {"pageviews": 9, "visits": 4, "duration_ms": 81_000},
        "entry_page": {
            keys.counter_attr(metric, page): n
            for page, n in pages.items()
            for metric in ("visits", "bounces", "duration_ms", "pageviews", "visitors")
        },
        "page": {
            keys.counter_attr(metric, page): n
            for page, n in pages.items()
            for metric in ("pageviews", "visitors", "top_ms", "top_n")
        },
    }


def first_layout(cells: dict[str, dict[str, int]]) -> bytes:
    """How a packed item was stored before decision 0025: {dimension: {stored name: count}}."""
    stored = {d: {keys.stored_attr(n): c for n, c in cs.items()} for d, cs in cells.items()}
    return zlib.compress(json.dumps(stored, separators=(",", ":")).encode(), 6)


def test_a_packed_item_reads_back_every_counter_exactly() -> None:
    # Given counters with odd values: empty, holding '|', "(other)", negative, zero, and values
    # that lack some of their dimension's counters
    cells = {
        "_": {"pageviews": 3, "visits": -1, "events": 0},
        "prop:plan": {"events|": 2, "events|a|b": 1, "pageviews|a|b": -4},
        "page": {"pageviews|(other)": 5, "visitors|/a": 1, "top_ms|/a": 1200, "pageviews|/b": 0},
    }
    # When packed and read back
    # Then every counter comes back under its full name with its count, and nothing else
    assert keys.unpack(keys.pack(cells)) == cells


def test_a_value_is_stored_once_whatever_its_counters() -> None:
    # Given a page value with five counters
    cells = {"entry_page": slot_of(1)["entry_page"]}
    # When packed
    text = zlib.decompress(keys.pack(cells)).decode()
    # Then its text is there once (it was once per counter), with the short codes
    assert text.count(LONG) == 1
    assert '"s"' in text and '"visits' not in text


def test_a_quiet_batchs_slot_packs_smaller_than_in_the_first_layout() -> None:
    # Given a slot of 40 long page values
    cells = slot_of(40)
    # When packed now and as it was
    # Then it takes at least a quarter fewer bytes (a write is billed per started KB)
    assert len(keys.pack(cells)) <= 0.75 * len(first_layout(cells))


def test_items_packed_in_the_first_layout_read_as_before() -> None:
    # Given a slot and a base written before decision 0025
    cells = slot_of(3)
    blob = first_layout(cells)
    base = {"pk": {"S": "C#s#d#page"}, "sk": {"S": "2026-11-27"}, keys.PACKED: {"B": blob}}
    # When read
    # Then they hold the same counters, under full names
    assert keys.unpack(blob) == cells
    summed: dict[str, int] = {}
    for counters in cells.values():  # an item's counters, every dimension's summed by name
        for name, count in counters.items():
            summed[name] = summed.get(name, 0) + count
    assert keys.item_counters(base) == summed


def test_each_kind_of_item_is_named_from_its_key() -> None:
    site = "blog.example"
    g = keys.Granularity
    assert keys.item_kind(keys.event_pk(site, "v1"), keys.event_sk("e1")) == "raw event"
    assert keys.item_kind(keys.legacy_event_pk(site, "e1")) == "raw event"
    assert keys.item_kind(keys.visitor_pk(site, "v1", "rollup"), keys.NO_SORT) == "visitor state"
    assert keys.item_kind(keys.visitor_pk(site, "v1"), keys.NO_SORT) == "visitor state"
    assert keys.item_kind(keys.minute_pk(site, 5), "2026-11-27T10:00#5") == "minute part"
    assert keys.item_kind(keys.legacy_minute_pk(site), "2026-11-27T10:00") == "minute part"
    assert keys.item_kind(keys.counter_pk(site, g.HOUR), "2026-11-27T10#2") == "hour shard"
    assert (
        keys.item_kind(keys.slot_pk(site, g.DAY, 3), keys.slot_sk("2026-11-27", "1")) == "day slot"
    )
    assert (
        keys.item_kind(keys.slot_pk(site, g.MONTH, 0), keys.slot_sk("2026-11", "1")) == "month slot"
    )
    assert keys.item_kind(keys.counter_pk(site, g.DAY, "page"), "2026-11-27") == "day base"
    assert keys.item_kind(keys.counter_pk(site, g.MONTH, "page"), "2026-11#2") == "month shard"
    assert keys.item_kind(keys.prop_key_list_pk(site, g.DAY), "2026-11-27") == "day key list"
    assert keys.item_kind("SITE", "blog.example") == "other"
