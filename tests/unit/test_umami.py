"""Umami's collect payload (docs/compat.md §2) read into the Plausible-format EventPayload."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest import umami
from ingest.payload import InvalidPayload

SITE = "shop.example"
UUID = "2ffbbd54-0d6d-5a6a-a4a4-7a4d2d1b9c3e"  # not the site's: see test_website_id_*


def call(**payload: Any) -> umami.UmamiCall:
    body = {"type": "event", "payload": {"website": SITE, "hostname": SITE, **payload}}
    return umami.parse_send(json.dumps(body).encode())


def test_payload_without_name_is_a_pageview_at_the_path_resolved_against_hostname() -> None:
    event = umami.to_event(call(url="/pricing?utm_source=news", screen="1920x1080"), SITE)
    assert event.name == "pageview"
    assert event.url == f"https://{SITE}/pricing?utm_source=news"
    assert event.domain == SITE
    assert event.screen_width == 1920
    assert event.props == {}


def test_payload_with_name_is_a_custom_event_whose_data_are_its_props() -> None:
    event = umami.to_event(
        call(url="/", name="signup", data={"plan": "pro", "seats": 3, "trial": False}), SITE
    )
    assert event.name == "signup"
    assert event.props == {"plan": "pro", "seats": "3", "trial": "false"}


def test_nested_data_become_dotted_props_and_arrays_their_json() -> None:
    event = umami.to_event(call(url="/", name="x", data={"a": {"b": 1}, "tags": [1, 2]}), SITE)
    assert event.props == {"a.b": "1", "tags": "[1,2]"}


def test_data_nested_too_deep_is_rejected() -> None:
    deep: dict[str, Any] = {"v": 1}
    for _ in range(6):
        deep = {"k": deep}
    with pytest.raises(InvalidPayload) as raised:
        umami.to_event(call(url="/", name="x", data=deep), SITE)
    assert "data" in raised.value.errors


def test_full_url_is_kept_and_path_only_referrer_is_a_self_referral_url() -> None:
    # Given an SPA navigation: Umami's tracker sends the previous path as the referrer
    event = umami.to_event(call(url=f"https://{SITE}/b", referrer="/a"), SITE)
    assert event.url == f"https://{SITE}/b"
    assert event.referrer == f"https://{SITE}/a"
    external = umami.to_event(call(url="/b", referrer="https://www.google.com/"), SITE)
    assert external.referrer == "https://www.google.com/"


def test_empty_referrer_is_none() -> None:
    assert umami.to_event(call(url="/", referrer=""), SITE).referrer is None


@pytest.mark.parametrize(
    "title",
    ["Caf%C3%A9%20%E2%80%94%20Men%C3%BC", "Plain title", "100%", "%E2%80", ""],
    ids=["percent-encoded", "plain", "lone-percent", "truncated-sequence", "empty"],
)
def test_percent_encoded_or_malformed_titles_are_accepted(title: str) -> None:
    assert umami.to_event(call(url="/", title=title), SITE).name == "pageview"


def test_overlong_title_is_rejected() -> None:
    with pytest.raises(InvalidPayload) as raised:
        umami.to_event(call(url="/", title="%41" * 501), SITE)
    assert "title" in raised.value.errors


@pytest.mark.parametrize("screen", ["wide", "1920", "x1080", "1920x", 1920, None])
def test_screen_that_is_not_width_x_height_is_ignored(screen: Any) -> None:
    assert umami.to_event(call(url="/", screen=screen), SITE).screen_width is None


def test_payload_without_hostname_resolves_its_path_against_the_site() -> None:
    body = {"type": "event", "payload": {"website": SITE, "url": "/x"}}
    parsed = umami.parse_send(json.dumps(body).encode())
    assert umami.to_event(parsed, SITE).url == f"https://{SITE}/x"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "request"),
        (json.dumps({"type": "event"}).encode(), "payload"),
        (json.dumps({"type": "pageview", "payload": {"website": SITE}}).encode(), "type"),
        (json.dumps({"type": "event", "payload": {"url": "/"}}).encode(), "website"),
        (json.dumps({"type": "event", "payload": {"website": 7}}).encode(), "website"),
        (
            json.dumps({"type": "event", "payload": {"website": SITE, "hostname": "a b"}}).encode(),
            "hostname",
        ),
    ],
)
def test_malformed_call_is_rejected_against_its_field(body: bytes, field: str) -> None:
    with pytest.raises(InvalidPayload) as raised:
        umami.parse_send(body)
    assert field in raised.value.errors


@pytest.mark.parametrize(
    "website",
    [
        "İ" * 253,  # 253 characters, 759 bytes once lowercased
        "bücher.de",
        "shop.example\x00",
        "shop example",
        "*.shop.example",
        "../../etc/passwd",
        "a" * 64 + ".example",
    ],
)
def test_website_that_is_neither_a_domain_nor_a_uuid_is_rejected(website: str) -> None:
    with pytest.raises(InvalidPayload) as raised:
        call(website=website)
    assert list(raised.value.errors) == ["website"]


def test_uuid_names_only_valid_parent_domains_of_the_hostname() -> None:
    parent = "-bad.example"  # a parent label _HOST_RE lets through but no domain has
    uuid = umami.website_id(parent)
    assert umami.candidate_domains(call(website=uuid, hostname=f"a.{parent}")) == []


def test_event_errors_name_umami_fields() -> None:
    with pytest.raises(InvalidPayload) as raised:
        umami.to_event(call(url="/", name="x", data={f"k{i}": i for i in range(31)}), SITE)
    assert umami.error_message(raised.value).startswith("data: ")


def test_website_id_is_uuid5_of_the_domain() -> None:
    assert umami.website_id("example.com") == "cfbff0d1-9375-5685-968c-48ce8b15ae17"


def test_website_given_as_domain_names_that_domain() -> None:
    assert umami.candidate_domains(call(website="WWW.Shop.Example")) == [SITE]


def test_website_given_as_uuid_names_the_hostname_or_a_parent_it_was_derived_from() -> None:
    uuid = umami.website_id(SITE)
    assert umami.candidate_domains(call(website=uuid)) == [SITE]
    assert umami.candidate_domains(call(website=uuid, hostname=f"blog.{SITE}")) == [SITE]
    assert umami.candidate_domains(call(website=UUID)) == []


def test_identify_calls_are_parsed_as_identify() -> None:
    body = {"type": "identify", "payload": {"website": SITE, "data": {"email": "a@b.c"}}}
    assert umami.parse_send(json.dumps(body).encode()).kind == umami.IDENTIFY


def test_batch_must_be_a_non_empty_array_within_the_limit() -> None:
    for bad in (b"{}", b"[]", json.dumps([{}] * 51).encode()):
        with pytest.raises(InvalidPayload):
            umami.parse_batch(bad, 50)
    assert len(umami.parse_batch(json.dumps([{}] * 50).encode(), 50)) == 50


def test_answer_ids_are_stable_per_visitor_and_hour_and_say_nothing_else() -> None:
    at = datetime(2026, 11, 26, 10, 5, tzinfo=UTC)
    first = json.loads(umami.ok_body("visitor-hash", at))
    later = json.loads(umami.ok_body("visitor-hash", at.replace(minute=55)))
    next_hour = json.loads(umami.ok_body("visitor-hash", at.replace(hour=11)))
    assert set(first) == {"cache", "sessionId", "visitId"}
    assert first == later
    assert next_hour["sessionId"] == first["sessionId"]
    assert next_hour["visitId"] != first["visitId"]
    assert "visitor-hash" not in json.dumps(first)


def test_error_body_is_umamis() -> None:
    assert json.loads(umami.error_body(umami.WEBSITE_NOT_FOUND)) == {
        "error": {"message": "Website not found.", "code": "bad-request", "status": 400}
    }


@pytest.mark.parametrize("url", [None, ""], ids=["absent", "empty"])
def test_call_without_url_is_at_the_root_as_umami_counts_it(url: str | None) -> None:
    # Given @umami/node's track("signup", data): {website, name, data}, no url, no hostname
    payload: dict[str, Any] = {"website": UUID, "name": "signup", "data": {"plan": "pro"}}
    if url is not None:
        payload["url"] = url
    parsed = umami.parse_send(json.dumps({"type": "event", "payload": payload}).encode())
    # Then it is an event on the site's root page
    event = umami.to_event(parsed, SITE)
    assert (event.name, event.url, event.props) == ("signup", f"https://{SITE}/", {"plan": "pro"})


def test_a_uuid_website_is_looked_up_and_a_domain_is_not() -> None:
    assert umami.website_uuid(call(website=UUID)) == UUID
    assert umami.website_uuid(call(website=SITE)) is None
