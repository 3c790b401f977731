"""Realtime's minute parts (decision 0012): where each event goes, and what it adds there."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import pytest

from aggregator import minutes
from aggregator.bounded import KnownValues
from aggregator.minutes import (
    Contribution,
    Part,
    PartKey,
    contribution,
    event_hash,
    plan_update,
    route,
)
from aggregator.processor import StreamItem
from core import keys
from core.events import RawEvent
from core.keys import Granularity

T0 = 1_774_778_400_000  # 2026-03-29T10:00:00Z


def pageview(event_id: str, visitor: str = "v1", **fields: Any) -> Contribution:
    event = RawEvent(
        event_id=event_id, site="a.example", ts=T0, name="pageview", visitor_id=visitor, **fields
    )
    return contribution(StreamItem("1", event))


def ids_in_part(part: int, count: int) -> list[str]:
    """Event ids whose first part is `part`."""
    found = [f"e{n}" for n in range(10_000) if zlib.crc32(f"e{n}".encode()) % 4 == part]
    return found[:count]


def reader(
    parts: dict[PartKey, Part],
) -> tuple[list[set[PartKey]], Callable[[set[PartKey]], None]]:
    reads: list[set[PartKey]] = []

    def read(wanted: set[PartKey]) -> None:
        reads.append(set(wanted))
        parts.update({key: Part() for key in wanted})

    return reads, read


def test_an_event_goes_to_the_part_its_id_names_and_is_skipped_where_it_was_counted() -> None:
    a, b = (pageview(event_id) for event_id in ids_in_part(2, 2))
    # (the legacy layout's part of that walk known absent: 0018)
    parts: dict[PartKey, Part] = {
        a.key(0): Part(version=1, events={a.event}),
        a.legacy_key(0): Part(),
    }
    reads, read = reader(parts)

    routes, duplicates = route([a, b, b], parts, read)

    assert a.key(0) == ("C#a.example#m#_#2", "2026-03-29T10:00#2")
    assert duplicates == [a, b]  # a: in its part already; b: twice in the batch
    assert routes == {a.key(0): [b]}
    assert reads == []  # the part was known: nothing read


def test_a_full_part_sends_new_events_on_and_a_redelivery_walks_the_same_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(minutes, "MAX_EVENTS_PER_PART", 2)
    events = [pageview(event_id) for event_id in ids_in_part(1, 5)]
    parts: dict[PartKey, Part] = {}
    _, read = reader(parts)

    routes, _ = route(events, parts, read)

    # Then the part takes two, the next on the walk (part 1 + 4) two, the one after that one
    assert {key[1]: len(batch) for key, batch in routes.items()} == {
        "2026-03-29T10:00#1": 2,
        "2026-03-29T10:00#5": 2,
        "2026-03-29T10:00#9": 1,
    }
    # When those are stored and the same events come again
    for key, batch in routes.items():
        parts[key] = plan_update(parts[key], batch).applied_to(parts[key])
    again, duplicates = route(list(reversed(events)), parts, read)
    # Then each is found where it was counted, and nothing is routed anywhere
    assert again == {} and sorted(d.event for d in duplicates) == sorted(e.event for e in events)


def test_a_part_with_room_takes_the_event_even_after_an_earlier_part_filled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(minutes, "MAX_EVENTS_PER_PART", 1)
    first, second = (pageview(event_id) for event_id in ids_in_part(0, 2))
    parts: dict[PartKey, Part] = {first.key(0): Part(version=1, events={first.event})}
    _, read = reader(parts)

    routes, _ = route([second], parts, read)

    assert list(routes) == [second.key(1)]


def test_a_part_update_counts_pageviews_pages_visitors_and_arrivals() -> None:
    batch = [
        pageview("e1", "v1", page="/a", source="Google"),
        pageview("e2", "v1", page="/b", source="Google"),  # the same visitor, same source
        pageview("e3", "v1", page="/c", internal=True),  # a link within the site: no arrival
        pageview("e4", "v2", page="/a"),  # no referrer: arrived directly
    ]
    custom = RawEvent(event_id="e5", site="a.example", ts=T0, name="Signup", visitor_id="v3")
    batch.append(contribution(StreamItem("5", custom)))

    update = plan_update(Part(), batch)

    assert update.counts == {
        "events": 5,
        "pageviews": 4,
        "pageviews|/a": 2,
        "pageviews|/b": 1,
        "pageviews|/c": 1,
        "events|Signup": 1,  # custom events by name (goal alerts, decision 0036)
    }
    hashes = {name: len(members) for name, members in update.sets.items()}
    assert hashes == {"eids": 5, "vids": 3, "arrivals|Google": 1, "arrivals|Direct / None": 1}
    assert update.sets["eids"] == {event_hash(f"e{n}") for n in range(1, 6)}
    assert set(update.admitted) == {"/a", "/b", "/c", "Google", "Direct / None", "Signup"}


def test_pages_and_sources_beyond_a_full_parts_places_count_under_other() -> None:
    full = Part(version=3, known=KnownValues({"/a"}, count=300, size=2))

    update = plan_update(full, [pageview("e1", page="/a"), pageview("e2", page="/new")])

    assert update.counts["pageviews|/a"] == 1
    assert update.counts["pageviews|(other)"] == 1
    assert "arrivals|(other)" in update.sets and update.admitted == ()


def test_an_unknown_time_zone_is_a_poison_for_the_minutes_too() -> None:
    with pytest.raises(KeyError):
        pageview("e1", tz="Mars/Olympus")


def test_a_minutes_walks_write_four_partition_keys_and_a_walk_keeps_to_its_own() -> None:
    events = [pageview(event_id) for lane in range(4) for event_id in ids_in_part(lane, 3)]

    pks = {event.key(level)[0] for event in events for level in range(5)}

    assert pks == {f"C#a.example#m#_#{k}" for k in range(4)}  # decision 0018
    for event in events:  # part n's key is n % 4: a walk's parts share its first part's key
        assert {event.key(level)[0] for level in range(5)} == {event.key(0)[0]}
        assert keys.parse_counter_pk(event.key(0)[0]) == ("a.example", Granularity.MINUTE, "_")
    assert keys.minute_partition("C#a.example#m#_") is None  # the legacy key


def test_an_event_counted_in_a_legacy_part_is_a_duplicate_and_nothing_is_written_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(minutes, "LEGACY_MAX_EVENTS_PER_PART", 2)
    a, b, c, d = (pageview(event_id) for event_id in ids_in_part(3, 4))
    # Given the legacy layout counted a and b (its part full) and c on the next level of the walk
    parts: dict[PartKey, Part] = {
        a.legacy_key(0): Part(version=2, events={a.event, b.event}),
        a.legacy_key(1): Part(version=1, events={c.event}),
    }
    reads, read = reader(parts)

    routes, duplicates = route([a, b, c, d], parts, read)

    # Then a, b and c are found where the old walk put them; d, new, goes to the new layout only
    assert sorted(x.event for x in duplicates) == sorted(x.event for x in (a, b, c))
    assert routes == {d.key(0): [d]}
    assert reads == [{d.key(0)}]  # the legacy walk ended at the part with room: nothing beyond
