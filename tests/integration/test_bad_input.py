"""Bad input gets a clear 4xx JSON error (or 202-and-drop), stores nothing, and harms nothing stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.pipeline import Pipeline

SITE = "safe.example"
GOOD = {"n": "pageview", "u": f"https://{SITE}/", "d": SITE}
BOT_UAS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
    "curl/8.5.0",
    "",
]


@pytest.fixture()
def seeded(aws_env: dict[str, str]) -> tuple[Pipeline, str, list[dict[str, Any]]]:
    """A site with one counted pageview already stored and aggregated."""
    pipeline = Pipeline(aws_env)
    key = pipeline.add_site(SITE)
    assert pipeline.send(GOOD).status == 202
    pipeline.pump()
    return pipeline, key, pipeline.scan("events")


def assert_nothing_changed(pipeline: Pipeline, key: str, before: list[dict[str, Any]]) -> None:
    assert pipeline.scan("events") == before
    assert pipeline.read_stream() == []
    realtime = pipeline.realtime(SITE, key)
    assert realtime["pageviews"] == 1 and realtime["current_visitors"] == 1


INVALID = [
    pytest.param(b"{not json", "request", id="malformed-json"),
    pytest.param(
        json.dumps({"u": f"https://{SITE}/", "d": SITE}).encode(), "name", id="missing-name"
    ),
    pytest.param(json.dumps({"n": "pageview", "d": SITE}).encode(), "url", id="missing-url"),
    pytest.param(
        json.dumps({**GOOD, "p": {"k": "x" * 70_000}}).encode(), "request", id="body-over-64kb"
    ),
    pytest.param(
        json.dumps({**GOOD, "u": "javascript:alert(1)"}).encode(), "url", id="javascript-url"
    ),
    pytest.param(
        json.dumps({**GOOD, "p": {f"k{i}": i for i in range(10_000)}}).encode(),
        "request",
        id="10000-props",
    ),
    pytest.param(
        json.dumps({**GOOD, "p": {f"k{i}": i for i in range(31)}}).encode(), "props", id="31-props"
    ),
    pytest.param(json.dumps({**GOOD, "n": 42}).encode(), "name", id="name-not-a-string"),
    pytest.param(json.dumps({**GOOD, "u": ["https://x"]}).encode(), "url", id="url-not-a-string"),
    pytest.param(json.dumps({**GOOD, "p": [1, 2]}).encode(), "props", id="props-a-list"),
    pytest.param(
        json.dumps({**GOOD, "i": "yes"}).encode(), "interactive", id="interactive-not-bool"
    ),
    pytest.param(json.dumps({**GOOD, "w": "wide"}).encode(), "w", id="width-not-a-number"),
    pytest.param(json.dumps([GOOD] * 51).encode(), "request", id="batch-of-51"),
    pytest.param(
        json.dumps([GOOD, {"n": "pageview"}]).encode(), "1.url", id="batch-with-one-bad-event"
    ),
    pytest.param(json.dumps("pageview").encode(), "request", id="a-bare-string"),
    pytest.param(b"\xff\xfe\x00garbage", "request", id="not-utf8"),
    pytest.param(b"[" * 60_000, "request", id="deeply-nested"),
]


@pytest.mark.parametrize(("body", "field"), INVALID)
def test_invalid_event_gets_400_json_error_and_stores_nothing(
    seeded: tuple[Pipeline, str, list[dict[str, Any]]], body: bytes, field: str
) -> None:
    pipeline, key, before = seeded
    response = pipeline.send(None, raw=body)
    assert response.status == 400
    assert response.headers["content-type"] == "application/json"
    errors = response.json()["errors"]
    assert field in errors and all(isinstance(m, str) for m in errors[field])
    assert_nothing_changed(pipeline, key, before)


@pytest.mark.parametrize("user_agent", BOT_UAS)
def test_bot_user_agent_gets_202_with_dropped_headers_and_stores_nothing(
    seeded: tuple[Pipeline, str, list[dict[str, Any]]], user_agent: str
) -> None:
    pipeline, key, before = seeded
    response = pipeline.send(GOOD, user_agent=user_agent)
    assert response.status == 202 and response.body == "ok"
    assert response.headers["x-plausible-dropped"] == "1"
    assert_nothing_changed(pipeline, key, before)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            {"n": "pageview", "u": "https://unknown.example/", "d": "unknown.example"},
            "unknown_site",
        ),
        ({**GOOD, "u": "file:///home/me/index.html"}, "invalid_url"),
        ({**GOOD, "r": "https://semalt.com/crawler"}, "spam_referrer"),
        ({**GOOD, "d": "İ" * 500}, "invalid_domain"),  # 1,000 bytes, 1,500 once lowercased
        ({**GOOD, "d": "exa mple.com"}, "invalid_domain"),
    ],
)
def test_dropped_event_logs_why_but_tells_the_sender_only_that_it_was_dropped(
    seeded: tuple[Pipeline, str, list[dict[str, Any]]],
    json_logs: Any,
    event: dict[str, Any],
    reason: str,
) -> None:
    pipeline, key, before = seeded
    response = pipeline.send(event)
    # The sender learns that the event was dropped (Plausible's header), never why: a reason
    # such as unknown_site would tell anyone which domains are registered.
    assert (response.status, response.body) == (202, "ok")
    assert response.headers["x-plausible-dropped"] == "1"
    assert not [h for h in response.headers if h.startswith("x-") and h != "x-plausible-dropped"]
    assert reason not in json.dumps(response.headers)
    (line,) = [line for line in json_logs() if line["message"] == "events ingested"]
    assert line["dropped"] == [reason]
    assert_nothing_changed(pipeline, key, before)


def test_unknown_and_known_sites_get_the_same_answer_but_for_plausibles_header(
    seeded: tuple[Pipeline, str, list[dict[str, Any]]],
) -> None:
    pipeline, _, _ = seeded
    known = pipeline.send({**GOOD, "d": f"{SITE},unknown.example"})
    alone = pipeline.send(GOOD)
    assert (known.status, known.body, known.headers) == (alone.status, alone.body, alone.headers)


def test_preflight_allows_any_origin_and_reflects_headers(
    seeded: tuple[Pipeline, str, list[dict[str, Any]]],
) -> None:
    pipeline, _, _ = seeded
    response = pipeline.send(
        None,
        raw=b"",
        method="OPTIONS",
        extra_headers={
            "origin": "https://elsewhere.example",
            "access-control-request-headers": "content-type,x-umami-cache",
        },
    )
    assert response.status == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-headers"] == "content-type,x-umami-cache"
    assert "POST" in response.headers["access-control-allow-methods"]


def test_accepted_event_allows_cross_origin_reads_of_the_answer(aws_env: dict[str, str]) -> None:
    pipeline = Pipeline(aws_env)
    pipeline.add_site(SITE)
    response = pipeline.send(GOOD, content_type="application/json")
    assert response.status == 202
    assert response.headers["access-control-allow-origin"] == "*"
