"""The full-bill model (bench/bill.py) follows Terraform: a change that adds a line item or makes
one dearer shows in the bill, and a form it cannot read fails loudly."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from bench import bill, curve, prices, terraform_facts
from bench.bill import FunctionUse, Shape, Usage
from bench.terraform_facts import Unsupported


def _line(service: str, level: str, message: str, **extra: object) -> str:
    record = {"level": level, "message": message, "service": service, "function_name": service}
    return json.dumps({**record, **extra}, separators=(",", ":"))


# What a pageview's functions write: per-event DEBUG lines, per-invocation INFO lines, EMF.
LOG = "\n".join(
    [
        _line("ingest", "DEBUG", "event accepted", event_id="e" * 32, site="a.example"),
        _line("ingest", "INFO", "events ingested", accepted=1),
        '{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"LiveInsight","Dimensions":'
        '[["service"]],"Metrics":[{"Name":"EventsAccepted","Unit":"Count"}]}]},'
        '"service":"ingest","EventsAccepted":[1.0]}',
        _line("aggregator", "DEBUG", "event aggregated", event_id="e" * 32, tier="realtime"),
        _line("aggregator", "INFO", "batch processed", records=1),
        _line("aggregator", "WARNING", "transaction retried", attempt=1),
        "not a JSON line from the local stack",
        _line("local-stack", "INFO", "not a function's"),
    ]
)


def pageview_usage(log: str = LOG) -> Usage:
    return Usage(
        units=10,
        requests={"/api/event": 21},
        bytes_out={"/api/event": 21 * 600},
        bytes_to_origin={"/api/event": 21 * 900},
        functions={
            "ingest": FunctionUse(21, cpu_seconds=0.05, wait_seconds=0.1),
            "aggregator": FunctionUse(8, cpu_seconds=0.04, wait_seconds=0.2),
        },
        write_units={"events": 21, "aggregates": 60},
        failed_write_units={"events": 1},
        read_units={"meta": 2, "aggregates": 10},
        stored_bytes={"events": 21 * 450, "aggregates": 4000},
        logs=bill.parse_log(log, {"ingest", "aggregator", "query"}),
        log_compression=0.2,
    )


def refresh_usage() -> Usage:
    return Usage(
        units=5,
        requests={"/api/realtime/card": 5},
        bytes_out={"/api/realtime/card": 5 * 2000},
        bytes_to_origin={"/api/realtime/card": 5 * 700},
        functions={"query": FunctionUse(5, cpu_seconds=0.02, wait_seconds=0.1)},
        read_units={"aggregates": 20},
        logs=bill.parse_log(
            _line("query", "INFO", "request served"), {"ingest", "aggregator", "query"}
        ),
    )


SHAPE = Shape(static_bytes=2e6)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert re.search(old, text), f"{old!r} not in {path.name}"
    path.write_text(re.sub(old, new, text, count=1))


def month(directory: Path, pageviews: float = 1e6) -> bill.Bill:
    facts = terraform_facts.read(directory)
    return bill.monthly(pageviews, pageview_usage(), refresh_usage(), facts, SHAPE)


ALARM = """
resource "aws_cloudwatch_metric_alarm" "one_more" {
  alarm_name          = "one-more"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
}
"""


def test_one_more_alarm_raises_the_fixed_cost_by_one_alarm_price(tf: Path) -> None:
    # Alarms up to the free tier's ten first, so the one more is billed with the free tier too.
    below = prices.FREE_ALARM_METRICS - terraform_facts.read(tf).alarm_metrics
    (tf / "fill.tf").write_text(
        "".join(ALARM.replace('"one_more"', f'"fill_{n}"') for n in range(max(below, 0)))
    )
    before = month(tf)
    assert terraform_facts.read(tf).alarm_metrics >= prices.FREE_ALARM_METRICS
    (tf / "extra.tf").write_text(ALARM)
    after = month(tf)
    assert after.fixed - before.fixed == pytest.approx(prices.ALARM_METRIC.usd)
    assert after.total_free_tier - before.total_free_tier == pytest.approx(0.10)
    assert after.total - after.fixed == pytest.approx(before.total - before.fixed)


def test_an_alarm_per_for_each_key_counts_each(tf: Path) -> None:
    before = terraform_facts.read(tf).alarm_metrics
    (tf / "extra.tf").write_text(
        ALARM.replace('"one_more" {', '"per_function" {\n  for_each = local.functions')
    )
    functions = len(terraform_facts.read(tf).functions)
    assert terraform_facts.read(tf).alarm_metrics == before + functions


def test_debug_as_the_default_log_level_raises_the_variable_cost(tf: Path) -> None:
    before = month(tf)
    edit(
        tf / "variables.tf",
        r'(variable "log_level" \{[^}]*default\s*=\s*)"INFO"',
        r'\1"DEBUG"',
    )
    facts = terraform_facts.read(tf)
    assert {f.log_level for f in facts.functions.values()} == {"DEBUG"}
    after = month(tf)
    assert after.item("CloudWatch Logs ingestion") > before.item("CloudWatch Logs ingestion")
    assert after.fixed == pytest.approx(before.fixed)


def test_log_bytes_keep_lines_at_or_above_the_level_plus_emf_and_platform_lines() -> None:
    logs = bill.parse_log(LOG, {"ingest", "aggregator"})["ingest"]
    debug_line, info_line, emf_line = LOG.splitlines()[:3]
    platform = sum(len(p) for p in bill.PLATFORM_TEXT)
    lines, size = bill.log_bytes(logs, "INFO", 1, bill.PLATFORM_TEXT)
    assert lines == 1 + 1 + 3
    assert size == len(info_line) + len(emf_line) + platform + 5 * 26
    _, debug = bill.log_bytes(logs, "DEBUG", 1, bill.PLATFORM_TEXT)
    assert debug - size == len(debug_line) + 26
    _, error = bill.log_bytes(logs, "ERROR", 1, ())
    assert error == len(emf_line) + 26  # EMF blobs are written whatever the level


def test_the_deployment_name_prefix_is_added_to_each_function_name_and_arn() -> None:
    bare = bill.parse_log(LOG, {"ingest"})["ingest"].lines_at_or_above("DEBUG")[1]
    named = bill.parse_log(LOG, {"ingest"}, "liveinsight-prod-")["ingest"]
    assert named.lines_at_or_above("DEBUG")[1] == bare + 2 * len("liveinsight-prod-")


def test_more_memory_raises_the_lambda_cost(tf: Path) -> None:
    before = month(tf)
    edit(
        tf / "variables.tf",
        r'(variable "lambda_memory_mb" \{[^}]*default\s*=\s*)256',
        r"\g<1>2048",
    )
    memory = {k: f.memory_mb for k, f in terraform_facts.read(tf).functions.items()}
    assert memory["ingest"] == memory["aggregator"] == 2048
    after = month(tf)
    assert after.item("Lambda duration") > before.item("Lambda duration")


def test_cpu_measured_on_a_full_core_is_billed_longer_below_1769_mb() -> None:
    use = FunctionUse(invocations=0, cpu_seconds=1.0, wait_seconds=0.5)
    assert bill.billed_seconds(use, 256) == pytest.approx(1769 / 256 + 0.5)
    assert bill.billed_seconds(use, 3008) == pytest.approx(1.5)


HTTP_API = """
resource "aws_apigatewayv2_api" "http" {
  name          = "api"
  protocol_type = "HTTP"
}

