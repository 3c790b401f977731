"""Storage keys and time buckets: every builder round-trips through its parser; buckets are
UTC for minutes and hours, and the site's local date for days (around midnight and DST)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import keys
from core.keys import Granularity, KeyError_


def ms(iso: str) -> int:
    """Epoch milliseconds of an ISO timestamp that must carry its own offset."""
    parsed = datetime.fromisoformat(iso)
    assert parsed.tzinfo is not None, "pin the time zone"
    return int(parsed.timestamp() * 1000)


DOMAINS = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]{2,6}){1,2}", fullmatch=True)
EVENT_IDS = st.text(min_size=1, max_size=40)

# ---- events table --------------------------------------------------------------------------------


VISITOR_IDS = st.from_regex(r"[0-9a-f]{16,64}", fullmatch=True)


@pytest.mark.parametrize(
    ("site", "visitor_id", "event_id", "pk"),
    [
        (
            "example.com",
            "9f86d081884c7d65",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "EV#example.com#9f86d081884c7d65",
        ),
        ("example.com", "9f86d081884c7d65", "id#with#hashes", "EV#example.com#9f86d081884c7d65"),
    ],
)
def test_event_key_is_the_visitor_and_the_event_id(
    site: str, visitor_id: str, event_id: str, pk: str
) -> None:
    # The visitor is the partition (one stream shard for a visitor's events), the id the sort key
    assert keys.event_pk(site, visitor_id) == pk
    assert keys.event_sk(event_id) == event_id
    assert keys.parse_event_key(pk, event_id) == (site, visitor_id, event_id)
    assert pk.startswith(keys.site_events_prefix(site))


@given(site=DOMAINS, visitor_id=VISITOR_IDS, event_id=EVENT_IDS)
def test_any_event_key_round_trips(site: str, visitor_id: str, event_id: str) -> None:
    pk, sk = keys.event_pk(site, visitor_id), keys.event_sk(event_id)
    assert keys.parse_event_key(pk, sk) == (site, visitor_id, event_id)


@pytest.mark.parametrize(
    ("pk", "sk"),
    [
        ("", "e1"),
        ("EV#example.com", "e1"),
        ("EV#example.com#", "e1"),
        ("EV#example.com#abc#def", "e1"),
        ("EV#example.com#abc", ""),
        ("C#example.com#m#_", "e1"),
        ("ev#example.com#abc", "e1"),
        ("V#example.com#abc", "_"),
    ],
)
def test_parsing_a_non_event_key_fails(pk: str, sk: str) -> None:
    with pytest.raises(KeyError_):
        keys.parse_event_key(pk, sk)


@given(site=DOMAINS, event_id=EVENT_IDS)
def test_a_legacy_event_key_round_trips(site: str, event_id: str) -> None:
    # The events table's key before decision 0040 (the legacy table, and old local snapshots)
    assert keys.parse_legacy_event_pk(keys.legacy_event_pk(site, event_id)) == (site, event_id)


def test_a_site_prefix_never_matches_a_longer_sites_events() -> None:
    # A rebuild scans with begins_with on the prefix: example.com's must not take example.com.au's
    assert not keys.event_pk("example.com.au", "abc").startswith(
        keys.site_events_prefix("example.com")
    )


# ---- aggregates table ----------------------------------------------------------------------------


@pytest.mark.parametrize("granularity", list(Granularity))
@pytest.mark.parametrize("dimension", [keys.TOTALS, "page", "source", "utm_campaign"])
def test_counter_key_is_built_and_parsed_back(granularity: Granularity, dimension: str) -> None:
    pk = keys.counter_pk("example.com", granularity, dimension)

    assert keys.parse_counter_pk(pk) == ("example.com", granularity, dimension)


def test_counter_key_defaults_to_the_totals_dimension() -> None:
    assert keys.counter_pk("example.com", Granularity.DAY) == "C#example.com#d#_"


@pytest.mark.parametrize(
    "pk", ["", "C#example.com#m", "C#example.com#m#page#extra", "EV#example.com#m#_"]
)
def test_parsing_a_non_counter_key_fails(pk: str) -> None:
    with pytest.raises(KeyError_):
        keys.parse_counter_pk(pk)


def test_counter_key_with_an_unknown_granularity_fails() -> None:
    with pytest.raises(ValueError):
        keys.parse_counter_pk("C#example.com#w#_")


def test_visitor_keys_are_namespaced_per_site() -> None:
    assert keys.visitor_pk("example.com", "abc") == "V#example.com#abc"
    assert keys.visitor_pk("a.com", "x") != keys.visitor_pk("b.com", "x")


@pytest.mark.parametrize(
    ("metric", "value", "attr"),
    [
        ("pageviews", None, "pageviews"),
        ("pageviews", "/blog", "pageviews|/blog"),
        ("pageviews", "/a|b", "pageviews|/a|b"),
        ("visitors", "", "visitors|"),
    ],
)
def test_counter_attribute_is_built_and_parsed_back(
    metric: str, value: str | None, attr: str
) -> None:
    assert keys.counter_attr(metric, value) == attr
    assert keys.parse_counter_attr(attr) == (metric, value)


@given(metric=st.sampled_from(sorted(keys.STORED_METRICS)), value=st.none() | st.text())
def test_any_counter_attribute_round_trips_as_named_and_as_stored(
    metric: str, value: str | None
) -> None:
    name = keys.counter_attr(metric, value)
    assert keys.parse_counter_attr(name) == (metric, value)
    assert keys.parse_counter_attr(keys.stored_attr(name)) == (metric, value)
    assert keys.full_attr(keys.stored_attr(name)) == keys.full_attr(name) == name


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("pageviews|/blog", "p|/blog"),
        ("visitors|/a|b", "v|/a|b"),
        ("duration_ms|Chrome", "d|Chrome"),
        ("arrivals|Google", "a|Google"),
        ("pageviews", "pageviews"),  # totals keep their names
        ("n", "n"),
    ],
)
def test_a_dimension_counter_is_stored_under_a_short_code(name: str, stored: str) -> None:
    assert keys.stored_attr(name) == stored
    assert keys.full_attr(stored) == name


def test_codes_are_unique_and_never_a_metric_name() -> None:
    codes = list(keys.STORED_METRICS.values())
    assert len(set(codes)) == len(codes)
    assert not set(codes) & set(keys.STORED_METRICS)


def test_every_dimension_counter_the_fold_writes_has_a_code() -> None:
    from tests.unit.fold_helpers import event, folded, ms

    start = ms("2026-03-28T10:00:00+00:00")
    cells = folded(
        [
            event(start, page="/a", source="Google", browser="Firefox", hostname="example.com"),
            event(start + 5_000, name="engagement", page="/a", scroll_depth=60, engaged_ms=5_000),
            event(start + 60_000, name="Signup", props={"plan": "pro"}, hostname="example.com"),
            event(start + 90_000, page="/b"),
        ]
    )
    names = {name for attrs in cells.values() for name in attrs if "|" in name}
    metrics = {keys.parse_counter_attr(name)[0] for name in names}
    assert {"top_ms", "sd_sum", "events", "visits"} <= metrics  # a rich visitor indeed
    for name in names:
        assert keys.full_attr(keys.stored_attr(name)) == name  # stored_attr raises on no code


def test_meta_keys() -> None:
    assert keys.api_key_pk("ab12") == "KEY#ab12"
    assert keys.salt_sk("2026-03-29") == "2026-03-29"
    assert (keys.SITE_PK, keys.SALT_PK) == ("SITE", "SALT")


def test_credential_session_and_login_keys_do_not_collide_with_each_other() -> None:
    built = {
        keys.api_key_pk("ab12"),
        keys.site_keys_pk("ab12"),
        keys.share_pk("ab12"),
        keys.site_shares_pk("ab12"),
        keys.session_pk("ab12"),
        keys.login_attempts_pk("ab12"),
    }
    assert len(built) == 6
    assert keys.share_pk("ab12") == "SHARE#ab12"
    assert keys.login_attempts_pk(keys.LOGIN_ALL) == "LOGIN#all"
    # Window starts sort as numbers do
    assert keys.login_window_sk(900) < keys.login_window_sk(1_774_785_600)


# ---- time buckets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("iso", "minute", "hour"),
    [
        ("2026-03-28T23:59:59.999+00:00", "2026-03-28T23:59", "2026-03-28T23"),
        ("2026-03-29T00:00:00.000+00:00", "2026-03-29T00:00", "2026-03-29T00"),
        ("2026-03-29T00:00:59.999+00:00", "2026-03-29T00:00", "2026-03-29T00"),
        ("2026-03-29T00:01:00.000+00:00", "2026-03-29T00:01", "2026-03-29T00"),
        # Given in Berlin time, still bucketed in UTC
        ("2026-03-29T03:00:00.000+02:00", "2026-03-29T01:00", "2026-03-29T01"),
        ("2026-12-31T23:59:59.999+00:00", "2026-12-31T23:59", "2026-12-31T23"),
    ],
)
def test_minute_and_hour_labels_are_utc(iso: str, minute: str, hour: str) -> None:
    ts = ms(iso)

    assert (
        keys.minute_label(ts) == keys.bucket_label(Granularity.MINUTE, ts, "Asia/Tokyo") == minute
    )
    assert keys.hour_label(ts) == keys.bucket_label(Granularity.HOUR, ts, "Asia/Tokyo") == hour


@pytest.mark.parametrize(
    ("iso", "tz", "day"),
    [
        # UTC: the calendar date
        ("2026-03-28T23:59:59.999+00:00", "UTC", "2026-03-28"),
        ("2026-03-29T00:00:00.000+00:00", "UTC", "2026-03-29"),
        # Berlin, winter time (UTC+1): local midnight is 23:00 UTC the day before
        ("2026-03-28T22:59:59.999+00:00", "Europe/Berlin", "2026-03-28"),
        ("2026-03-28T23:00:00.000+00:00", "Europe/Berlin", "2026-03-29"),
        # Berlin, 2026-03-29 02:00 local jumps to 03:00 (01:00 UTC): still the same day
        ("2026-03-29T00:59:59.999+00:00", "Europe/Berlin", "2026-03-29"),
        ("2026-03-29T01:00:00.000+00:00", "Europe/Berlin", "2026-03-29"),
        # Berlin, summer time (UTC+2): the next local midnight is 22:00 UTC
        ("2026-03-29T21:59:59.999+00:00", "Europe/Berlin", "2026-03-29"),
        ("2026-03-29T22:00:00.000+00:00", "Europe/Berlin", "2026-03-30"),
        # Berlin, back to winter time on 2026-10-25: that day lasts 25 hours
        ("2026-10-24T21:59:59.999+00:00", "Europe/Berlin", "2026-10-24"),
        ("2026-10-24T22:00:00.000+00:00", "Europe/Berlin", "2026-10-25"),
        ("2026-10-25T22:59:59.999+00:00", "Europe/Berlin", "2026-10-25"),
        ("2026-10-25T23:00:00.000+00:00", "Europe/Berlin", "2026-10-26"),
        # New York, summer time starts 2026-03-08: midnight moves from 05:00 to 04:00 UTC
        ("2026-03-08T04:59:59.999+00:00", "America/New_York", "2026-03-07"),
        ("2026-03-08T05:00:00.000+00:00", "America/New_York", "2026-03-08"),
        ("2026-03-09T03:59:59.999+00:00", "America/New_York", "2026-03-08"),
        ("2026-03-09T04:00:00.000+00:00", "America/New_York", "2026-03-09"),
        # New York, summer time ends 2026-11-01: the 01:00-02:00 hour happens twice
        ("2026-11-01T05:30:00.000+00:00", "America/New_York", "2026-11-01"),
        ("2026-11-01T06:30:00.000+00:00", "America/New_York", "2026-11-01"),
        ("2026-11-02T04:59:59.999+00:00", "America/New_York", "2026-11-01"),
        ("2026-11-02T05:00:00.000+00:00", "America/New_York", "2026-11-02"),
        # Half-hour and far-east offsets
        ("2026-03-28T18:29:59.999+00:00", "Asia/Kolkata", "2026-03-28"),
        ("2026-03-28T18:30:00.000+00:00", "Asia/Kolkata", "2026-03-29"),
        ("2026-03-28T10:00:00.000+00:00", "Pacific/Kiritimati", "2026-03-29"),
    ],
)
def test_day_label_is_the_local_date_in_the_site_time_zone(iso: str, tz: str, day: str) -> None:
    ts = ms(iso)

    assert keys.day_label(ts, tz) == keys.bucket_label(Granularity.DAY, ts, tz) == day


@pytest.mark.parametrize(
    ("start", "end", "labels"),
    [
        (
            "2026-03-29T10:00:00+00:00",
            "2026-03-29T10:00:59+00:00",
            ["2026-03-29T10:00"],
        ),
        (
            "2026-03-29T10:00:42.5+00:00",
            "2026-03-29T10:03:01+00:00",
            ["2026-03-29T10:00", "2026-03-29T10:01", "2026-03-29T10:02", "2026-03-29T10:03"],
        ),
        (
            "2026-03-28T23:58:30+00:00",
            "2026-03-29T00:01:00+00:00",
            ["2026-03-28T23:58", "2026-03-28T23:59", "2026-03-29T00:00", "2026-03-29T00:01"],
        ),
        # Given in Berlin time across its DST jump: 01:59 CET is 00:59 UTC, 03:01 CEST is 01:01
        (
            "2026-03-29T01:59:00+01:00",
            "2026-03-29T03:01:00+02:00",
            ["2026-03-29T00:59", "2026-03-29T01:00", "2026-03-29T01:01"],
        ),
        ("2026-03-29T10:05:00+00:00", "2026-03-29T10:04:00+00:00", []),
    ],
)
def test_minute_labels_between_lists_every_utc_minute_inclusive(
    start: str, end: str, labels: list[str]
) -> None:
    result = keys.minute_labels_between(datetime.fromisoformat(start), datetime.fromisoformat(end))

    assert result == labels


def test_five_minutes_of_realtime_read_six_minute_buckets_at_most() -> None:
    now = datetime(2026, 3, 29, 12, 3, 17, tzinfo=UTC)

    labels = keys.minute_labels_between(now - timedelta(minutes=5), now)

    assert labels == [
        f"2026-03-29T{m}" for m in ("11:58", "11:59", "12:00", "12:01", "12:02", "12:03")
    ]
    assert labels[-1] == keys.minute_label(int(now.timestamp() * 1000))


@pytest.mark.parametrize("shard", range(keys.COUNTER_SHARDS))
def test_sharded_counter_keys_parse_back_to_their_bucket_and_sort_inside_its_range(
    shard: int,
) -> None:
    sk = keys.counter_sk("2026-11-26T10:05", shard)
    assert keys.parse_counter_sk(sk) == "2026-11-26T10:05"
    low, high = keys.counter_range("2026-11-26T10:00", "2026-11-26T10:05")
    assert low <= sk <= high
    assert not low <= keys.counter_sk("2026-11-26T10:06", shard) <= high
    assert not low <= keys.counter_sk("2026-11-26T09:59", shard) <= high


def test_an_items_counters_are_read_under_their_full_names_bookkeeping_aside() -> None:
    item = {
        "pk": {"S": "C#s#d#page"},
        "sk": {"S": "2026-11-27#1"},
        "ttl": {"N": "1800000000"},
        "pageviews": {"N": "7"},  # a total
        "p|/a": {"N": "3"},  # stored with its code (0013)
        "pageviews|/a": {"N": "2"},  # the same counter as written before 0013
        "v|/a": {"N": "1"},
        "p|(other)": {"N": "0"},
        "a|Google": {"BS": [b"\x01"]},  # a minute's visitors by source: a set, not a counter
        keys.COUNT_ATTR: {"N": "1"},
        keys.BYTES_ATTR: {"N": "2"},
        keys.SPENT_ATTR: {"N": "3"},
        keys.VERSION: {"N": "9"},
    }
    assert keys.item_counters(item) == {
        "pageviews": 7,
        "pageviews|/a": 5,
        "visitors|/a": 1,
        "pageviews|(other)": 0,
    }


def test_a_packed_item_holds_every_dimension_and_reads_back_under_full_names() -> None:
    cells = {"_": {"pageviews": 3, "visits": 2}, "page": {"pageviews|/a": 2, "visitors|/a": 1}}
    blob = keys.pack(cells)
    item = {"pk": {"S": "C#s#d#+"}, "sk": {"S": "2026-11-27#s1"}, keys.PACKED: {"B": blob}}
    assert keys.unpack(blob) == cells
    assert keys.packed_cells(item) == cells
    assert b'["p","v"]' in __import__("zlib").decompress(blob)  # stored under the short codes
    # A base written by a fold holds one dimension; its counters read like any other item's
    base = {"pk": {"S": "C#s#d#page"}, "sk": {"S": "2026-11-27"}, keys.PACKED: {"B": blob}}
    base["p|/a"] = {"N": "1"}  # a counter written before the fold took over the item
    assert keys.item_counters(base)["pageviews|/a"] == 3
    assert keys.packed_cells({"pk": {"S": "x"}}) == {}


def test_a_days_slots_sort_inside_its_range_and_parse_back_to_its_bucket() -> None:
    sk = keys.slot_sk("2026-11-27", "0001790000000abcd1234")
    assert keys.parse_counter_sk(sk) == "2026-11-27"
    low, high = keys.slot_range("2026-11-26", "2026-11-27")
    assert low <= sk <= high
    assert not low <= keys.slot_sk("2026-11-28", "0") <= high
    everything_before = keys.slot_range("", "2026-11-27")
    assert everything_before[0] <= keys.slot_sk("2026-10-01", "0") <= everything_before[1]


def test_a_buckets_slots_spread_over_four_keys_the_first_being_the_key_before_0018() -> None:
    pks = keys.slot_pks("s.example", Granularity.DAY)
    # the single key every slot had before decision 0018 step 2 is partition 0
    assert pks == ["C#s.example#d#+", "C#s.example#d#+1", "C#s.example#d#+2", "C#s.example#d#+3"]
    assert keys.slot_pk("s.example", Granularity.MONTH, 5) == "C#s.example#M#+1"
    assert [keys.slot_partition(pk) for pk in pks] == [0, 1, 2, 3]


def test_every_slot_key_parses_as_the_pending_dimension_and_nothing_else_does() -> None:
    for pk in keys.slot_pks("s.example", Granularity.MONTH):
        assert keys.parse_counter_pk(pk) == ("s.example", Granularity.MONTH, keys.PENDING)
    for other in ("C#s#d#+4", "C#s#d#+01", "C#s#d#+x", "C#s#h#+1", "C#s#d#page", "C#s#m#_#1"):
        assert keys.slot_partition(other) is None
    assert keys.parse_counter_pk("C#s#d#page") == ("s", Granularity.DAY, "page")
