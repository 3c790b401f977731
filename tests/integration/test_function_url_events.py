"""The handlers behind Lambda function URLs instead of the HTTP API (decision 0023).

A function URL sends payload format 2.0 as the HTTP API does, with its own domain as Host and
`pathParameters`, `stageVariables` and `requestContext.authentication` present as null. Given
such events (local/front.py function_url_event), ingest stores and answers as it does today,
the query API (FastAPI behind Mangum) answers, and the query API's same-origin check shows why
the dashboard's origin must be configured: behind a function URL the request's Host is the URL's,
never the dashboard's. Without a custom domain it comes from an SSM String parameter Terraform
writes (decision 0023), read only by the admin paths that need it, and cached.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import botocore.session
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


def login_event() -> dict[str, object]:
    """The dashboard signing in from its own origin, through CloudFront and query's URL."""
    return function_url_event(
        "POST",
        "/api/auth/login",
        {"content-type": "application/json", "origin": DASHBOARD, **FROM_CLOUDFRONT},
        json.dumps({"password": PASSWORD}).encode(),
        "130.176.0.1",
    )


@pytest.mark.parametrize(
    ("public_url", "in_parameter", "status"),
    [("", "", 403), (DASHBOARD, "", 200), ("", DASHBOARD, 200), ("", DASHBOARD + "/", 200)],
)
def test_behind_a_function_url_sign_in_needs_the_dashboards_origin_configured(
    sign_in_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    public_url: str,
    in_parameter: str,
    status: int,
) -> None:
    # Given the query function behind a function URL: its Host is the URL's, never the
    # dashboard's (CloudFront must not forward the viewer's Host to it); the dashboard's origin
    # in its environment (a custom domain) or in the SSM parameter Terraform writes (none)
    monkeypatch.setenv("LIVEINSIGHT_PUBLIC_URL", public_url)
    if in_parameter:
        ssm_parameter(monkeypatch, in_parameter)
    pipeline = Pipeline(sign_in_env)
    # When the dashboard signs in from its own origin
    result = pipeline.query_fn.invoke(login_event())
    # Then it is refused as cross-origin unless the dashboard's origin is configured
    assert result["statusCode"] == status, result


PARAMETER = "/liveinsight/furl-test/public-url"


def ssm_parameter(monkeypatch: pytest.MonkeyPatch, value: str) -> Any:
    from core.aws import make_client

    ssm = make_client("ssm")
    ssm.put_parameter(Name=PARAMETER, Value=value, Type="String", Overwrite=True)
    monkeypatch.setenv("LIVEINSIGHT_PUBLIC_URL_PARAMETER", PARAMETER)
    return ssm


def ssm_reads(calls: list[str]) -> Callable[..., None]:
    def hook(model: Any, **_: Any) -> None:
        if model.service_model.service_name == "ssm" and model.name == "GetParameter":
            calls.append(model.name)

    return hook


def test_the_public_url_parameter_is_read_only_by_admin_paths_and_cached(
    sign_in_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the dashboard's origin in the SSM parameter only, and every GetParameter counted
    monkeypatch.setenv("LIVEINSIGHT_PUBLIC_URL", "")
    ssm_parameter(monkeypatch, DASHBOARD)
    calls: list[str] = []
    original = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-call.ssm.GetParameter", ssm_reads(calls))
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    # The sign-in secrets come from the environment here, so every read is the public URL's
    pipeline = Pipeline(sign_in_env)
    key = pipeline.add_site("furl-lazy.example")
    # When stats are read (no admin path): no read
    stats = function_url_event(
        "GET",
        "/api/realtime?site_id=furl-lazy.example",
        {"authorization": f"Bearer {key}"},
        b"",
        "",
    )
    assert pipeline.query_fn.invoke(stats)["statusCode"] == 200
    assert calls == []
    # When the dashboard signs in twice: one read, then the cached value
    assert pipeline.query_fn.invoke(login_event())["statusCode"] == 200
    assert pipeline.query_fn.invoke(login_event())["statusCode"] == 200
    assert calls == ["GetParameter"]


def test_an_unreadable_public_url_parameter_is_a_503_not_the_urls_own_origin(
    sign_in_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a parameter name that does not exist (say, a deployment half applied)
    monkeypatch.setenv("LIVEINSIGHT_PUBLIC_URL", "")
    monkeypatch.setenv("LIVEINSIGHT_PUBLIC_URL_PARAMETER", "/liveinsight/furl-test/missing")
    pipeline = Pipeline(sign_in_env)
    # When the dashboard signs in
    result = pipeline.query_fn.invoke(login_event())
    # Then it is told to try again, with a JSON error, not refused as cross-origin nor a 500
    assert result["statusCode"] == 503, result
    assert "error" in json.loads(result["body"])
