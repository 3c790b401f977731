"""An idle deployment (no visitor, no open tab) costs at most $1 a month, by the bill model read
from terraform/ (decision 0026): alarms within the always-free ten alarm metrics, the CloudWatch
dashboard only when asked for, and the event archive's hourly upkeep (under a cent)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import bill, prices, terraform_facts
from bench.bill import Shape, Usage
from tests.infra import terraform as tf


def idle(directory: Path = terraform_facts.TERRAFORM) -> bill.Bill:
    """Fixed items only: no run needed, an idle month multiplies every measured usage by 0."""
    facts = terraform_facts.read(directory)
    return bill.idle(Usage(units=0), Usage(units=0), facts, Shape())


def test_an_idle_month_costs_at_most_a_dollar_without_the_free_tier() -> None:
    month = idle()
    assert month.total <= 1.00, [(i.name, i.usd) for i in month.items if i.usd]
    assert month.total == pytest.approx(month.fixed)


def test_alarms_stay_within_the_always_free_alarm_metrics() -> None:
    facts = terraform_facts.read()
    assert facts.alarm_metrics <= prices.FREE_ALARM_METRICS
    month = idle()
    # With the free tier, an idle month pays only the archive's hourly upkeep (its S3 listings,
    # decision 0026's amendment) and the alert schedule's read a minute (on-demand reads have no
    # free tier, decision 0037): about a cent together; every other fixed item is free.
    paid = {i.name: i.usd_free_tier for i in month.items if i.usd_free_tier}
    assert set(paid) <= {
        "Archive compaction runs (requests, listings, waiting)",
        "Scheduled runs: alert_schedule",
    }, paid
    assert month.total_free_tier < 0.02


def test_the_dashboard_is_off_by_default_and_costs_its_price_when_on(tf: Path) -> None:
    before = idle(tf)
    assert terraform_facts.read(tf).dashboards == 0
    variables = tf / "variables.tf"
    text = variables.read_text()
    block = re.search(r'variable "cloudwatch_dashboard" \{.*?\n\}', text, re.S)
    assert block is not None
    variables.write_text(text.replace(block.group(0), block.group(0).replace("false", "true")))
    assert terraform_facts.read(tf).dashboards == 1
    after = idle(tf)
    assert after.total - before.total == pytest.approx(prices.DASHBOARD.usd)
    # Within the account's three always-free dashboards.
    assert after.total_free_tier == pytest.approx(before.total_free_tier)


def test_a_non_boolean_condition_fails_loudly(tf: Path) -> None:
    dashboard = tf / "dashboard.tf"
    dashboard.write_text(
        dashboard.read_text().replace("var.cloudwatch_dashboard ?", "var.log_level ?")
    )
    with pytest.raises(terraform_facts.Unsupported, match="not a bool"):
        terraform_facts.read(tf)


def test_one_lambda_throttles_alarm_watches_every_function_in_the_account() -> None:
    # Throttles without a dimension is Lambda's account-level sum: ingest, aggregator, query and
    # any function added later, at the price of one alarm metric.
    alarm = tf.resource("aws_cloudwatch_metric_alarm.lambda_throttles")
    assert alarm["namespace"] == "AWS/Lambda" and alarm["metric_name"] == "Throttles"
    assert "dimensions" not in alarm and "for_each" not in alarm and "count" not in alarm


def test_browsers_keep_the_tracker_a_day_so_a_returning_visitor_costs_no_fetch() -> None:
    # A tracker fetch is a CloudFront request: S3's 5 minutes made every visit gap one more.
    policy = tf.resource("aws_cloudfront_response_headers_policy.tracker")
    headers = {
        item["header"].lower(): item
        for config in policy.get("custom_headers_config", [])
        for item in config["items"]
    }
    cache = headers["cache-control"]
    assert cache["override"] is True
    match = re.search(r"\bmax-age=(\d+)", cache["value"])
    assert match and int(match.group(1)) >= 86400
