"""Schemathesis against the query API's OpenAPI document: no 5xx, responses match their schemas.

Generated GET requests go to the real app (ASGI) over a site with traffic, with its read key, so the
stats routes are exercised past authentication; the site id stays the real one (a random one only
meets the 401 that test_query_auth covers).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from query_api.app import app
from tests.integration.pipeline import fresh_pipeline

SITE = "openapi.example"
schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)


@pytest.fixture(scope="module")
def read_key(moto_endpoint: str) -> Iterator[str]:
    with fresh_pipeline(moto_endpoint, "openapi") as pipeline:
        key = pipeline.add_site(SITE, tz="Europe/Berlin")
        for n, page in enumerate(("/", "/pricing", "/blog", "/")):
            body = {"n": "pageview", "u": f"https://{SITE}{page}?utm_source=news", "d": SITE}
            assert pipeline.send(body, ip=f"198.51.100.{n}").status == 202
        signup = {"n": "Signup", "u": f"https://{SITE}/", "d": SITE, "p": {"plan": "pro"}}
        assert pipeline.send(signup).status == 202
        pipeline.pump()
        yield key


def test_the_document_lists_the_stats_routes() -> None:
    paths = schema.raw_schema["paths"]
    for path in (
        "/api/v1/stats/aggregate",
        "/api/v1/stats/timeseries",
        "/api/v1/stats/breakdown",
        "/api/v1/stats/realtime/visitors",
        "/api/stats/aggregate",
        "/api/stats/timeseries",
        "/api/stats/breakdown",
    ):
        assert "get" in paths[path], path


GET_PATHS = sorted(path for path, item in schema.raw_schema["paths"].items() if "get" in item)


# One pytest test per route with an id of its own (schemathesis' own parametrize gives them all
# one node id, and pytest-xdist, which schedules by node id, then ran a single route).
@pytest.mark.parametrize("path", GET_PATHS)
def test_no_server_error_and_responses_match_the_document(path: str, read_key: str) -> None:
    @given(case=schema[path]["GET"].as_strategy())
    @settings(
        max_examples=int(os.environ.get("LIVEINSIGHT_SCHEMATHESIS_EXAMPLES", "10")),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    def call(case: schemathesis.Case) -> None:
        if case.query is not None and "site_id" in case.query:
            case.query["site_id"] = SITE
        # Schema-valid is not always meaningful (`date=0000…` is a string, not a date), so the
        # checks are the ones the issue names: no 5xx, documented statuses, bodies matching their
        # schemas.
        case.call_and_validate(
            headers={"authorization": f"Bearer {read_key}"},
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
        )

    call()
