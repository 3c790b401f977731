"""How a batch is cut into chunks: by visitor, whatever order the stream delivered, and no\nbigger than one transaction and its slots' bounds (decision 0015)."""

from __future__ import annotations

from aggregator.processor import (
    MAX_SLOT_BYTES,
    MAX_SLOT_DIMENSIONS,
    StreamItem,
    by_visitor,
    plan_chunk,
)
from aggregator.store import SLOT_GRANULARITIES, ChunkPlan
from core.events import RawEvent


def item(sequence: int, visitor: str, site: str = "a.example", ts: int | None = None) -> StreamItem:
    event = RawEvent(
        event_id=f"e{sequence}", site=site, ts=1_700_000_000_000 + (sequence if ts is None else ts),
        name="pageview", visitor_id=visitor, tz="UTC",
    )  # fmt: skip
    return StreamItem(str(sequence), event)


def test_a_visitors_events_are_put_side_by_side_in_order_of_its_first_event() -> None:
    batch = [item(1, "A"), item(2, "B"), item(3, "A"), item(4, "C"), item(5, "B"), item(6, "A")]
    assert [i.sequence_number for i in by_visitor(batch)] == ["1", "3", "6", "2", "5", "4"]


def test_the_same_visitor_id_on_two_sites_is_two_visitors() -> None:
    batch = [item(1, "A", "a.example"), item(2, "A", "b.example"), item(3, "A", "a.example")]
    assert [i.sequence_number for i in by_visitor(batch)] == ["1", "3", "2"]


def test_records_reordered_across_shards_are_folded_in_time_order() -> None:
    # Today's id (T) arrived first, yesterday's (Y) after: Y's events are earlier, so Y goes first
    # and T's after-midnight event finds Y's session open (decision 0005).
    batch = [item(1, "T", ts=50), item(2, "Y", ts=30), item(3, "Y", ts=10), item(4, "T", ts=40)]
    assert [i.sequence_number for i in by_visitor(batch)] == ["3", "2", "4", "1"]


def custom_event(sequence: int, props: dict[str, str]) -> StreamItem:
    event = RawEvent(
        event_id=f"e{sequence}", site="a.example", ts=1_700_000_000_000 + sequence,
        name="Signup", visitor_id=f"v{sequence}", tz="UTC", props=props,
    )  # fmt: skip
    return StreamItem(str(sequence), event)


def slots_of(plan: ChunkPlan) -> dict[tuple[str, str], set[str]]:
    """(granularity, bucket) of each day or month slot → the dimensions it holds."""
    out: dict[tuple[str, str], set[str]] = {}
    for _, (gran, dimension, bucket) in plan.deltas:
        if gran in SLOT_GRANULARITIES:
            out.setdefault((gran.value, bucket), set()).add(dimension)
    return out


def test_a_slot_is_one_transaction_action_whatever_dimensions_it_holds() -> None:
    # Twenty visitors, their pageviews in five dimensions of a day and of a month and in an
    # hour's totals: one chunk of 20 + 3 actions (a cell each would make 31)
    batch = [item(n, f"v{n}") for n in range(20)]
    plan, next_index, _ = plan_chunk(batch, 0, {}, max_items=23)
    assert next_index == 20 and len(plan.visitors) == 20
    assert len(slots_of(plan)) == 2 and all(len(d) >= 5 for d in slots_of(plan).values())
    # One action fewer and the last visitor waits for the next chunk
    assert plan_chunk(batch, 0, {}, max_items=22)[1] == 19


def test_a_chunk_stops_before_a_slot_outgrows_what_one_fold_can_carry() -> None:
    # Each event brings 30 prop keys, each a dimension of its own (prop:<key>)
    batch = [custom_event(n, {f"k{n}_{i}": "x" for i in range(30)}) for n in range(10)]
    plan, next_index, _ = plan_chunk(batch, 0, {}, max_items=100)
    assert 0 < next_index < 10
    assert max(len(d) for d in slots_of(plan).values()) <= MAX_SLOT_DIMENSIONS


def test_a_chunk_stops_before_its_slots_outgrow_their_byte_budget() -> None:
    # Ten long prop values an event, ~13 KB of counter names in its day's and month's slots
    batch = [
        custom_event(n, {f"k{i}": f"{n:04d}" + "v" * 300 for i in range(10)}) for n in range(40)
    ]
    plan, next_index, _ = plan_chunk(batch, 0, {}, max_items=100)
    assert 1 < next_index < 40
    stored = sum(
        len(name)
        for (_, (gran, _, _)), attrs in plan.deltas.items()
        if gran in SLOT_GRANULARITIES
        for name in attrs
    )
    assert MAX_SLOT_BYTES / 2 < stored <= MAX_SLOT_BYTES  # both slots, within one budget
