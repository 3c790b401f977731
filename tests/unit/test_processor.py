"""How a batch is cut into chunks: by visitor, whatever order the stream delivered."""

from __future__ import annotations

from aggregator.processor import StreamItem, by_visitor
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
