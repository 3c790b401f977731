"""The local front emulates CloudFront's side of decision 0016: it names the viewer, adds the origin
secret, and replaces whatever a client sent under those names; and, as decision 0023 deploys, it
hands each function what its function URL would."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

from core import edge, settings
from local.front import INGEST_PATHS, LOCAL_ORIGIN_SECRET, ORIGIN_ENVIRONMENT, Front, edge_headers
from local.runtime import LocalFunction


def accepted() -> tuple[bytes, ...]:
    env = {"LIVEINSIGHT_EVENTS_TABLE": "e", "LIVEINSIGHT_META_TABLE": "m", **ORIGIN_ENVIRONMENT}
    return settings.load(settings.IngestSettings, env).origin_digests


def test_a_request_through_the_front_is_believed_by_the_handlers_settings() -> None:
    # Given a browser's request to the front
    headers = edge_headers({"User-Agent": "ua"}, "127.0.0.1", LOCAL_ORIGIN_SECRET)
    # Then it reaches the handlers with the origin secret and the viewer named
    assert headers[edge.ORIGIN_HEADER] == LOCAL_ORIGIN_SECRET
    assert edge.viewer(headers, "127.0.0.1", accepted()).ip == "127.0.0.1"
    assert headers["User-Agent"] == "ua"


def test_a_load_generator_on_loopback_speaks_for_its_simulated_viewers() -> None:
    sent = {"X-Forwarded-For": "198.51.100.7", "CloudFront-Viewer-Country": "DE"}
    headers = edge_headers(sent, "127.0.0.1", LOCAL_ORIGIN_SECRET)
    assert edge.viewer(headers, "127.0.0.1", accepted()) == edge.Viewer("198.51.100.7", "DE")
    assert headers["x-forwarded-for"] == "198.51.100.7, 127.0.0.1"


def test_what_a_remote_client_sends_as_cloudfront_is_replaced() -> None:
    # Given a client off loopback that sends CloudFront's headers and a guessed origin secret
    sent = {
        "x-liveinsight-origin": "guess",
        "CloudFront-Viewer-Address": "6.6.6.6:443",
        "CloudFront-Viewer-Country": "KP",
        "X-Forwarded-For": "6.6.6.6",
    }
    headers = edge_headers(sent, "203.0.113.9", "the-fronts-secret")
    # Then the front names the connection's address, no country, and its own secret
    assert headers[edge.VIEWER_ADDRESS] == "203.0.113.9:443"
    assert edge.VIEWER_COUNTRY not in headers
    assert headers[edge.ORIGIN_HEADER] == "the-fronts-secret"
    assert [k for k in headers if k.lower() == edge.ORIGIN_HEADER] == [edge.ORIGIN_HEADER]


def test_an_ipv6_viewer_is_bracketed_as_cloudfront_writes_it() -> None:
    headers = edge_headers({}, "::1", LOCAL_ORIGIN_SECRET)
    assert headers[edge.VIEWER_ADDRESS] == "[::1]:443"


def test_the_front_sends_each_function_a_function_url_event_through_cloudfront(
    tmp_path: Path,
) -> None:
    # Given the local front with recording handlers in place of ingest and query
    events: dict[str, list[dict[str, Any]]] = {"ingest": [], "query": []}

    def recording(name: str) -> Any:
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            events[name].append(event)
            return {"statusCode": 202, "body": ""}

        return handler

    front = Front(
        "127.0.0.1",
        0,
        LocalFunction("ingest", recording("ingest")),
        LocalFunction("query", recording("query")),
        tmp_path,
        tmp_path / "script.js",
    )
    front.start()
    try:
        base = f"http://127.0.0.1:{front.port}"
        for path in (*INGEST_PATHS, "/api/realtime?site_id=a.example"):
            request = urllib.request.Request(
                base + path,
                data=b'{"n":"pageview"}',
                headers={"content-type": "text/plain", "x-liveinsight-origin": "forged"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.status == 202
    finally:
        front.stop()
    # Then the ingest paths reach ingest and the rest query, as CloudFront's behaviors route them
    assert [e["rawPath"] for e in events["ingest"]] == list(INGEST_PATHS)
    assert [e["rawPath"] for e in events["query"]] == ["/api/realtime"]
    for event in events["ingest"] + events["query"]:
        # as a function URL sends it: the URL's own Host, never the viewer's
        assert event["headers"]["host"].endswith(".lambda-url.us-east-1.on.aws")
        assert event["requestContext"]["domainName"] == event["headers"]["host"]
        assert event["pathParameters"] is None and event["stageVariables"] is None
        # with CloudFront's origin secret in place of the client's
        assert event["headers"][edge.ORIGIN_HEADER] == LOCAL_ORIGIN_SECRET
        assert edge.viewer(event["headers"], "127.0.0.1", accepted()).ip == "127.0.0.1"
