"""The viewer's region and city from CloudFront's headers: believed only behind the origin secret
(decision 0016), validated, and nothing finer read."""

from __future__ import annotations

import pytest

from core import edge
from ingest import geo
from local.front import LOCAL_ORIGIN_SECRET, edge_headers

ACCEPTED = (bytes.fromhex(edge.origin_digest("s3cret")),)
LOCATED = {
    edge.VIEWER_ADDRESS: "203.0.113.9:443",
    edge.VIEWER_COUNTRY: "DE",
    edge.VIEWER_REGION: "BY",
    edge.VIEWER_CITY: "Munich",
}


def test_location_headers_are_believed_with_the_origin_secret() -> None:
    viewer = edge.viewer({**LOCATED, edge.ORIGIN_HEADER: "s3cret"}, "192.0.2.1", ACCEPTED)
    assert (viewer.ip, viewer.country, viewer.region, viewer.city) == (
        "203.0.113.9",
        "DE",
        "BY",
        "Munich",
    )


@pytest.mark.parametrize("secret", ["", "wrong"])
def test_location_headers_are_ignored_without_the_origin_secret(secret: str) -> None:
    headers = {**LOCATED, edge.ORIGIN_HEADER: secret} if secret else dict(LOCATED)
    viewer = edge.viewer(headers, "192.0.2.1", ACCEPTED)
    assert (viewer.ip, viewer.country, viewer.region, viewer.city) == ("192.0.2.1", "", "", "")


@pytest.mark.parametrize(
    ("country", "header", "expected"),
    [
        ("DE", "BY", "DE-BY"),
        ("DE", " by ", "DE-BY"),
        ("JP", "13", "JP-13"),
        ("FR", "IDF", "FR-IDF"),
        ("", "BY", ""),  # no country believed: no region
        ("DE", "", ""),
        ("DE", "BAVARIA", ""),
        ("DE", "B-Y", ""),
        ("DE", None, ""),
    ],
)
def test_region_is_the_iso_3166_2_code(country: str, header: str | None, expected: str) -> None:
    assert geo.region_from_header(country, header) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Munich", "Munich"),
        ("S%C3%A3o%20Paulo", "São Paulo"),
        ("New York", "New York"),
        ("Bad\tCity", ""),
        ("x" * 101, ""),
        ("", ""),
    ],
)
def test_city_is_cloudfronts_name(header: str, expected: str) -> None:
    assert geo.city_from_header("BR", header) == expected


def test_the_local_front_passes_a_load_generators_location_and_drops_a_strangers() -> None:
    sent = {"x-forwarded-for": "203.0.113.9", **{k: v for k, v in LOCATED.items()}}
    local = edge_headers(sent, "127.0.0.1", LOCAL_ORIGIN_SECRET)
    assert (local[edge.VIEWER_REGION], local[edge.VIEWER_CITY]) == ("BY", "Munich")
    remote = edge_headers(sent, "198.51.100.1", LOCAL_ORIGIN_SECRET)
    assert edge.VIEWER_REGION not in remote and edge.VIEWER_CITY not in remote
