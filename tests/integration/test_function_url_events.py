"""The handlers behind Lambda function URLs instead of the HTTP API (decision 0023).

A function URL sends payload format 2.0 as the HTTP API does, with its own domain as Host and
`pathParameters`, `stageVariables` and `requestContext.authentication` present as null. Given
such events (local/front.py function_url_event), ingest stores and answers as it does today,
the query API (FastAPI behind Mangum) answers, and the query API's same-origin check shows why
the switch needs the dashboard's origin configured: behind a function URL the request's Host is
the URL's, never the dashboard's.
"""

from __future__ import annotations

import json

import pytest

from core.edge import ORIGIN_HEADER
from local.front import LOCAL_ORIGIN_SECRET, api_gateway_event, function_url_event
from tests.integration.admin_client import PASSWORD
from tests.integration.pipeline import DESKTOP_UA, Pipeline

SITE = "furl.example"
DASHBOARD = "https://d111111abcdef8.cloudfront.net"
FROM_CLOUDFRONT = {
    "user-agent": DESKTOP_UA,
    "cloudfront-viewer-address": "198.51.100.7:443",
    "cloudfront-viewer-country": "FR",
    ORIGIN_HEADER: LOCAL_ORIGIN_SECRET,
}


@pytest.fixture()
def pipeline(aws_env: dict[str, str]) -> Pipeline:
    pipeline = Pipeline(aws_env)
    pipeline.add_site(SITE)
    return pipeline


def test_a_function_url_event_is_the_http_apis_with_the_urls_own_names() -> None:
    body = json.dumps({"n": "pageview", "u": f"https://{SITE}/"}).encode()
    headers = {"content-type": "text/plain", "Cookie": "a=1; b=2", **FROM_CLOUDFRONT}
    url = function_url_event("POST", "/api/event?x=1", headers, body, "192.0.2.9", "abc123")
    api = api_gateway_event("POST", "/api/event?x=1", headers, body, "192.0.2.9")

    domain = "abc123.lambda-url.us-east-1.on.aws"
    assert url["headers"]["host"] == url["requestContext"]["domainName"] == domain
    assert url["requestContext"]["domainPrefix"] == url["requestContext"]["apiId"] == "abc123"
    assert url["requestContext"]["authentication"] is None
    assert url["pathParameters"] is None and url["stageVariables"] is None
    # And the rest is the HTTP API's payload format 2.0
    for field in ("version", "routeKey", "rawPath", "rawQueryString", "cookies", "body"):
        assert url[field] == api[field], field
    assert url["queryStringParameters"] == {"x": "1"}
    assert url["isBase64Encoded"] is False
    assert url["requestContext"]["http"] == api["requestContext"]["http"]
    assert {k: v for k, v in url["headers"].items() if k != "host"} == api["headers"]


def test_ingest_behind_a_function_url_stores_the_event_with_cloudfronts_viewer(
    pipeline: Pipeline,
) -> None:
    # Given a pageview CloudFront forwards to the ingest function's URL
    body = json.dumps({"n": "pageview", "u": f"https://{SITE}/a", "d": SITE}).encode()
    headers = {"content-type": "text/plain", **FROM_CLOUDFRONT}
    event = function_url_event("POST", "/api/event", headers, body, "130.176.0.1")
    # When ingest handles it
    result = pipeline.ingest_fn.invoke(event)
    # Then it is accepted and stored with CloudFront's country
    assert result["statusCode"] == 202, result
    (item,) = pipeline.scan("events")
    assert item["country"]["S"] == "FR"


def test_ingest_answers_a_preflight_that_reaches_it_through_a_function_url(
    pipeline: Pipeline,
) -> None:
    # A function URL without a CORS configuration passes OPTIONS on to the function
    headers = {
        "origin": f"https://{SITE}",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
        **FROM_CLOUDFRONT,
    }
    result = pipeline.ingest_fn.invoke(
        function_url_event("OPTIONS", "/api/event", headers, b"", "130.176.0.1")
    )
    assert result["statusCode"] == 204
    assert result["headers"]["access-control-allow-origin"] == "*"
    assert "POST" in result["headers"]["access-control-allow-methods"]


def test_the_query_api_answers_a_function_url_event(pipeline: Pipeline) -> None:
    key = pipeline.add_site("furl-query.example")
    event = function_url_event(
        "GET",
        "/api/v1/stats/aggregate?site_id=furl-query.example&period=custom"
        "&date=2026-01-01,2026-01-02&metrics=visitors",
        {"authorization": f"Bearer {key}", **FROM_CLOUDFRONT},
        b"",
        "130.176.0.1",
    )
    result = pipeline.query_fn.invoke(event)
    assert result["statusCode"] == 200, result
    assert json.loads(result["body"]) == {"results": {"visitors": {"value": 0}}}


@pytest.mark.parametrize(("public_url", "status"), [("", 403), (DASHBOARD, 200)])
def test_behind_a_function_url_sign_in_needs_the_dashboards_origin_configured(
    sign_in_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, public_url: str, status: int
) -> None:
    # Given the query function behind a function URL: its Host is the URL's, never the
    # dashboard's (CloudFront must not forward the viewer's Host to it)
    monkeypatch.setenv("LIVEINSIGHT_PUBLIC_URL", public_url)
    pipeline = Pipeline(sign_in_env)
    # When the dashboard signs in from its own origin
    event = function_url_event(
        "POST",
        "/api/auth/login",
        {"content-type": "application/json", "origin": DASHBOARD, **FROM_CLOUDFRONT},
        json.dumps({"password": PASSWORD}).encode(),
        "130.176.0.1",
    )
    result = pipeline.query_fn.invoke(event)
    # Then it is refused as cross-origin unless the dashboard's origin is configured
    # (decision 0023, prerequisite 2: today LIVEINSIGHT_PUBLIC_URL names the distribution)
    assert result["statusCode"] == status, result
