"""Terraform checked statically: it parses, and it agrees with the code it deploys.

Given the HCL in terraform/ and the code (core/schema.json, core/settings.py, the handlers),
when both are read, then tables, the event source mapping, handlers, environments, routes and
security headers are the same on both sides.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from core import edge, settings
from core.schema import create_table_request, load_schema
from local.front import INGEST_PATHS, SECURITY_HEADERS
from scripts.package import FUNCTIONS
from tests.infra import terraform as tf

ESM_SCOPE = {"local": {"esm": tf.SCHEMA["event_source_mapping"]}}


def table_scope(logical: str) -> dict[str, Any]:
    defaults = {name: v.get("default") for name, v in tf.variables().items()}
    return {"each": {"key": logical, "value": tf.SCHEMA["tables"][logical]}, "var": defaults}


def rendered_table(logical: str) -> dict[str, Any]:
    """The events/aggregates/meta table as Terraform would create it from the schema."""
    body = tf.resource("aws_dynamodb_table.this")
    scope = table_scope(logical)
    rendered = {
        attr: tf.evaluate(value, scope)
        for attr, value in body.items()
        if attr not in {"dynamic", "point_in_time_recovery", "for_each", "name"}
    }
    for name, spec in tf.dynamic_blocks(body).items():
        rendered[name] = tf.render_dynamic(spec, name, scope)
    rendered["point_in_time_recovery"] = tf.evaluate(
        body["point_in_time_recovery"][0]["enabled"], scope
    )
    return rendered


# ---- parsing --------------------------------------------------------------------------------


def test_every_terraform_file_parses() -> None:
    files = tf.parsed_files()
    assert {"versions.tf", "variables.tf", "outputs.tf", "dynamodb.tf", "lambda.tf"} <= set(files)
    assert all(doc for doc in files.values())


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform binary not installed")
def test_terraform_files_are_formatted() -> None:
    # `terraform fmt` needs no provider, so it runs offline where the binary exists.
    done = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-list=true", str(tf.TERRAFORM)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"not formatted: {done.stdout}"


def test_aws_provider_is_pinned_to_major_version_6_from_6_29() -> None:
    # 6.29 added aws_lambda_permission's invoked_via_function_url (decision 0023)
    (block,) = [b for doc in tf.parsed_files().values() for b in doc.get("terraform", [])]
    providers = block["required_providers"][0]
    version = providers["aws"]["version"]
    m = re.fullmatch(r"~> 6\.(\d+)", version)
    assert m and int(m.group(1)) >= 29, version
    assert providers["aws"]["source"] == "hashicorp/aws"


def test_variables_have_sensible_defaults() -> None:
    variables = tf.variables()
    for name in ("region", "environment", "project_name", "domain", "alarm_email"):
        assert name in variables, name
        assert "default" in variables[name], f"{name} needs a default"
    assert variables["project_name"]["default"] == "liveinsight"


def test_outputs_give_dashboard_api_and_tracker_snippet() -> None:
    outputs = tf.outputs()
    assert {"dashboard_url", "api_url", "tracker_snippet"} <= set(outputs)
    assert "/js/script.js" in outputs["tracker_snippet"]["value"]
    assert "data-domain" in outputs["tracker_snippet"]["value"]


# ---- tables ---------------------------------------------------------------------------------


def test_terraform_reads_the_schema_source() -> None:
    assert tf.locals_()["schema"] == '${jsondecode(file("${path.module}/../core/schema.json"))}'
    assert tf.resource("aws_dynamodb_table.this")["for_each"] == "${local.stored_tables}"
    # keyed by each table's stored name (decision 0040): its physical_suffix, or its logical name
    assert tf.locals_()["table_keys"] == (
        "${{for logical, table in local.schema.tables : "
        "logical => try(table.physical_suffix, logical)}}"
    )
    assert tf.locals_()["stored_tables"] == (
        "${{for logical, table in local.schema.tables : local.table_keys[logical] => table}}"
    )


@pytest.mark.parametrize("logical", sorted(tf.SCHEMA["tables"]))
def test_table_matches_what_the_local_stack_creates(logical: str) -> None:
    # Given the table the local stack and the tests create from the same schema (core/schema.py)
    table = load_schema().tables[logical]
    local = create_table_request(table, "name", with_stream=True)
    # When Terraform's table is rendered from the schema
    aws = rendered_table(logical)
    # Then keys, attributes, indexes, stream, TTL and billing agree
    key_schema = [{"AttributeName": aws["hash_key"], "KeyType": "HASH"}]
    if aws["range_key"]:
        key_schema.append({"AttributeName": aws["range_key"], "KeyType": "RANGE"})
    assert key_schema == local["KeySchema"]
    assert [
        {"AttributeName": a["name"], "AttributeType": a["type"]} for a in aws["attribute"]
    ] == local["AttributeDefinitions"]
    indexes = [
        {
            "IndexName": i["name"],
            "KeySchema": [{"AttributeName": i["hash_key"], "KeyType": "HASH"}]
            + ([{"AttributeName": i["range_key"], "KeyType": "RANGE"}] if i["range_key"] else []),
            "Projection": {"ProjectionType": i["projection_type"]},
        }
        for i in aws["global_secondary_index"]
    ]
    assert indexes == local.get("GlobalSecondaryIndexes", [])
    stream = local.get("StreamSpecification")
    assert aws["stream_enabled"] is (stream is not None)
    assert aws["stream_view_type"] == (stream["StreamViewType"] if stream else None)
    assert aws["ttl"] == (
        [{"attribute_name": table.ttl_attribute, "enabled": True}] if table.ttl_attribute else []
    )
    assert aws["billing_mode"] == local["BillingMode"] == "PAY_PER_REQUEST"
    assert aws["point_in_time_recovery"] is tf.SCHEMA["tables"][logical]["point_in_time_recovery"]


def test_aggregates_have_point_in_time_recovery_and_the_events_table_a_stream() -> None:
    assert rendered_table("aggregates")["point_in_time_recovery"] is True
    assert rendered_table("events")["stream_view_type"] == "NEW_IMAGE"


def test_no_table_or_mapping_setting_is_hard_coded() -> None:
    # Every key name, index, TTL attribute, stream view and mapping setting in the schema must
    # reach AWS through jsondecode(), never as a literal in the HCL.
    literals: set[str] = set()
    for table in tf.SCHEMA["tables"].values():
        literals |= set(table["attributes"]) | {table["hash_key"]}
        literals |= {table.get("range_key"), table.get("ttl_attribute")} - {None}
        literals |= {table["stream_view_type"]} - {None}
        literals |= {i["name"] for i in table["global_secondary_indexes"]}
    esm = tf.SCHEMA["event_source_mapping"]
    literals |= {esm["starting_position"]}
    for tier in tf.SCHEMA["aggregator_tiers"].values():
        literals |= set(tier["filter_pattern"]["eventName"])
    literals |= set(esm["function_response_types"])
    text = tf.all_text()
    # `dynamic "ttl"` names the Terraform block, not the attribute.
    text = text.replace('dynamic "ttl"', "dynamic ttl_block")
    found = sorted(lit for lit in literals if f'"{lit}"' in text)
    assert found == [], f"hard-coded in terraform/: {found}"


# ---- the event source mapping ---------------------------------------------------------------

ESM_ATTRIBUTES = {
    "starting_position": "starting_position",
    "bisect_batch_on_function_error": "bisect_batch_on_function_error",
    "maximum_retry_attempts": "maximum_retry_attempts",
    "maximum_record_age_in_seconds": "maximum_record_age_in_seconds",
    "function_response_types": "function_response_types",
    "parallelization_factor": "parallelization_factor",
}
TIER_ATTRIBUTES = ("batch_size", "maximum_batching_window_in_seconds")


def test_every_event_source_mapping_setting_comes_from_the_schema() -> None:
    esm = tf.resource("aws_lambda_event_source_mapping.aggregator")
    schema = tf.SCHEMA["event_source_mapping"]
    assert esm["for_each"] == "${local.aggregator_mappings}"  # a tier's on each stream
    assert tf.locals_()["aggregator_tiers"] == "${local.schema.aggregator_tiers}"
    for attr, key in ESM_ATTRIBUTES.items():
        assert esm[attr] == f"${{local.esm.{key}}}", attr
        assert tf.evaluate(esm[attr], ESM_SCOPE) == schema[key]
    # Batch size, window and filter pattern are each tier's own.
    (pattern,) = [f["pattern"] for c in esm["filter_criteria"] for f in c["filter"]]
    for tier, tier_settings in tf.SCHEMA["aggregator_tiers"].items():
        mapping = {**tier_settings, "tier": tier, "source": "events"}
        scope = {**ESM_SCOPE, "each": {"key": f"{tier}/events", "value": mapping}}
        for attr in TIER_ATTRIBUTES:
            assert esm[attr] == f"${{each.value.{attr}}}", attr
            assert tf.evaluate(esm[attr], scope) == tier_settings[attr]
        assert json.loads(tf.evaluate(pattern, scope)) == tier_settings["filter_pattern"]
    assert esm["event_source_arn"] == "${local.event_stream_arns[each.value.source]}"
    # Every setting in the schema block is used by the mappings.
    used = set(ESM_ATTRIBUTES.values()) | {"source_table"}
    assert set(schema) == used


def test_each_tier_is_an_alias_of_the_published_aggregator() -> None:
    esm = tf.resource("aws_lambda_event_source_mapping.aggregator")
    alias = tf.resource("aws_lambda_alias.aggregator")
    assert esm["function_name"] == "${aws_lambda_alias.aggregator[each.value.tier].arn}"
    assert alias["for_each"] == "${local.aggregator_tiers}"
    assert alias["name"] == "${each.key}"  # the handler reads its tier from the alias
    assert alias["function_name"] == '${aws_lambda_function.this["aggregator"].function_name}'
    assert alias["function_version"] == '${aws_lambda_function.this["aggregator"].version}'
    assert tf.resource("aws_lambda_function.this")["publish"] == '${each.key == "aggregator"}'
    assert set(tf.SCHEMA["aggregator_tiers"]) == set(load_schema().tiers) == {"realtime", "rollup"}


def test_the_tiers_write_every_granularity_once() -> None:
    from core.keys import Granularity

    written = [g for tier in load_schema().tiers.values() for g in tier.granularities]
    assert sorted(written) == sorted(g.value for g in Granularity)
    assert load_schema().tiers["realtime"].granularities == (Granularity.MINUTE.value,)


def test_each_tier_has_an_iterator_age_alarm_that_leaves_room_for_its_own_window() -> None:
    # One alarm per tier, on the tier's alias: the rollup tier's records wait up to its window
    # (300 s) by design, while a realtime tier minutes behind must not hide under that
    alarm = tf.resource("aws_cloudwatch_metric_alarm.iterator_age")
    assert alarm["for_each"] == "${local.aggregator_tiers}"
    function = '${aws_lambda_function.this["aggregator"].function_name}'
    assert alarm["dimensions"] == {
        "FunctionName": function,
        "Resource": f"{function}:${{each.key}}",
    }
    assert alarm["threshold"] == (
        "${(var.iterator_age_alarm_seconds + each.value.maximum_batching_window_in_seconds) * 1000}"
    )
    margin = tf.variables()["iterator_age_alarm_seconds"]["default"]
    windows = [t.esm.maximum_batching_window_in_seconds for t in load_schema().tiers.values()]
    assert margin >= 60 and max(windows) + margin < load_schema().esm.maximum_record_age_in_seconds


def test_failed_batches_go_to_the_sqs_dead_letter_queue() -> None:
    esm = tf.resource("aws_lambda_event_source_mapping.aggregator")
    destination = esm["destination_config"][0]["on_failure"][0]["destination_arn"]
    assert destination == "${aws_sqs_queue.aggregator_dlq.arn}"
    assert "aws_sqs_queue.aggregator_dlq" in tf.blocks("resource")


def test_the_local_poller_reads_the_same_settings_as_terraform() -> None:
    schema = tf.SCHEMA["event_source_mapping"]
    for name, tier in load_schema().tiers.items():
        local = tier.esm
        assert local.batch_size == tf.SCHEMA["aggregator_tiers"][name]["batch_size"]
        assert (
            local.maximum_batching_window_in_seconds
            == (tf.SCHEMA["aggregator_tiers"][name]["maximum_batching_window_in_seconds"])
        )
        assert local.maximum_retry_attempts == schema["maximum_retry_attempts"]
        assert local.maximum_record_age_in_seconds == schema["maximum_record_age_in_seconds"]
        assert local.filter_pattern == tf.SCHEMA["aggregator_tiers"][name]["filter_pattern"]


# ---- functions ------------------------------------------------------------------------------


def terraform_functions() -> dict[str, dict[str, Any]]:
    functions: dict[str, dict[str, Any]] = tf.locals_()["functions"]
    return functions


def test_terraform_deploys_the_functions_make_package_builds() -> None:
    functions = terraform_functions()
    assert set(functions) == set(FUNCTIONS)
    for name, function in functions.items():
        assert function["handler"] == FUNCTIONS[name].handler
    body = tf.resource("aws_lambda_function.this")
    assert body["runtime"] == "python3.11"
    assert body["architectures"] == ["arm64"]
    assert body["filename"] == "${local.package_dir}/${each.key}.zip"
    assert tf.locals_()["package_dir"] == "${path.module}/../build/lambda"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_handler_path_resolves_to_a_real_function(name: str) -> None:
    module_name, _, attr = terraform_functions()[name]["handler"].rpartition(".")
    assert module_name.split(".")[0] in FUNCTIONS[name].packages
    handler = getattr(importlib.import_module(module_name), attr)
    assert callable(handler)


def settings_class_of(name: str) -> type[Any]:
    """The settings class the function's own package (its handler's) loads
    (`settings.load(settings.X)`); a package it shares with another function (archive) loads that
    one's."""
    found = set()
    package = FUNCTIONS[name].handler.split(".")[0]
    for path in (tf.REPO / package).rglob("*.py"):
        found |= set(re.findall(r"settings\.load\(settings\.(\w+)\)", path.read_text()))
    assert len(found) == 1, f"{name} loads {found}"
    cls: type[Any] = getattr(settings, found.pop())
    return cls


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_required_setting_is_set_in_the_function_environment(name: str) -> None:
    cls = settings_class_of(name)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = {
        settings.PREFIX + f.name.upper()
        for f in fields.values()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    environment = terraform_functions()[name]["environment"]
    assert required <= set(environment), f"missing: {sorted(required - set(environment))}"
    known = {settings.PREFIX + f.upper() for f in fields}
    assert set(environment) <= known, f"not read by the code: {set(environment) - known}"
    for var, value in environment.items():
        if m := re.fullmatch(r"LIVEINSIGHT_(\w+)_TABLE", var):
            assert value == f'${{local.tables["{m.group(1).lower()}"]}}', var


def test_powertools_environment_is_set_for_every_function() -> None:
    (env,) = tf.resource("aws_lambda_function.this")["environment"]
    variables = env["variables"]
    assert "POWERTOOLS_SERVICE_NAME = each.key" in variables
    assert 'POWERTOOLS_METRICS_NAMESPACE = "LiveInsight"' in variables
    assert "POWERTOOLS_LOG_LEVEL = var.log_level" in variables
    assert variables.endswith("each.value.environment)}")


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_powertools_service_name_is_the_one_the_code_logs_with(name: str) -> None:
    module = FUNCTIONS[name].handler.rpartition(".")[0]
    source = (tf.REPO / Path(*module.split("."))).with_suffix(".py").read_text()
    assert re.findall(r'logger\("(\w+)"\)', source) == [name]


def test_log_groups_have_retention() -> None:
    groups = [a for a in tf.blocks("resource") if a.startswith("aws_cloudwatch_log_group.")]
    assert groups == ["aws_cloudwatch_log_group.lambda"]  # no API access log (decision 0023)
    for address in groups:
        assert tf.resource(address)["retention_in_days"] == "${var.log_retention_days}"
    assert (
        tf.resource("aws_cloudwatch_log_group.lambda")["name"]
        == "/aws/lambda/${local.name}-${each.key}"
    )


# ---- the front door: CloudFront and the function URLs ---------------------------------------


def test_ingest_paths_are_the_ones_the_local_front_routes_to_ingest() -> None:
    assert tuple(tf.locals_()["ingest_paths"]) == INGEST_PATHS


def test_no_api_gateway_remains() -> None:
    # Decision 0023: function URLs behind CloudFront; the HTTP API, its access log and the
    # execute-api endpoint's custom domain are gone, and so are the variables that set them
    api_gateway = [
        a for kind in ("resource", "data") for a in tf.blocks(kind) if "aws_apigateway" in a
    ]
    assert api_gateway == []
    assert "aws_apigateway" not in tf.all_text() and "AWS/ApiGateway" not in tf.all_text()
    gone = {"ingest_throttle", "query_throttle", "api_origin_domain", "api_origin_zone_id"}
    assert not gone & set(tf.variables())
    assert "api_origin_target" not in tf.outputs()


def test_reserved_concurrency_is_optional_for_ingest_and_query() -> None:
    # New accounts have a concurrency quota of 10 and no reservation is possible: none by default
    variables = tf.variables()
    for name in ("ingest_reserved_concurrency", "query_reserved_concurrency"):
        assert variables[name]["default"] == -1, name
        (validation,) = variables[name]["validation"]
        assert f"var.{name} == -1" in validation["condition"], name
    function = tf.resource("aws_lambda_function.this")
    assert function["reserved_concurrent_executions"] == (
        "${lookup(local.reserved_concurrency, each.key, -1)}"
    )
    assert tf.locals_()["reserved_concurrency"] == {
        "ingest": "${var.ingest_reserved_concurrency}",
        "query": "${var.query_reserved_concurrency}",
    }


def api_behaviors() -> list[dict[str, Any]]:
    """The distribution's /api behaviors in CloudFront's order, the dynamic one rendered."""
    distribution = tf.resource("aws_cloudfront_distribution.this")
    spec = tf.dynamic_blocks(distribution)["ordered_cache_behavior"]
    assert spec["for_each"] == "${local.ingest_paths}"
    (content,) = spec["content"]
    assert content["path_pattern"] == "${ordered_cache_behavior.value}"
    ingest = [
        {**content, "path_pattern": path, "dynamic": True} for path in tf.locals_()["ingest_paths"]
    ]
    # A dynamic block's blocks stand where it is written among the static ones
    source = (tf.TERRAFORM / "cdn.tf").read_text()
    assert source.index('dynamic "ordered_cache_behavior"') < source.index('"/api/*"')
    static = [b for b in distribution["ordered_cache_behavior"] if b["path_pattern"] == "/api/*"]
    return [*ingest, *static]


def first_match(behaviors: list[dict[str, Any]], path: str) -> dict[str, Any]:
    return next(b for b in behaviors if fnmatch.fnmatchcase(path, b["path_pattern"]))


@pytest.mark.parametrize("path", INGEST_PATHS)
def test_every_ingest_path_goes_to_the_ingest_url_with_the_origin_secret(path: str) -> None:
    # Given CloudFront's behaviors, first match wins
    behavior = first_match(api_behaviors(), path)
    # Then an ingest path reaches the ingest function's URL, which carries the origin secret
    assert behavior["path_pattern"] == path
    assert behavior["target_origin_id"] == "ingest"
    distribution = tf.resource("aws_cloudfront_distribution.this")
    (origin,) = [o for o in distribution["origin"] if o["origin_id"] == "ingest"]
    assert origin["domain_name"] == '${local.function_url_hosts["ingest"]}'
    assert origin["custom_origin_config"][0]["origin_protocol_policy"] == "https-only"
    ((header,),) = [origin["custom_header"]]
    assert header == {"name": "X-LiveInsight-Origin", "value": "${local.origin_secret}"}
    assert "POST" in behavior["allowed_methods"] and "OPTIONS" in behavior["allowed_methods"]


def test_other_api_paths_go_to_the_query_url() -> None:
    behaviors = api_behaviors()
    for path in ("/api/realtime", "/api/v1/stats/aggregate", "/api/auth/login"):
        assert first_match(behaviors, path)["target_origin_id"] == "query", path
    distribution = tf.resource("aws_cloudfront_distribution.this")
    (origin,) = [o for o in distribution["origin"] if o["origin_id"] == "query"]
    assert origin["domain_name"] == '${local.function_url_hosts["query"]}'
    assert tf.locals_()["function_url_hosts"] == (
        "${{for key, url in aws_lambda_function_url.this : key => "
        'replace(replace(url.function_url, "https://", ""), "/", "")}}'
    )


# What CloudFront's managed origin request policies forward (CloudFront Developer Guide, "Use
# managed origin request policies", 2026-12): a function URL answers 403 to a foreign Host, and
# the functions need the viewer's address and country headers.
MANAGED_ORIGIN_REQUEST_POLICIES = {
    "Managed-AllViewer": {"host"},
    "Managed-AllViewerAndCloudFrontHeaders-2022-06": {
        "host",
        edge.VIEWER_ADDRESS,
        edge.VIEWER_COUNTRY,
    },
    "Managed-AllViewerExceptHostHeader": {edge.VIEWER_ADDRESS, edge.VIEWER_COUNTRY},
    "Managed-UserAgentRefererHeaders": set(),
}


# CloudFront's viewer headers finer than a city: never forwarded, so never stored or logged.
TOO_PRECISE = {
    "cloudfront-viewer-latitude",
    "cloudfront-viewer-longitude",
    "cloudfront-viewer-postal-code",
    "cloudfront-viewer-metro-code",
    "cloudfront-viewer-time-zone",
}


def _forwarded_headers() -> dict[str, set[str]]:
    """origin_request_policy_id → the headers the policy forwards (lower-case): a managed
    policy's as documented, ours as its whitelist says."""
    forwarded = {
        f"${{data.aws_cloudfront_origin_request_policy.{name}.id}}": (
            MANAGED_ORIGIN_REQUEST_POLICIES[body["name"]]
        )
        for name, body in (
            (a.split(".", 1)[1], b)
            for a, b in tf.blocks("data").items()
            if a.startswith("aws_cloudfront_origin_request_policy.")
        )
    }
    for address, body in tf.blocks("resource").items():
        if address.startswith("aws_cloudfront_origin_request_policy."):
            (config,) = body["headers_config"]
            assert config["header_behavior"] == "whitelist"  # "all viewer" ones forward Host
            (headers,) = config["headers"]
            forwarded[f"${{{address}.id}}"] = {h.lower() for h in headers["items"]}
    return forwarded


def test_api_requests_are_never_cached_and_forward_the_country_but_not_host() -> None:
    policies = _forwarded_headers()
    for behavior in api_behaviors():
        assert behavior["cache_policy_id"] == "${data.aws_cloudfront_cache_policy.disabled.id}"
        forwarded = policies[behavior["origin_request_policy_id"]]
        assert edge.VIEWER_COUNTRY in forwarded and edge.VIEWER_ADDRESS in forwarded
        assert "host" not in forwarded
        assert not forwarded & TOO_PRECISE
        assert behavior["viewer_protocol_policy"] == "https-only"  # a redirect loses a POST body
    assert tf.data("aws_cloudfront_cache_policy.disabled")["name"] == "Managed-CachingDisabled"


def test_ingest_gets_the_viewers_region_city_and_user_agent() -> None:
    # Given the policy the ingest paths' behaviors use
    policies = _forwarded_headers()
    for behavior in (b for b in api_behaviors() if b.get("dynamic")):
        forwarded = policies[behavior["origin_request_policy_id"]]
        # Then ingest sees the subdivision and the city (ingest/geo.py), and the viewer's own
        # user agent (without it CloudFront sends its own and every visitor hashes alike)
        assert {edge.VIEWER_REGION, edge.VIEWER_CITY, "user-agent", "content-type"} <= forwarded


def test_security_headers_are_the_local_fronts() -> None:
    csp = tf.locals_()["content_security_policy"]
    assert csp == SECURITY_HEADERS["content-security-policy"]
    config = tf.resource("aws_cloudfront_response_headers_policy.security")[
        "security_headers_config"
    ][0]
    assert config["content_security_policy"][0]["content_security_policy"] == (
        "${local.content_security_policy}"
    )
    assert config["frame_options"][0]["frame_option"] == SECURITY_HEADERS["x-frame-options"]
    assert config["referrer_policy"][0]["referrer_policy"] == SECURITY_HEADERS["referrer-policy"]
    assert config["strict_transport_security"][0]["access_control_max_age_sec"] >= 31536000


def test_api_is_routed_uncached_and_static_assets_cached() -> None:
    distribution = tf.resource("aws_cloudfront_distribution.this")
    behaviors = {b["path_pattern"]: b for b in distribution["ordered_cache_behavior"]}
    api = behaviors["/api/*"]
    assert api["target_origin_id"] == "query"
    assert api["cache_policy_id"] == "${data.aws_cloudfront_cache_policy.disabled.id}"
    assert tf.data("aws_cloudfront_cache_policy.disabled")["name"] == "Managed-CachingDisabled"
    assert "POST" in api["allowed_methods"]
    default = distribution["default_cache_behavior"][0]
    assert default["target_origin_id"] == "static"
    assert default["cache_policy_id"] == "${aws_cloudfront_cache_policy.static.id}"
    assert tf.resource("aws_cloudfront_cache_policy.static")["max_ttl"] > 0
    (static_origin,) = [o for o in distribution["origin"] if o["origin_id"] == "static"]
    assert "origin_access_control_id" in static_origin
    block = tf.resource("aws_s3_bucket_public_access_block.static")
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy"))


# ---- alarms and metrics ---------------------------------------------------------------------

ALARMS = {
    "aws_cloudwatch_metric_alarm.iterator_age": "stream-iterator-age",
    "aws_cloudwatch_metric_alarm.dlq_depth": "dlq-depth",
    "aws_cloudwatch_metric_alarm.lambda_throttles": "throttles",
    "aws_cloudwatch_metric_alarm.api_5xx_rate": "api-5xx-rate",
    "aws_cloudwatch_metric_alarm.accepted_events_drop": "accepted-events-drop",
}


@pytest.mark.parametrize("address", sorted(ALARMS))
def test_every_alarm_notifies_sns_and_has_a_runbook_section(address: str) -> None:
    alarm = tf.resource(address)
    assert alarm["alarm_actions"] == "${local.alarm_actions}"
    section = ALARMS[address]
    assert f"section {section}." in alarm["alarm_description"]
    runbook = (tf.REPO / "RUNBOOK.md").read_text()
    assert re.search(rf"^## .*\(`{re.escape(section)}`\)$", runbook, re.M), section


def emitted_metrics() -> set[str]:
    """Metric names the code emits (`add_metric(name=...)`); f-strings end in `*`."""
    names: set[str] = set()
    for package in ("ingest", "aggregator", "query_api", "core"):
        for path in (tf.REPO / package).rglob("*.py"):
            for literal in re.findall(r'add_metric\(\s*name=(f?"[^"]+")', path.read_text()):
                text = literal.lstrip("f").strip('"')
                names.add(re.sub(r"\{[^}]*\}.*", "*", text))
    return names


def test_alarms_and_dashboard_use_only_metrics_the_code_emits() -> None:
    emitted = emitted_metrics()
    text = (tf.TERRAFORM / "monitoring.tf").read_text() + (
        tf.TERRAFORM / "dashboard.tf"
    ).read_text()
    used = set(re.findall(r'"LiveInsight", "(\w+)"', text))
    used |= set(re.findall(r'metric_name = "(\w+)"\s+dimensions\s+= \{ service', text))
    used |= {m + "*" for m in re.findall(r"MetricName=(\w+_)'", text)}
    assert used, "no custom metric found"
    assert used <= emitted, f"not emitted by the code: {sorted(used - emitted)}"
    for needed in ("EventsAccepted", "EventsDropped", "DuplicatesSkipped"):
        assert needed in used, needed
    # Events counted and transaction retries are summed from the batches' summary lines
    assert "filter message = 'batch processed' | stats sum(counted" in text
    assert "sum(retries) as retries" in text
