"""Ingest believes CloudFront's viewer headers only from CloudFront (decision 0016).

Someone posting to the execute-api endpoint (or to a function URL, decision 0023) directly could
otherwise name any viewer address (a fresh visitor hash per event) and any country. With the origin secret CloudFront adds, the
headers count; without it the viewer is API Gateway's sourceIp and the country unknown.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from core.edge import ORIGIN_HEADER, origin_digest
from tests.integration.pipeline import Pipeline

SITE = "trust.example"
ORIGIN_SECRET = "ingest-test-origin-secret-" + "i" * 24
PAGE = {"n": "pageview", "u": f"https://{SITE}/", "d": SITE}


@pytest.fixture()
def pipeline(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    monkeypatch.setenv("LIVEINSIGHT_ORIGIN_SECRET_SHA256", origin_digest(ORIGIN_SECRET))
    pipeline = Pipeline(aws_env)
    pipeline.add_site(SITE)
    return pipeline


def stored(pipeline: Pipeline) -> list[tuple[str, str]]:
    """(visitor id, country) of every stored event."""
    return [
        (item["visitor_id"]["S"], item.get("country", {}).get("S", ""))
        for item in pipeline.scan("events")
    ]


def test_viewer_and_country_from_cloudfront_are_believed(pipeline: Pipeline) -> None:
    # Given two viewers CloudFront names, in Germany
    edge = {ORIGIN_HEADER: ORIGIN_SECRET, "cloudfront-viewer-country": "DE"}
    for ip in ("198.51.100.1", "198.51.100.2"):
        assert pipeline.send(PAGE, ip=ip, extra_headers=edge).status == 202
    # Then they are two visitors, both counted in Germany
    visitors = stored(pipeline)
    assert len({v for v, _ in visitors}) == 2
    assert {c for _, c in visitors} == {"DE"}


@pytest.mark.parametrize("origin", [{}, {ORIGIN_HEADER: "guess"}])
def test_forged_viewer_headers_without_the_origin_secret_are_ignored(
    pipeline: Pipeline, origin: dict[str, str]
) -> None:
    # Given events posted straight to API Gateway, each naming another viewer and a country
    forged = {**origin, "cloudfront-viewer-country": "KP"}
    for ip in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        assert pipeline.send(PAGE, ip=ip, extra_headers=forged).status == 202
    # Then they are one visitor (the connection's own address), with no country
    visitors = stored(pipeline)
    assert len(visitors) == 3
    assert len({v for v, _ in visitors}) == 1
    assert {c for _, c in visitors} == {""}


def test_a_direct_caller_of_the_function_url_is_counted_at_its_own_address_without_country(
    pipeline: Pipeline,
) -> None:
    # Given callers that reach the ingest function's URL without CloudFront (decision 0023): no
    # origin secret, forged viewer headers, each from its own connection address (Lambda's
    # sourceIp, which a caller cannot choose)
    from local.front import function_url_event

    calls = (
        ("192.0.2.1", "203.0.113.1"),
        ("192.0.2.1", "203.0.113.2"),
        ("192.0.2.2", "203.0.113.1"),
    )
    for own, forged in calls:
        headers = {
            "content-type": "text/plain",
            "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
            "cloudfront-viewer-address": f"{forged}:443",
            "cloudfront-viewer-country": "KP",
        }
        event = function_url_event("POST", "/api/event", headers, json.dumps(PAGE).encode(), own)
        assert pipeline.ingest_fn.invoke(event)["statusCode"] == 202
    # Then each is one visitor per own address, whatever it named, and no country is believed
    visitors = stored(pipeline)
    assert sorted(Counter(v for v, _ in visitors).values()) == [1, 2]
    assert {c for _, c in visitors} == {""}