resource "aws_cloudwatch_log_group" "api_access" {
  name              = "/aws/apigateway/api"
  retention_in_days = var.log_retention_days
}

resource "aws_apigatewayv2_stage" "default" {
  api_id = aws_apigatewayv2_api.http.id
  name   = "$default"
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId = "$context.requestId"
      routeKey  = "$context.routeKey"
      status    = "$context.status"
    })
  }
}

locals {
  api_origin_host = replace(aws_apigatewayv2_api.http.api_endpoint, "https://", "")
}
"""


def test_the_deployed_front_door_bills_no_http_api(tf: Path) -> None:
    # Given the deployment as it is: CloudFront in front of the functions' URLs (decision 0023)
    facts = terraform_facts.read(tf)
    assert not facts.http_api and facts.function_urls == 2
    for path in ("/api/event", "/api/realtime/card"):
        assert facts.route(path).cloudfront and facts.route(path).origin == "function_url"
    # Then the bill has a function URL line at $0 and neither the HTTP API nor its access log
    names = [i.name for i in month(tf).items]
    assert "HTTP API requests" not in names
    assert "CloudWatch Logs ingestion: API access log" not in names
    assert month(tf).item("Lambda function URL requests") == 0


def test_an_http_api_in_front_again_brings_its_line_items_back(tf: Path) -> None:
    before = month(tf)
    # When CloudFront's /api origins are an HTTP API with an access log instead
    (tf / "http_api.tf").write_text(HTTP_API)
    for function in ("ingest", "query"):
        edit(tf / "cdn.tf", rf'local\.function_url_hosts\["{function}"\]', "local.api_origin_host")
    facts = terraform_facts.read(tf)
    assert facts.http_api
    assert facts.route("/api/event").origin == "http_api"
    # Then the model counts its requests and access log lines
    after = month(tf)
    assert after.item("HTTP API requests") > 0
    assert after.total > before.total


def test_the_curve_rises_with_traffic_and_idle_is_the_fixed_items() -> None:
    facts = terraform_facts.read()
    points = curve.points(
        {0.4: pageview_usage(), 4.0: pageview_usage()}, refresh_usage(), facts, SHAPE
    )
    totals = [p.bill.total for p in points]
    assert totals == sorted(totals) and len(set(totals)) == len(totals)
    assert points[0].bill.total == pytest.approx(points[0].bill.fixed)
    assert [p.pageviews for p in points] == [0, *curve.VOLUMES]
    assert "archive" in points[-1].bill.scope and "free tier" in points[-1].bill.scope


def test_curve_table_has_the_peers_published_figures() -> None:
    facts = terraform_facts.read()
    table = curve.markdown(curve.points({0.4: pageview_usage()}, refresh_usage(), facts, SHAPE))
    assert "$14.64" in table and "$1,288.39" in table
    assert "$69" in table and "custom (enterprise) price" in table


def test_an_unreadable_expression_fails_loudly(tf: Path) -> None:
    edit(
        tf / "lambda.tf",
        r"memory_size\s*=\s*each\.value\.memory_mb",
        "memory_size = max(each.value.memory_mb, 128)",
    )
    with pytest.raises(Unsupported, match="max"):
        terraform_facts.read(tf)


def test_a_resource_type_without_a_price_rule_fails_loudly(tf: Path) -> None:
    (tf / "extra.tf").write_text('resource "aws_nat_gateway" "x" {\n  subnet_id = "s"\n}\n')
    with pytest.raises(Unsupported, match="aws_nat_gateway"):
        terraform_facts.read(tf)


def test_provisioned_concurrency_is_a_fixed_cost(tf: Path) -> None:
    before = month(tf)
    (tf / "extra.tf").write_text(
        'resource "aws_lambda_provisioned_concurrency_config" "ingest" {\n'
        '  function_name                     = aws_lambda_function.this["ingest"].function_name\n'
        "  provisioned_concurrent_executions = 1\n"
        '  qualifier                         = "live"\n}\n'
    )
    after = month(tf)
    gb = terraform_facts.read(tf).functions["ingest"].memory_mb / 1024
    expected = gb * prices.SECONDS_PER_MONTH * prices.LAMBDA_PROVISIONED_GB_SECOND_ARM.usd
    assert after.fixed - before.fixed == pytest.approx(expected)


def test_the_event_archive_adds_its_requests_storage_and_compaction_to_the_bill(tf: Path) -> None:
    # Given the bill with the archive (terraform/archive.tf) and without it
    with_archive = month(tf)
    (tf / "archive.tf").unlink()
    without = month(tf)
    # Then the archive's S3 lines and its compaction runs are what the archive adds
    assert terraform_facts.read(tf).archive is None
    added = with_archive.total - without.total
    assert added > 0
    assert with_archive.item("S3 archive") > 0 and without.item("S3 archive") == 0
    assert with_archive.fixed > without.fixed  # hourly runs, traffic or not
    assert "archive: none" in without.scope and "bytes an event" in with_archive.scope


def test_archive_storage_and_writes_grow_with_traffic() -> None:
    facts = terraform_facts.read()
    small = bill.monthly(1e6, pageview_usage(), refresh_usage(), facts, SHAPE)
    large = bill.monthly(1e8, pageview_usage(), refresh_usage(), facts, SHAPE)
    storage = [b.item("S3 archive: storage") for b in (small, large)]
    assert storage[1] == pytest.approx(100 * storage[0])
    # At 1 M pageviews a month the batches close on their window (a PUT a shard a window); at
    # 100 M they fill first (a PUT per 1,000 events)
    events = 1e8 * SHAPE.events_per_pageview()
    assert bill.archive_puts(events, facts, SHAPE) == pytest.approx(events / 1000)
    windows = prices.SECONDS_PER_MONTH / 300 * SHAPE.stream_shards
    assert bill.archive_puts(1e6 * SHAPE.events_per_pageview(), facts, SHAPE) == windows


def test_a_scheduled_rule_the_bill_cannot_read_fails_loudly(tf: Path) -> None:
    edit(tf / "archive.tf", r"rate\(1 hour\)", "cron(0 * * * ? *)")
    with pytest.raises(Unsupported, match="cron"):
        terraform_facts.read(tf)


def test_athena_queries_are_billed_only_when_athena_is_enabled(tf: Path) -> None:
    shape = Shape(static_bytes=2e6, athena_queries=1000, athena_bytes_per_query=1024**3)
    facts = terraform_facts.read(tf)
    assert facts.archive is not None and not facts.archive.athena
    off = bill.monthly(1e6, pageview_usage(), refresh_usage(), facts, shape)
    edit(tf / "variables.tf", r'(variable "athena" \{[^}]*default\s*=\s*)false', r"\g<1>true")
    on = bill.monthly(1e6, pageview_usage(), refresh_usage(), terraform_facts.read(tf), shape)
    assert off.item("Athena") == 0
    assert on.item("Athena") == pytest.approx(1000 / 1024 * prices.ATHENA_SCANNED.usd)


def test_the_alerts_minute_schedule_is_priced_traffic_or_not(tf: Path) -> None:
    # Given the deployed schedule: a run a minute, through EventBridge Scheduler
    facts = terraform_facts.read(tf)
    assert facts.scheduled_runs["alert_schedule"] == pytest.approx(prices.SECONDS_PER_MONTH / 60)
    every_minute = bill.idle(pageview_usage(), refresh_usage(), facts, SHAPE)
    # When it runs every 10 minutes instead
    edit(tf / "alerts.tf", r"rate\(1 minute\)", "rate(10 minutes)")
    slower = bill.idle(pageview_usage(), refresh_usage(), terraform_facts.read(tf), SHAPE)
    # Then idle costs less: fewer invocations, fewer reads, fewer Scheduler invocations
    assert slower.total < every_minute.total
    assert slower.item("Lambda requests") == pytest.approx(
        every_minute.item("Lambda requests") / 10
    )
    assert every_minute.item("EventBridge Scheduler") == pytest.approx(
        prices.SECONDS_PER_MONTH / 60 * prices.EVENTBRIDGE_SCHEDULER_INVOCATION.usd
    )


def test_turning_email_on_adds_the_hourly_reports_runs(tf: Path) -> None:
    before = terraform_facts.read(tf)
    assert "reports" not in before.scheduled_runs  # off by default: no schedule
    edit(
        tf / "variables.tf",
        r'(variable "email_from" \{[^}]*default\s*=\s*)""',
        r'\1"reports@stats.example.com"',
    )
    after = terraform_facts.read(tf)
    assert after.scheduled_runs["reports"] == pytest.approx(prices.HOURS_PER_MONTH)
    idle = [bill.idle(pageview_usage(), refresh_usage(), f, SHAPE) for f in (before, after)]
    assert idle[1].item("Scheduled runs: reports") > 0 == idle[0].item("Scheduled runs: reports")
    assert idle[1].total > idle[0].total


def test_a_sites_alert_rules_and_reports_add_reads_deliveries_and_mail() -> None:
    facts = terraform_facts.read()
    without = bill.monthly(1e6, pageview_usage(), refresh_usage(), facts, SHAPE)
    use = bill.AlertUse()
    with_rules = bill.monthly(
        1e6, pageview_usage(), refresh_usage(), facts, replace(SHAPE, alerts=use)
    )
    assert with_rules.total > without.total
    assert without.item("SES") == 0
    mails = (prices.DAYS_PER_MONTH / 7 + 1) * use.report_recipients + use.messages
    assert with_rules.item("SES") == pytest.approx(mails * prices.SES_EMAIL.usd)
    # The stream rules read with each realtime batch: more batches, more reads
    meta = [b.item("DynamoDB requests: meta") for b in (without, with_rules)]
    assert meta[1] > meta[0]
    quiet = bill.monthly(
        1e6,
        pageview_usage(),
        refresh_usage(),
        facts,
        replace(SHAPE, alerts=replace(use, stream_rules=False)),
    )
    assert quiet.item("DynamoDB requests: meta") < meta[1]
    assert "drop" in with_rules.scope and "no rule, no report" in without.scope


def test_an_spa_visit_sends_its_engagement_with_the_next_pageview_and_keeps_the_mix() -> None:
    # Given the bill run's traffic plan for a site of full page loads and for an SPA where half
    # the pageviews are in-app navigations (decision 0041)
    from bench.bill_run import plan

    seconds = 20_000.0
    full = plan(0.4, seconds, Shape(), seed=3)
    spa = plan(0.4, seconds, replace(Shape(), spa_share=0.5), seed=3)

    def pageviews_at(events: list[tuple[float, dict]]) -> list[tuple[float, dict]]:
        return [(at, body) for at, body in events if body["n"] == "pageview"]

    def pageviews(events: list[tuple[float, dict]]) -> list[dict]:
        return [body for _, body in pageviews_at(events)]

    # Then both send pageviews at the rate, each with one engagement (on its own or carried) ...
    for events in (full, spa):
        assert len(pageviews(events)) / seconds == pytest.approx(0.4, rel=0.05)
        engagements = sum(body["n"] == "engagement" or "l" in body for _, body in events)
        assert engagements == pytest.approx(len(pageviews(events)), rel=0.01)
    # ... the SPA's carried by about half its pageviews, each the page its visitor just left ...
    carried = [body for body in pageviews(spa) if "l" in body]
    assert len(carried) / len(pageviews(spa)) == pytest.approx(0.5, abs=0.03)
    assert not any("l" in body for body in pageviews(full))
    shown: dict[tuple[str, str], list[float]] = {}
    for at, body in pageviews_at(spa):
        shown.setdefault((body["ip"], body["u"]), []).append(at)
    for at, body in pageviews_at(spa):
        if "l" in body:  # left after e ms on it: the visitor's pageview e ms before this one
            assert set(body["l"]) == {"u", "sd", "e"}
            left_at = at - body["l"]["e"] / 1000
            assert any(abs(t - left_at) < 0.002 for t in shown[(body["ip"], body["l"]["u"])])
    # ... so it sends a quarter fewer requests for the same events
    assert len(spa) / len(pageviews(spa)) < 0.8 * len(full) / len(pageviews(full))


def test_a_refresh_costs_what_the_realtime_window_of_the_volume_holds() -> None:
    # Given refreshes measured on a quiet site (nothing in its 30-minute window) and on a busy
    # one with 2,700 pageviews there, 4 times the reads and 10 times the waiting
    quiet = replace(
        refresh_usage(),
        units=10,
        functions={"query": FunctionUse(10, cpu_seconds=0.02, wait_seconds=0.2)},
        read_units={"aggregates": 20, "meta": 10},
    )
    busy = replace(
        refresh_usage(),
        functions={"query": FunctionUse(5, cpu_seconds=0.05, wait_seconds=1.0)},
        read_units={"aggregates": 40, "meta": 5},
    )
    window = 2700.0
    busy_volume = window / bill.REALTIME_WINDOW_SECONDS * prices.SECONDS_PER_MONTH

    def per_refresh(volume: float) -> tuple[float, float, float]:
        usage = bill.refresh_at(volume, quiet, busy, window)
        query = usage.functions["query"]
        n = usage.units
        return query.wait_seconds / n, usage.read_units["aggregates"] / n, query.invocations / n

    # Then an idle volume costs the quiet refresh, the busy one's volume the busy refresh ...
    assert per_refresh(0) == pytest.approx((0.02, 2.0, 1.0))
    assert per_refresh(busy_volume) == pytest.approx((0.2, 8.0, 1.0))
    # ... a volume between lies between, and a larger one goes on along the same line
    assert per_refresh(busy_volume / 2) == pytest.approx((0.11, 5.0, 1.0))
    assert per_refresh(busy_volume * 10) == pytest.approx((1.82, 62.0, 1.0))
    # ... and the bill's query line follows: a tab on a quiet site costs less than on a busy one
    facts = terraform_facts.read()
    small, large = (
        bill.monthly(v, pageview_usage(), bill.refresh_at(v, quiet, busy, window), facts, SHAPE)
        for v in (1e4, 1e8)
    )
    assert small.item("Lambda duration: query") < large.item("Lambda duration: query") / 10
