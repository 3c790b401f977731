"""What a deployment pays CloudWatch for (decision 0021): at the default log level a batch writes
the same lines whatever its size, a plain accepted request writes none, and a pageview (with its
engagement event) costs at most 300 bytes of log lines, EMF blobs included.

Lines are captured as the functions print them (bench/logvolume.py: Powertools' lines and EMF
blobs on stdout) while the real handlers run on moto.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bench import logvolume
from core import observability
from tests.infra.test_terraform_static import emitted_metrics
from tests.integration.pipeline import Pipeline

SITE = "volume.example"
GOAL_BYTES_PER_PAGEVIEW = 300


@pytest.fixture()
def pipeline(aws_env: dict[str, str]) -> Iterator[Pipeline]:
    observability.metric_buffer("ingest").flush()  # counts held by an earlier test go out now
    pipeline = Pipeline(aws_env)
    pipeline.add_site(SITE)
    yield pipeline
    observability.metric_buffer("ingest").flush()


@pytest.fixture()
def untraced(monkeypatch: pytest.MonkeyPatch) -> None:
    """No correlation id is traced, so every line seen is one the level itself lets through."""
    monkeypatch.setattr(observability, "TRACE_ONE_IN", 2**40)


def printed(run: Any) -> list[dict[str, Any]]:
    with logvolume.captured("INFO") as stream:
        run()
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def pageviews(pipeline: Pipeline, count: int) -> list[dict[str, Any]]:
    for i in range(count):
        page = {"n": "pageview", "u": f"https://{SITE}/p{i}", "d": SITE}
        assert pipeline.send(page, ip=f"10.0.{i // 200}.{i % 200 + 1}").status == 202
    return pipeline.read_stream()


@pytest.mark.parametrize("tier", ["realtime", "rollup"])
@pytest.mark.usefixtures("untraced")
def test_a_batch_of_forty_events_writes_as_many_lines_at_info_as_a_batch_of_one(
    pipeline: Pipeline, tier: str
) -> None:
    # Given 41 events in the stream
    records = pageviews(pipeline, 41)
    invoke = pipeline.tier_fns[tier].invoke
    # When the tier gets them as a batch of one, then as a batch of forty
    one = printed(lambda: invoke({"Records": records[:1]}))
    forty = printed(lambda: invoke({"Records": records[1:]}))
    # Then both batches write the same lines: a summary (and its metrics) or nothing, never a line
    # per event
    assert [line.get("message", "EMF") for line in forty] == [
        line.get("message", "EMF") for line in one
    ]
    assert len(forty) <= 2
    if tier == "rollup":  # the tier that counts each event once always says how a batch went
        (summary,) = [line for line in forty if line.get("message") == "batch processed"]
        assert summary["records"] == 40 and summary["counted"] == 40
        assert summary["tier"] == "rollup" and summary["oldest_record_age_s"] >= 0
    # and a plain batch publishes no metric: what it counted is in its summary (decision 0020)
    assert not [line for line in forty if "_aws" in line]


@pytest.mark.usefixtures("untraced")
def test_a_realtime_batch_with_something_to_say_is_summarised_at_info(pipeline: Pipeline) -> None:
    # Given a batch the realtime tier has already counted
    records = pageviews(pipeline, 2)
    realtime = pipeline.tier_fns["realtime"]
    assert printed(lambda: realtime.invoke({"Records": records})) == []
    # When it is delivered again (a redelivery: duplicates to skip)
    lines = printed(lambda: realtime.invoke({"Records": records}))
    # Then its summary and its duplicates metric are written
    (summary,) = [line for line in lines if line.get("message") == "batch processed"]
    assert summary["duplicates"] == 2 and summary["tier"] == "realtime"
    (emf,) = [line for line in lines if "_aws" in line]
    assert emf["DuplicatesSkipped"] == [2.0]


@pytest.mark.usefixtures("untraced")
def test_ingest_writes_nothing_for_a_plain_accept_and_the_reason_for_a_drop(
    pipeline: Pipeline,
) -> None:
    # Given a pageview of a known site and one of an unknown site
    known = {"n": "pageview", "u": f"https://{SITE}/", "d": SITE}
    unknown = {"n": "pageview", "u": "https://nobody.example/", "d": "nobody.example"}
    # When both are sent
    accepted = printed(lambda: pipeline.send(known))
    dropped = printed(lambda: pipeline.send(unknown))
    # Then the accepted one wrote no line and no metric blob (metrics leave once a minute) ...
    assert accepted == []
    # ... and the dropped one its reason
    (line,) = dropped
    assert line["message"] == "events ingested" and line["dropped"] == ["unknown_site"]


def test_ingest_metrics_leave_as_one_blob_a_minute_with_the_sums(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a buffer on a clock we move
    now = [0.0]
    buffer = observability.MetricBuffer(
        observability.metrics("buffer-test"), interval=60, clock=lambda: now[0]
    )
    # When counts arrive over 59 s, then one more a second later
    for second in range(0, 60, 10):
        now[0] = second
        buffer.add_metric(name="EventsAccepted", value=1)
        buffer.flush_if_due()
    assert capsys.readouterr().out == ""
    now[0] = 60
    buffer.add_metric(name="EventsDropped", value=2)
    buffer.flush_if_due()
    # Then one blob holds the sums
    (blob,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (blob["EventsAccepted"], blob["EventsDropped"]) == ([6.0], [2.0])
    # And nothing is held any more
    buffer.flush_if_due()
    assert capsys.readouterr().out == ""


def test_metric_names_are_few_and_none_is_made_per_value() -> None:
    names = emitted_metrics()
    assert not [name for name in names if name.endswith("*")], names  # no EventsDropped_<reason>
    assert len(names) <= 8, sorted(names)


def test_what_the_functions_print_per_pageview_at_the_default_level_is_within_the_goal(
    pipeline: Pipeline,
) -> None:
    # Given a small site's steady traffic: pageviews, each with its engagement event, realtime
    # batches of one or two records, rollup batches of what its window gathers
    volume = logvolume.measure(pipeline, pageviews=150)
    # Then the functions' own lines and EMF blobs stay within the goal per pageview (5,066 bytes
    # before decision 0021)
    own = {k: v for k, v in volume.bytes.items() if not k.startswith(("platform", "API access"))}
    assert sum(own.values()) / volume.pageviews <= GOAL_BYTES_PER_PAGEVIEW, volume.table()
    # And no line is above INFO's level's own: DEBUG lines are not written at the default level
    assert "DEBUG" not in volume.levels


def test_every_line_a_deployment_pays_for_is_at_most_300_bytes_a_pageview(
    pipeline: Pipeline,
) -> None:
    volume = logvolume.measure(pipeline, pageviews=150)
    assert volume.total_per_pageview() <= GOAL_BYTES_PER_PAGEVIEW, volume.table()


@pytest.mark.usefixtures("untraced")
def test_a_realtime_batch_that_retried_a_transaction_says_so_in_its_summary_not_in_a_metric(
    aws_env: dict[str, str],
) -> None:
    from aggregator.handler import report
    from aggregator.processor import BatchResult

    # Given a realtime batch whose transaction was retried twice (shards contending: frequent)
    result = BatchResult(counted=3, transactions=1, retries=2)
    # When the invocation reports it
    lines = printed(lambda: report([], 0, None, result, "batch-1", rolls_up=False))
    # Then its summary carries the retries at INFO, and no metric is published: one published
    # every hour would cost $0.30 a month (decision 0020)
    (summary,) = [line for line in lines if line.get("message") == "batch processed"]
    assert summary["retries"] == 2
    assert not [line for line in lines if "_aws" in line]
