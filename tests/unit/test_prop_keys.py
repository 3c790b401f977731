"""Prop keys per day and month (decision 0017): a key list admits keys first come up to its bound
and its byte budget, refuses the rest for good, and a refused key's counts go to "(other)" with
every total kept."""

from __future__ import annotations

from collections import defaultdict

from aggregator.bounded import MAX_VALUE_BYTES
from aggregator.fold import Deltas, empty_deltas
from aggregator.processor import StreamItem, plan_chunk
from aggregator.prop_keys import KeyList, admits, route
from core import keys
from core.events import RawEvent
from core.keys import Granularity

DAY, MONTH, HOUR = Granularity.DAY, Granularity.MONTH, Granularity.HOUR
SITE = "a.example"


def deltas(*cells: tuple[Granularity, str, str, dict[str, int]]) -> Deltas:
    out = empty_deltas()
    for gran, dimension, bucket, attrs in cells:
        out[(gran, dimension, bucket)].update(attrs)
    return out


def prop_event(key: str, bucket: str = "2026-11-20", gran: Granularity = DAY) -> Deltas:
    """What an event sending `key=free` counts in one day (or month)."""
    return deltas(
        (gran, f"prop:{key}", bucket, {"events|free": 1, "visitors|free": 1}),
        (gran, "prop_keys", bucket, {f"events|{key}": 1}),
        (gran, "_", bucket, {"events": 1}),
    )


def test_a_list_admits_new_keys_while_it_has_room_and_refuses_them_after() -> None:
    known = KeyList(frozenset({"plan"}), version=3, limit=3)
    chosen: set[str] = set()
    assert admits(known, chosen, "plan") and chosen == set()  # held: no write
    assert admits(known, chosen, "author") and chosen == {"author"}
    assert admits(known, chosen, "variant") and chosen == {"author", "variant"}
    assert not admits(known, chosen, "tag") and chosen == {"author", "variant"}
    assert admits(known, chosen, "author")  # decided in this chunk: stays admitted


def test_a_key_longer_than_the_lists_byte_budget_leaves_is_refused() -> None:
    long = "k" * (MAX_VALUE_BYTES - 10)
    known = KeyList(frozenset({long}))
    assert not admits(known, set(), "k" * 11)
    assert admits(known, set(), "k" * 10)


def test_a_key_sent_as_other_takes_no_place() -> None:
    chosen: set[str] = set()
    assert admits(KeyList(limit=0), chosen, "(other)") and chosen == set()


def test_a_refused_keys_counts_move_to_other_with_every_total_kept() -> None:
    full = KeyList(frozenset({"a", "b"}), version=2, limit=2)
    event = prop_event("c")
    routed, added = route(SITE, event, lambda _bucket: full, {})
    assert added == {}
    assert routed == {
        (DAY, "prop:(other)", "2026-11-20"): {"events|free": 1, "visitors|free": 1},
        (DAY, "prop_keys", "2026-11-20"): {"events|(other)": 1},
        (DAY, "_", "2026-11-20"): {"events": 1},
    }


def test_refused_keys_add_up_under_other_by_value() -> None:
    both = prop_event("c")
    for cell, attrs in prop_event("d").items():
        for name, count in attrs.items():
            both[cell][name] += count
    routed, _ = route(SITE, both, lambda _bucket: KeyList(limit=0), {})
    assert routed[(DAY, "prop:(other)", "2026-11-20")] == {"events|free": 2, "visitors|free": 2}
    assert routed[(DAY, "prop_keys", "2026-11-20")] == {"events|(other)": 2}


def test_keys_new_to_a_bucket_are_admitted_in_name_order_and_reported_as_added() -> None:
    event = prop_event("b")
    for cell, attrs in prop_event("a").items():
        event[cell].update(attrs)
    routed, added = route(SITE, event, lambda _bucket: KeyList(limit=1), {})
    assert added == {(SITE, DAY, "2026-11-20"): {"a"}}
    assert (DAY, "prop:a", "2026-11-20") in routed
    assert (DAY, "prop:b", "2026-11-20") not in routed


def test_a_day_and_its_month_decide_with_lists_of_their_own() -> None:
    event = prop_event("c")
    event.update(prop_event("c", "2026-11", MONTH))
    day_full = {(SITE, DAY, "2026-11-20"): KeyList(frozenset({"a", "b"}), 1, limit=2)}
    routed, added = route(SITE, event, lambda b: day_full.get(b, KeyList(limit=2)), {})
    assert added == {(SITE, MONTH, "2026-11"): {"c"}}
    assert (DAY, "prop:(other)", "2026-11-20") in routed
    assert (MONTH, "prop:c", "2026-11") in routed


def test_hours_and_other_dimensions_are_left_as_they_are() -> None:
    event = deltas(
        (HOUR, "_", "2026-11-20T10", {"events": 1}),
        (DAY, "page", "2026-11-20", {"pageviews|/": 1}),
    )
    assert route(SITE, event, lambda _bucket: KeyList(limit=0), {}) == (event, {})


def test_the_chunks_earlier_admissions_count_against_the_bound() -> None:
    chosen = {(SITE, DAY, "2026-11-20"): {"a"}}
    routed, added = route(SITE, prop_event("b"), lambda _bucket: KeyList(limit=1), chosen)
    assert added == {} and (DAY, "prop:(other)", "2026-11-20") in routed


def custom_event(n: int, props: dict[str, str]) -> StreamItem:
    event = RawEvent(
        event_id=f"e{n}", site=SITE, ts=1_795_165_200_000 + n, name="Signup",
        visitor_id=f"v{n}", tz="UTC", props=props,
    )  # fmt: skip
    return StreamItem(str(n), event)


def test_a_chunk_records_the_keys_it_admits_with_each_list_as_it_read_it() -> None:
    read = KeyList(frozenset({"a"}), version=4, limit=2)
    batch = [custom_event(0, {"a": "x"}), custom_event(1, {"b": "x"}), custom_event(2, {"c": "x"})]
    plan, next_index, _ = plan_chunk(batch, 0, {}, 100, key_list=lambda _bucket: read)
    assert next_index == 3
    assert plan.admitted == {
        (SITE, DAY, "2026-11-20"): (read, frozenset({"b"})),
        (SITE, MONTH, "2026-11"): (read, frozenset({"b"})),
    }
    dimensions: dict[Granularity, set[str]] = defaultdict(set)
    for _, (gran, dimension, _) in plan.deltas:
        dimensions[gran].add(dimension)
    assert {d for d in dimensions[DAY] if d.startswith("prop:")} == {
        "prop:a",
        "prop:b",
        "prop:(other)",
    }


def test_a_key_list_update_counts_as_an_item_of_the_chunks_transaction() -> None:
    # Two visitors, an hour, a day's and a month's slot: 5 items; and the two key lists: 7
    plain = [custom_event(0, {}), custom_event(1, {})]
    assert plan_chunk(plain, 0, {}, 5)[1] == 2
    batch = [custom_event(0, {"a": "x"}), custom_event(1, {"b": "x"})]
    assert plan_chunk(batch, 0, {}, 6)[1] == 1
    plan, next_index, _ = plan_chunk(batch, 0, {}, 7)
    assert next_index == 2 and len(plan.admitted) == 2


def test_a_key_list_is_kept_in_one_partition_per_site_and_granularity() -> None:
    pk = keys.prop_key_list_pk(SITE, DAY)
    assert keys.parse_counter_pk(pk) == (SITE, DAY, keys.PROP_KEY_LIST)
    assert not keys.PROP_KEY_LIST.startswith("prop")  # never read as a prop's dimension
