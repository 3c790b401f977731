"""Contract: the item ingest writes (DynamoDB wire format) reads back as the same RawEvent once a
stream consumer deserializes it, with Powertools' deserializer (the aggregator's) or boto3's."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from aws_lambda_powertools.shared.dynamodb_deserializer import TypeDeserializer as PowertoolsTD
from boto3.dynamodb.types import TypeDeserializer as Boto3TD
from hypothesis import given
from hypothesis import strategies as st

from core import keys
from core.events import MalformedEvent, RawEvent

TTL = 1775390400
TS = 1774785600123  # 2026-03-29T12:00:00.123Z

MINIMAL = RawEvent(event_id="e1", site="example.com", ts=TS, name="pageview", visitor_id="ab" * 8)
FULL = RawEvent(
    event_id="01ARZ3NDEKTSV4RRFFQ69G5FAV",
    site="example.com",
    ts=TS,
    name="Purchase",
    visitor_id="0123456789abcdef",
    tz="Europe/Berlin",
    previous_visitor_id="fedcba9876543210",
    hostname="shop.example.com",
    page="/checkout#step-2",
    referrer="https://www.google.com/search",
    source="Google",
    utm_medium="cpc",
    utm_source="google",
    utm_campaign="spring",
    utm_content="ad-1",
    utm_term="analytics",
    country="DE",
    browser="Firefox",
    browser_version="125.0",
    os="Mac OS X",
    os_version="10.15",
    device="Laptop",
    interactive=False,
    internal=True,
    props={"plan": "pro", "seats": "5", "emoji": "🎉"},
    revenue_amount="12.50",
    revenue_currency="EUR",
    scroll_depth=0,
    engaged_ms=15_000,
    correlation_id="req-1",
)


def powertools_image(item: dict[str, Any]) -> dict[str, Any]:
    deserializer = PowertoolsTD()
    return {name: deserializer.deserialize(value) for name, value in item.items()}


def boto3_image(item: dict[str, Any]) -> dict[str, Any]:
    deserializer = Boto3TD()
    return {name: deserializer.deserialize(value) for name, value in item.items()}


DESERIALIZERS = pytest.mark.parametrize(
    "deserialize", [powertools_image, boto3_image], ids=["powertools", "boto3"]
)


@DESERIALIZERS
@pytest.mark.parametrize("event", [MINIMAL, FULL], ids=["minimal", "full"])
def test_written_item_reads_back_as_the_same_event(
    event: RawEvent, deserialize: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    # Given the item ingest puts
    item = event.to_item(TTL)

    # When the aggregator deserializes the stream image and reads it
    read = RawEvent.from_image(deserialize(item))

    # Then it is the same event
    assert read == event


def test_item_is_keyed_by_its_visitor_and_its_event_id() -> None:
    item = FULL.to_item(TTL)

    # The visitor's partition (all of a visitor's events on one stream shard), the id within it
    assert item["pk"] == {"S": keys.event_pk(FULL.site, FULL.visitor_id)}
    assert item["sk"] == {"S": keys.event_sk(FULL.event_id)}
    assert keys.parse_event_key(item["pk"]["S"], item["sk"]["S"]) == (
        FULL.site,
        FULL.visitor_id,
        FULL.event_id,
    )
    assert item["ttl"] == {"N": str(TTL)}


def test_item_uses_native_dynamodb_types() -> None:
    item = FULL.to_item(TTL)

    assert item["ts"] == {"N": str(TS)}
    assert item["interactive"] == {"BOOL": False}
    assert item["internal"] == {"BOOL": True}  # stored only when true (see the minimal item)
    assert item["scroll_depth"] == {"N": "0"}
    assert item["props"] == {"M": {"plan": {"S": "pro"}, "seats": {"S": "5"}, "emoji": {"S": "🎉"}}}


def test_item_leaves_out_empty_values_that_dynamodb_cannot_or_need_not_store() -> None:
    item = MINIMAL.to_item(TTL)

    assert set(item) == {
        "pk", "sk", "ttl",
        "event_id", "site", "ts", "name", "visitor_id",
        "tz", "page", "source", "interactive",
    }  # fmt: skip


def test_numbers_arriving_as_strings_are_read_as_integers() -> None:
    image = {**powertools_image(MINIMAL.to_item(TTL)), "ts": str(TS), "engaged_ms": Decimal(7)}

    event = RawEvent.from_image(image)

    assert (event.ts, event.engaged_ms) == (TS, 7)


# Fields whose default is not "" are written only when non-empty, so "" would read back as the
# default; ingest never produces "" there (page is at least "/", source at least "Direct / None").
NON_EMPTY = st.text(min_size=1, max_size=30)
TEXT = st.text(max_size=30)
EVENTS = st.builds(
    RawEvent,
    event_id=NON_EMPTY,
    site=st.from_regex(r"[a-z0-9]{1,10}\.[a-z]{2,4}", fullmatch=True),
    ts=st.integers(min_value=0, max_value=4_102_444_800_000),
    name=NON_EMPTY,
    visitor_id=st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
    tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]),
    previous_visitor_id=st.none() | st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
    hostname=TEXT,
    page=NON_EMPTY,
    referrer=TEXT,
    source=NON_EMPTY,
    utm_medium=TEXT,
    utm_source=TEXT,
    utm_campaign=TEXT,
    utm_content=TEXT,
    utm_term=TEXT,
    country=st.sampled_from(["", "DE", "US"]),
    browser=TEXT,
    browser_version=TEXT,
    os=TEXT,
    os_version=TEXT,
    device=st.sampled_from(["", "Mobile", "Tablet", "Laptop", "Desktop"]),
    interactive=st.booleans(),
    internal=st.booleans(),
    props=st.dictionaries(NON_EMPTY, NON_EMPTY, max_size=5),
    revenue_amount=TEXT,
    revenue_currency=TEXT,
    scroll_depth=st.none() | st.integers(min_value=0, max_value=100),
    engaged_ms=st.none() | st.integers(min_value=0, max_value=86_400_000),
    correlation_id=TEXT,
)


@given(event=EVENTS)
def test_any_event_round_trips_through_the_wire_format(event: RawEvent) -> None:
    assert RawEvent.from_image(powertools_image(event.to_item(TTL))) == event


@pytest.mark.parametrize(
    ("change", "missing"),
    [
        ({"ts": "soon"}, None),
        ({"ts": 1.5}, None),
        ({"ts": None}, None),
        ({"scroll_depth": "lots"}, None),
        ({"props": "not a map"}, None),
        ({"props": 5}, None),
        ({}, "ts"),
        ({}, "visitor_id"),
        ({}, "event_id"),
        ({}, "site"),
        ({}, "name"),
    ],
)
def test_malformed_image_raises_malformed_event(
    change: dict[str, Any], missing: str | None
) -> None:
    image = {**powertools_image(FULL.to_item(TTL)), **change}
    if missing:
        del image[missing]

    with pytest.raises(MalformedEvent):
        RawEvent.from_image(image)


@pytest.mark.parametrize("image", [None, 42, "EV#example.com#e1", {}])
def test_image_that_is_not_an_item_raises_malformed_event(image: Any) -> None:
    with pytest.raises(MalformedEvent):
        RawEvent.from_image(image)
