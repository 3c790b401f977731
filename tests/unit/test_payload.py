"""Body validation (docs/compat.md §1): every rule failure is reported per field in
InvalidPayload."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ingest.payload import (
    CLIENT_ID_RE,
    EventPayload,
    InvalidPayload,
    left_id,
    parse_body,
    parse_event,
)

VALID = {"name": "pageview", "url": "https://example.com/"}


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def errors_of(data: Any) -> dict[str, list[str]]:
    with pytest.raises(InvalidPayload) as raised:
        parse_event(data)
    return raised.value.errors


def body_errors_of(raw: bytes, max_events: int = 50) -> dict[str, list[str]]:
    with pytest.raises(InvalidPayload) as raised:
        parse_body(raw, max_events)
    return raised.value.errors


# ---- names ---------------------------------------------------------------------------------------


def test_short_and_long_field_names_give_the_same_event() -> None:
    short = {
        "n": "Signup",
        "u": "https://example.com/#/join",
        "d": "example.com",
        "r": "https://news.ycombinator.com/",
        "p": {"plan": "pro"},
        "$": {"currency": "EUR", "amount": "12.50"},
        "i": False,
        "h": 1,
    }
    long = {
        "name": "Signup",
        "url": "https://example.com/#/join",
        "domain": "example.com",
        "referrer": "https://news.ycombinator.com/",
        "props": {"plan": "pro"},
        "revenue": {"currency": "EUR", "amount": "12.50"},
        "interactive": False,
        "hashMode": 1,
    }

    assert (
        parse_event(short)
        == parse_event(long)
        == EventPayload(
            name="Signup",
            url="https://example.com/#/join",
            domain="example.com",
            referrer="https://news.ycombinator.com/",
            props={"plan": "pro"},
            revenue_amount="12.50",
            revenue_currency="EUR",
            interactive=False,
            hash_mode=True,
        )
    )


def test_minimal_event_gets_the_defaults() -> None:
    event = parse_event({"n": " pageview ", "u": " https://example.com/ "})

    assert event == EventPayload(name="pageview", url="https://example.com/")
    assert (event.interactive, event.hash_mode, event.props) == (True, False, {})


def test_tracker_extras_are_read_as_integers() -> None:
    event = parse_body(
        b'{"n":"pageview","u":"https://example.com/","w":1440.0,"sd":75,"e":12000,'
        b'"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}',
        50,
    )[0]

    assert (event.screen_width, event.scroll_depth, event.engaged_ms) == (1440, 75, 12000)
    assert event.client_id == "01ARZ3NDEKTSV4RRFFQ69G5FAV"


@pytest.mark.parametrize(
    "client_id", ["01ARZ3NDEKTSV4RRFFQ69G5FAV", "123e4567-e89b-12d3-a456-426614174000"]
)
def test_ulid_and_uuid_are_valid_client_ids(client_id: str) -> None:
    assert parse_event({**VALID, "id": client_id}).client_id == client_id


def test_empty_domain_and_referrer_mean_none() -> None:
    event = parse_event({**VALID, "d": "", "r": ""})

    assert (event.domain, event.referrer) == (None, None)


# ---- props ---------------------------------------------------------------------------------------


def test_props_as_object_and_as_json_string_are_the_same() -> None:
    props = {"plan": "pro", "seats": 5, "price": 9.99, "trial": True, "annual": False}

    as_object = parse_body(body({**VALID, "p": props}), 50)[0]
    as_string = parse_body(body({**VALID, "p": json.dumps(props)}), 50)[0]

    assert (
        as_object.props
        == as_string.props
        == {
            "plan": "pro",
            "seats": "5",
            "price": "9.99",
            "trial": "true",
            "annual": "false",
        }
    )


def test_null_and_empty_prop_values_are_dropped() -> None:
    assert parse_event({**VALID, "p": {"a": None, "b": "", "c": "kept"}}).props == {"c": "kept"}


@pytest.mark.parametrize("count", [0, 1, 30])
def test_up_to_thirty_props_are_accepted(count: int) -> None:
    props = {f"k{i}": str(i) for i in range(count)}

    assert parse_event({**VALID, "p": props}).props == props


@pytest.mark.parametrize("count", [31, 10_000])
def test_more_than_thirty_props_are_rejected(count: int) -> None:
    props = {f"k{i}": "v" for i in range(count)}

    assert "props" in errors_of({**VALID, "p": props})


def test_ten_thousand_props_in_a_json_string_are_rejected() -> None:
    props = json.dumps({f"k{i}": "v" for i in range(10_000)})

    assert "props" in errors_of({**VALID, "p": props})


@pytest.mark.parametrize(
    "props",
    [
        {"": "empty key"},
        {"k" * 301: "v"},
        {"é" * 151: "v"},  # 151 characters, 302 bytes
        {"k": "v" * 2001},
        {"k": "€" * 667},  # 667 characters, 2,001 bytes
        {"k": {"nested": 1}},
        {"k": [1, 2]},
        "not json",
        "[1, 2]",
        '"a string"',
        "null",
        "[" * 100_000,  # nested past the recursion limit
        5,
        True,
        ["a"],
    ],
)
def test_malformed_props_are_rejected(props: Any) -> None:
    assert "props" in errors_of({**VALID, "p": props})


def test_props_at_the_byte_limits_are_accepted() -> None:
    props = {"k" * 300: "v" * 2000}

    assert parse_event({**VALID, "p": props}).props == props


# ---- wrong types and sizes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 5}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"url": None}, "url"),
        ({"url": 5}, "url"),
        ({"url": "https://example.com/" + "a" * 2000}, "url"),
        ({"d": 5}, "domain"),
        ({"d": "a" * 1001}, "domain"),
        ({"r": ["https://x.com"]}, "referrer"),
        ({"r": "https://x.com/" + "a" * 2000}, "referrer"),
        ({"i": "yes"}, "interactive"),
        ({"i": 1}, "interactive"),
        ({"h": 2}, "hashMode"),
        ({"h": "1"}, "hashMode"),
        ({"w": "wide"}, "w"),
        ({"w": True}, "w"),
        ({"w": -1}, "w"),
        ({"w": 100_001}, "w"),
        ({"sd": 101}, "sd"),
        ({"e": -1}, "e"),
        ({"e": 86_400_001}, "e"),
        ({"id": "short"}, "id"),
        ({"id": "has spaces inside"}, "id"),
        ({"id": "x" * 65}, "id"),
        ({"id": 12345678}, "id"),
    ],
)
def test_wrong_type_or_size_is_reported_against_its_field(
    overrides: dict[str, Any], field: str
) -> None:
    data = {k: v for k, v in {**VALID, **overrides}.items() if v is not None}

    assert list(errors_of(data)) == [field]


def test_missing_name_and_url_are_both_reported() -> None:
    errors = errors_of({})

    assert set(errors) == {"name", "url"}
    assert errors["name"] == ["is required"]


def test_every_failing_field_is_reported_at_once() -> None:
    errors = errors_of({"n": 5, "u": "https://example.com/", "w": "x", "p": 3, "id": "!"})

    assert set(errors) == {"name", "w", "props", "id"}


@pytest.mark.parametrize("data", [[], "pageview", 42, None])
def test_event_that_is_not_an_object_is_rejected(data: Any) -> None:
    assert errors_of(data) == {"request": ["event must be a JSON object"]}


# ---- revenue -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "amount"),
    [
        (b'"12.50"', "12.50"),
        (b"12.5", "12.5"),
        (b"10", "10"),
        (b"0.1", "0.1"),
        (b'"-3"', "-3"),
    ],
)
def test_revenue_amount_keeps_its_exact_decimal_digits(raw: bytes, amount: str) -> None:
    raw_body = (
        b'{"n":"Purchase","u":"https://example.com/","$":{"currency":"USD","amount":' + raw + b"}}"
    )

    event = parse_body(raw_body, 50)[0]

    assert (event.revenue_amount, event.revenue_currency) == (amount, "USD")


@pytest.mark.parametrize(
    "revenue",
    [
        "12.50 EUR",
        12.5,
        {"amount": "1"},
        {"currency": "eur", "amount": "1"},
        {"currency": "EURO", "amount": "1"},
        {"currency": "EUR"},
        {"currency": "EUR", "amount": "abc"},
        {"currency": "EUR", "amount": "NaN"},
        {"currency": "EUR", "amount": "Infinity"},
        {"currency": "EUR", "amount": True},
        {"currency": "EUR", "amount": [1]},
    ],
)
def test_malformed_revenue_is_rejected(revenue: Any) -> None:
    assert "revenue" in errors_of({**VALID, "$": revenue})


# ---- the body ------------------------------------------------------------------------------------


def test_single_object_body_is_one_event() -> None:
    assert parse_body(body(VALID), 50) == [
        EventPayload(name="pageview", url="https://example.com/")
    ]


@pytest.mark.parametrize("count", [1, 2, 50])
def test_batch_of_up_to_the_limit_is_accepted_in_order(count: int) -> None:
    batch = [{**VALID, "u": f"https://example.com/{i}"} for i in range(count)]

    events = parse_body(body(batch), 50)

    assert [e.url for e in events] == [f"https://example.com/{i}" for i in range(count)]


def test_batch_over_the_limit_is_rejected() -> None:
    assert body_errors_of(body([VALID] * 51)) == {"request": ["batch holds more than 50 events"]}


def test_empty_batch_is_rejected() -> None:
    assert body_errors_of(b"[]") == {"request": ["batch must hold at least one event"]}


def test_batch_errors_are_prefixed_with_the_event_index() -> None:
    errors = body_errors_of(body([VALID, {"n": "pageview"}, VALID, "nope"]))

    assert errors == {"1.url": ["is required"], "3.request": ["event must be a JSON object"]}


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"not json",
        b"{'n': 'pageview'}",
        b"\xff\xfe\x00",
        b"[" * 100_000,  # nested past the recursion limit
        b'{"n":"pageview","u":"https://example.com/","w":' + b"9" * 5000 + b"}",  # > 4,300 digits
    ],
)
def test_malformed_json_is_rejected_as_a_request_error(raw: bytes) -> None:
    assert body_errors_of(raw) == {"request": ["body must be valid JSON"]}


def test_invalid_payload_message_names_every_field() -> None:
    with pytest.raises(InvalidPayload, match="name: is required; url: is required"):
        parse_event({})


@pytest.mark.parametrize(
    "raw",
    [
        rb'{"n":"pageview","u":"https://example.com/\ud800"}',
        rb'{"n":"page\udfffview","u":"https://example.com/"}',
        rb'{"n":"pageview","u":"https://example.com/","d":"example.com\ud800"}',
        rb'{"n":"x","u":"https://example.com/","p":{"\udc00":"v"}}',
        rb'{"n":"x","u":"https://example.com/","p":{"k":"\ud83d"}}',
        rb'[{"n":"pageview","u":"https://example.com/"},{"n":"\ud800","u":"https://e.com/"}]',
    ],
    ids=["url", "name", "domain", "prop-key", "prop-value", "in-a-batch"],
)
def test_lone_surrogate_escapes_are_rejected_as_a_request_error(raw: bytes) -> None:
    # JSON may escape half of a UTF-16 pair ("\ud800"): Python keeps it as a str that no UTF-8
    # encoder takes, so a length check, DynamoDB or a log line would fail on it later.
    assert body_errors_of(raw) == {"request": ["body must be valid JSON"]}


def test_lone_surrogate_in_props_sent_as_a_json_string_is_rejected() -> None:
    props = json.dumps({"k": "x"}).replace("x", "\\ud800")  # the escape inside the inner text
    assert "props" in errors_of({**VALID, "props": props})


def test_escaped_surrogate_pair_is_one_character_and_accepted() -> None:
    (event,) = parse_body(rb'{"n":"pageview","u":"https://example.com/\ud83d\ude00"}', 50)
    assert event.url == "https://example.com/\U0001f600"


# ---- the engagement an SPA navigation's pageview carries (`l`, decision 0041) ------------------


SPA_PAGEVIEW = {"n": "pageview", "u": "https://example.com/pricing", "d": "example.com", "h": 1}
LEFT = {"u": "https://example.com/", "sd": 87, "e": 12_345}


def test_a_pageview_carrying_the_page_it_left_is_that_engagement_then_the_pageview() -> None:
    events = parse_body(body({**SPA_PAGEVIEW, "l": LEFT}), 50)

    assert events == [
        EventPayload(
            name="engagement",
            url="https://example.com/",
            domain="example.com",
            hash_mode=True,
            scroll_depth=87,
            engaged_ms=12_345,
        ),
        EventPayload(
            name="pageview", url="https://example.com/pricing", domain="example.com", hash_mode=True
        ),
    ]


def test_an_event_with_a_client_id_gives_the_engagement_it_carries_an_id_of_its_own() -> None:
    sent = body({**SPA_PAGEVIEW, "id": "01JDQ2Z7W8K3M4N5P6Q7R8S9T0", "l": LEFT})

    first, again = parse_body(sent, 50), parse_body(sent, 50)

    # The same id on a resend (so it is stored once), not the event's, valid as a client id
    engagement, pageview = first
    assert engagement.client_id == again[0].client_id == left_id("01JDQ2Z7W8K3M4N5P6Q7R8S9T0")
    assert engagement.client_id != pageview.client_id == "01JDQ2Z7W8K3M4N5P6Q7R8S9T0"
    assert CLIENT_ID_RE.fullmatch(engagement.client_id)
    # And another event's engagement gets another
    other = parse_body(body({**SPA_PAGEVIEW, "id": "01JDQ2Z7W8K3M4N5P6Q7R8S9T1", "l": LEFT}), 50)
    assert other[0].client_id != engagement.client_id


def test_each_event_of_a_batch_brings_the_engagement_it_carries() -> None:
    batch = [{**SPA_PAGEVIEW, "l": LEFT}, {**VALID, "n": "Signup"}]

    assert [e.name for e in parse_body(body(batch), 50)] == ["engagement", "pageview", "Signup"]


@pytest.mark.parametrize(
    "left",
    [
        {**LEFT, "e": 86_400_001},  # visible for over a day: beyond what the API takes
        {**LEFT, "sd": 101},
        {**LEFT, "u": ""},
        {"sd": 10, "e": 10},
    ],
)
def test_an_engagement_that_is_not_valid_is_dropped_and_the_pageview_still_counts(
    left: dict[str, Any],
) -> None:
    events = parse_body(body({**SPA_PAGEVIEW, "l": left}), 50)

    assert [(e.name, e.url) for e in events] == [("pageview", "https://example.com/pricing")]


@pytest.mark.parametrize("left", ["https://example.com/", [LEFT], 12])
def test_a_left_field_that_is_no_object_is_rejected(left: Any) -> None:
    assert body_errors_of(body({**SPA_PAGEVIEW, "l": left})) == {
        "l": ["must be an object: the engagement of the page left"]
    }
    assert "0.l" in body_errors_of(body([{**SPA_PAGEVIEW, "l": left}]))


@pytest.mark.parametrize(
    "url", ["https://elsewhere.example/", "http://example.com/", "javascript:alert(1)", "http://["]
)
def test_an_engagement_of_another_origin_is_dropped(url: str) -> None:
    events = parse_body(body({**SPA_PAGEVIEW, "l": {**LEFT, "u": url}}), 50)

    assert [e.name for e in events] == ["pageview"]
