"""The viewer: CloudFront's headers count only with the origin secret; X-Forwarded-For only when a
trusted proxy sets it; else the connection's own address (core/edge.py, decision 0016)."""

from __future__ import annotations

import hashlib

import pytest

from core import edge, settings
from core.edge import ORIGIN_HEADER, Viewer, from_cloudfront, viewer

SECRET = "current-origin-secret-" + "c" * 32
PREVIOUS = "previous-origin-secret-" + "p" * 32
ACCEPTED = (hashlib.sha256(SECRET.encode()).digest(),)
EDGE = {ORIGIN_HEADER: SECRET}  # what CloudFront adds to every request it sends the API


@pytest.mark.parametrize(
    ("headers", "trusted", "expected"),
    [
        ({**EDGE, "cloudfront-viewer-address": "198.51.100.7:46532"}, False, "198.51.100.7"),
        ({**EDGE, "cloudfront-viewer-address": "[2001:db8::1]:443"}, False, "2001:db8::1"),
        ({**EDGE, "cloudfront-viewer-address": "2001:db8::1:443"}, False, "2001:db8::1"),
        # a client forging X-Forwarded-For is ignored when CloudFront names the viewer
        (
            {**EDGE, "cloudfront-viewer-address": "198.51.100.7:1", "x-forwarded-for": "6.6.6.6"},
            True,
            "198.51.100.7",
        ),
        ({"x-forwarded-for": "6.6.6.6, 198.51.100.7"}, False, "10.0.0.9"),
        ({"x-forwarded-for": "not-an-ip, 203.0.113.5"}, True, "203.0.113.5"),
        ({**EDGE, "cloudfront-viewer-address": "garbage"}, False, "10.0.0.9"),
        ({}, True, "10.0.0.9"),
    ],
)
def test_viewer_address_comes_from_cloudfront_before_forwarded_for(
    headers: dict[str, str], trusted: bool, expected: str
) -> None:
    assert viewer(headers, "10.0.0.9", ACCEPTED, trusted).ip == expected


@pytest.mark.parametrize(
    "origin",
    [
        {},  # straight to the execute-api endpoint
        {ORIGIN_HEADER: ""},
        {ORIGIN_HEADER: "guess"},
        {ORIGIN_HEADER: SECRET + " "},
        {ORIGIN_HEADER: SECRET.upper()},
        {ORIGIN_HEADER: hashlib.sha256(SECRET.encode()).hexdigest()},  # the digest is no key
    ],
)
def test_cloudfront_headers_without_the_origin_secret_are_ignored(origin: dict[str, str]) -> None:
    # Given a request that names a viewer and a country as CloudFront would, but without the secret
    headers = {
        **origin,
        "cloudfront-viewer-address": "203.0.113.66:443",
        "cloudfront-viewer-country": "KP",
    }
    # Then the viewer is the connection's own address, with no country
    assert viewer(headers, "198.51.100.20", ACCEPTED) == Viewer("198.51.100.20", "")


def test_cloudfront_headers_are_never_believed_when_no_secret_is_configured() -> None:
    headers = {**EDGE, "cloudfront-viewer-address": "203.0.113.66:443"}
    assert viewer(headers, "198.51.100.20", ()).ip == "198.51.100.20"
    assert not from_cloudfront(headers, ())


def test_country_comes_with_the_origin_secret_only() -> None:
    headers = {"cloudfront-viewer-address": "203.0.113.66:443", "cloudfront-viewer-country": "DE"}
    assert viewer({**headers, **EDGE}, "10.0.0.9", ACCEPTED) == Viewer("203.0.113.66", "DE")
    assert viewer(headers, "10.0.0.9", ACCEPTED).country == ""


def test_both_secrets_are_accepted_while_a_rotation_spreads() -> None:
    # Given the settings of a rotation: the new secret's digest and the previous one's
    config = settings.load(
        settings.IngestSettings,
        {
            "LIVEINSIGHT_EVENTS_TABLE": "events",
            "LIVEINSIGHT_META_TABLE": "meta",
            "LIVEINSIGHT_ORIGIN_SECRET_SHA256": (
                f"{edge.origin_digest(SECRET)}, {edge.origin_digest(PREVIOUS).upper()}"
            ),
        },
    )
    # Then an edge location still sending the previous secret is believed, and so is the new one
    assert from_cloudfront({ORIGIN_HEADER: PREVIOUS}, config.origin_digests)
    assert from_cloudfront({ORIGIN_HEADER: SECRET}, config.origin_digests)
    assert not from_cloudfront({ORIGIN_HEADER: "older-" + PREVIOUS}, config.origin_digests)


@pytest.mark.parametrize("value", ["not-hex", "ab" * 31, "xy" * 32, f"{'a' * 64},nope"])
def test_a_malformed_origin_digest_fails_at_cold_start(value: str) -> None:
    env = {
        "LIVEINSIGHT_AGGREGATES_TABLE": "aggregates",
        "LIVEINSIGHT_META_TABLE": "meta",
        "LIVEINSIGHT_ORIGIN_SECRET_SHA256": value,
    }
    with pytest.raises(settings.SettingsError, match="ORIGIN_SECRET_SHA256"):
        settings.load(settings.QuerySettings, env)
