"""Ingest → events table → stream → aggregator → aggregates → query, all real handlers on moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core import observability
from tests.integration.pipeline import DESKTOP_UA, Pipeline

SITE = "shop.example"


@pytest.fixture()
def pipeline(aws_env: dict[str, str]) -> Pipeline:
    return Pipeline(aws_env)


def pageview(path: str, **extra: object) -> dict[str, object]:
    return {"n": "pageview", "u": f"https://{SITE}{path}", "d": SITE, **extra}


def test_pageviews_reach_the_realtime_api(pipeline: Pipeline) -> None:
    # Given a site and two visitors, one of whom views two pages
    key = pipeline.add_site(SITE)
    assert pipeline.send(pageview("/"), ip="198.51.100.1").status == 202
    inside = pageview("/pricing", r=f"https://{SITE}/")  # a link within the site
    assert pipeline.send(inside, ip="198.51.100.1").status == 202
    google = pageview("/", r="https://www.google.com/")
    assert pipeline.send(google, ip="198.51.100.2").status == 202
    assert pipeline.send(google, ip="198.51.100.2").status == 202  # an SPA keeps its referrer
    # When the stream is aggregated
    assert len(pipeline.pump()) == 4
    # Then realtime shows both visitors, four pageviews and the top pages
    realtime = pipeline.realtime(SITE, key)
    assert realtime["current_visitors"] == 2
    assert realtime["pageviews"] == 4
    assert realtime["top_pages"] == [
        {"page": "/", "pageviews": 3},
        {"page": "/pricing", "pageviews": 1},
    ]
    # and where each visitor arrived from (the link within the site is no arrival)
    assert realtime["top_sources"] == [
        {"source": "Direct / None", "visitors": 1},
        {"source": "Google", "visitors": 1},
    ]
    assert sum(p["visitors"] for p in realtime["per_minute"]) == 2
    assert pipeline.get(f"/api/v1/stats/realtime/visitors?site_id={SITE}", key).json() == 2


def test_stored_event_is_enriched_and_holds_no_ip_or_user_agent(pipeline: Pipeline) -> None:
    pipeline.add_site(SITE)
    pipeline.send(
        pageview(
            "/blog?utm_source=newsletter&utm_medium=email",
            r="https://www.google.com/search?q=x",
            w=390,
        ),
        ip="203.0.113.99",
        extra_headers={"cloudfront-viewer-country": "DE"},
    )
    (item,) = pipeline.scan("events")
    flat = json.dumps(item)
    assert "203.0.113.99" not in flat
    assert DESKTOP_UA not in flat and "Windows NT 10.0" not in flat
    assert item["page"] == {"S": "/blog"}
    assert item["source"] == {"S": "newsletter"}
    assert item["utm_medium"] == {"S": "email"}
    assert item["referrer"] == {"S": "https://www.google.com/search"}
    assert item["country"] == {"S": "DE"}
    assert item["browser"] == {"S": "Chrome"}
    assert item["device"] == {"S": "Mobile"}  # by screen width, as Plausible does
    assert "ttl" in item


def test_events_to_several_sites_are_counted_per_site(pipeline: Pipeline) -> None:
    key_a = pipeline.add_site("a.example")
    key_b = pipeline.add_site("b.example")
    pipeline.send({"n": "pageview", "u": "https://a.example/", "d": "a.example,b.example"})
    pipeline.pump()
    assert pipeline.realtime("a.example", key_a)["pageviews"] == 1
    assert pipeline.realtime("b.example", key_b)["pageviews"] == 1


def test_batch_array_is_accepted_as_one_request(pipeline: Pipeline) -> None:
    key = pipeline.add_site(SITE)
    response = pipeline.send(
        [pageview("/a"), pageview("/b"), {"n": "Signup", "u": f"https://{SITE}/b", "d": SITE}]
    )
    assert response.status == 202
    pipeline.pump()
    realtime = pipeline.realtime(SITE, key)
    assert realtime["pageviews"] == 2
    assert realtime["current_visitors"] == 1


def test_realtime_card_renders_escaped_html(pipeline: Pipeline) -> None:
    key = pipeline.add_site(SITE)
    pipeline.send(pageview("/<script>alert(1)</script>"))
    pipeline.pump()
    response = pipeline.get(f"/api/realtime/card?site_id={SITE}", key)
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<script>alert(1)</script>" not in response.body
    assert 'data-testid="current-visitors">1<' in response.body


def test_aggregator_logs_carry_the_ingest_request_id(
    pipeline: Pipeline, json_logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an event accepted by ingest, whose log line carries the API request id (a traced
    # one: at INFO an accepted request has its own line only if its id is traced, decision 0021)
    monkeypatch.setattr(observability, "TRACE_ONE_IN", 1)
    pipeline.add_site(SITE)
    pipeline.send(pageview("/"))
    (ingested,) = [line for line in json_logs() if line["message"] == "events ingested"]
    correlation_id = ingested["correlation_id"]
    assert correlation_id
    # When the aggregator counts it
    pipeline.pump()
    # Then the aggregator's line for that event carries the same id
    (aggregated,) = [line for line in json_logs() if line["message"] == "event aggregated"]
    assert aggregated["correlation_id"] == correlation_id
    assert aggregated["service"] == "aggregator" and aggregated["level"] == "INFO"


def test_the_harness_reads_every_stream_record_past_one_page(pipeline: Pipeline) -> None:
    # A stream page holds at most 1,000 records; the bench's campaign once read only the first
    # page and reported the rest as 30,000 mismatched cells.
    written = 1_001
    for start in range(0, written, 25):
        pipeline.ddb.batch_write_item(
            RequestItems={
                pipeline.names["events"]: [
                    {
                        "PutRequest": {
                            "Item": {"pk": {"S": f"EV#paging.example#{n}"}, "sk": {"S": "e"}}
                        }
                    }
                    for n in range(start, min(start + 25, written))
                ]
            }
        )
    records = pipeline.read_stream()
    keys = {r["dynamodb"]["Keys"]["pk"]["S"] for r in records}
    assert len(records) == len(keys) == written
    assert pipeline.read_stream() == []
