"""The viewer address: CloudFront's header wins; X-Forwarded-For only when a trusted proxy sets it."""

from __future__ import annotations

import pytest

from ingest.service import HttpRequest, _client_ip


def request(headers: dict[str, str], source_ip: str = "10.0.0.9") -> HttpRequest:
    return HttpRequest("POST", "/api/event", headers, b"", source_ip)


@pytest.mark.parametrize(
    ("headers", "trusted", "expected"),
    [
        ({"cloudfront-viewer-address": "198.51.100.7:46532"}, False, "198.51.100.7"),
        ({"cloudfront-viewer-address": "[2001:db8::1]:443"}, False, "2001:db8::1"),
        ({"cloudfront-viewer-address": "2001:db8::1:443"}, False, "2001:db8::1"),
        # a client forging X-Forwarded-For is ignored when CloudFront names the viewer
        (
            {"cloudfront-viewer-address": "198.51.100.7:1", "x-forwarded-for": "6.6.6.6"},
            True,
            "198.51.100.7",
        ),
        ({"x-forwarded-for": "6.6.6.6, 198.51.100.7"}, False, "10.0.0.9"),
        ({"x-forwarded-for": "not-an-ip, 203.0.113.5"}, True, "203.0.113.5"),
        ({"cloudfront-viewer-address": "garbage"}, False, "10.0.0.9"),
        ({}, True, "10.0.0.9"),
    ],
)
def test_viewer_address_comes_from_cloudfront_before_forwarded_for(
    headers: dict[str, str], trusted: bool, expected: str
) -> None:
    assert _client_ip(request(headers), trusted) == expected
