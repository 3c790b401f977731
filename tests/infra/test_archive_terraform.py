"""The event archive's AWS side, read statically from terraform/ (issue 18, decisions 0027-0030).

Given the HCL, when its archive resources are read, then the bucket is private, encrypted and
TLS-only, its lifecycle backs up the per-site retention, every role reaches only its prefixes of
the bucket with only the calls it makes, compaction runs hourly, and the optional Glue table reads
the same columns as the Parquet layout.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from archive import layout
from imports import store as imports_store
from tests.infra import terraform as tf

BUCKET_ARN = "${aws_s3_bucket.archive.arn}"
EVENTS_OBJECTS = "${aws_s3_bucket.archive.arn}/${local.archive_prefix}*"
QUARANTINE_OBJECTS = "${aws_s3_bucket.archive.arn}/${local.quarantine_prefix}*"
IMPORTS_OBJECTS = "${aws_s3_bucket.archive.arn}/${local.imports_prefix}*"
# Hive's names for the archive's DuckDB column types (archive/layout.py COLUMNS)
HIVE_TYPES = {
    "VARCHAR": "string",
    "BIGINT": "bigint",
    "UBIGINT": "decimal(20,0)",  # Hive has no unsigned type (Parquet UINT_64, as Spark reads it)
    "INTEGER": "int",
    "BOOLEAN": "boolean",
    "MAP(VARCHAR, VARCHAR)": "map<string,string>",
}
MAX_RETENTION_MONTHS = 120


def statements(document: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = tf.data(f"aws_iam_policy_document.{document}")["statement"]
    return found


def function_policies() -> dict[str, str]:
    """{function: policy document name}, from iam.tf's local.policies."""
    return {
        name: re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", ref).group(1)  # type: ignore[union-attr]
        for name, ref in tf.locals_()["policies"].items()
    }


def s3_grants(function: str) -> set[tuple[str, str]]:
    """(action, resource) of every S3 grant in a function's policy."""
    document = function_policies()[function]
    return {
        (action, resource)
        for statement in statements(document)
        for action in statement["actions"]
        if action.startswith("s3:")
        for resource in statement["resources"]
    }


# ---- the bucket -------------------------------------------------------------------------------


def test_archive_bucket_blocks_every_kind_of_public_access() -> None:
    block = tf.resource("aws_s3_bucket_public_access_block.archive")
    assert block["bucket"] == "${aws_s3_bucket.archive.id}"
    for setting in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        assert block[setting] is True, setting
    ownership = tf.resource("aws_s3_bucket_ownership_controls.archive")
    assert ownership["rule"][0]["object_ownership"] == "BucketOwnerEnforced"


def test_archive_bucket_is_encrypted_at_rest() -> None:
    sse = tf.resource("aws_s3_bucket_server_side_encryption_configuration.archive")
    (rule,) = sse["rule"]
    algorithm = rule["apply_server_side_encryption_by_default"][0]["sse_algorithm"]
    assert algorithm in ("AES256", "aws:kms")


def test_archive_bucket_policy_denies_every_request_without_tls() -> None:
    policy = tf.resource("aws_s3_bucket_policy.archive")
    assert policy["policy"] == "${data.aws_iam_policy_document.archive_bucket.json}"
    (deny,) = [s for s in statements("archive_bucket") if s.get("effect") == "Deny"]
    assert deny["actions"] == ["s3:*"]
    assert set(deny["resources"]) == {BUCKET_ARN, f"{BUCKET_ARN}/*"}
    assert deny["principals"] == [{"type": "*", "identifiers": ["*"]}]
    assert deny["condition"] == [
        {"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}
    ]
    # And the policy allows nothing: access comes from the functions' roles only
    assert all(s.get("effect") == "Deny" for s in statements("archive_bucket"))


def lifecycle_rules() -> dict[str, dict[str, Any]]:
    body = tf.resource("aws_s3_bucket_lifecycle_configuration.archive")
    return {rule["id"]: rule for rule in body["rule"]}


def prefix_of(rule: dict[str, Any]) -> str | None:
    (spec,) = rule["filter"]
    prefix = spec.get("prefix") if spec else None
    if prefix is None:
        return None
    value = tf.evaluate(prefix, {"local": tf.locals_()})
    return str(value)


def test_lifecycle_expires_events_after_the_longest_retention_a_site_may_have() -> None:
    # Given the rule over events/ (compaction applies each site's retention; this is the backstop)
    (rule,) = [r for r in lifecycle_rules().values() if prefix_of(r) == "events/"]
    assert rule["status"] == "Enabled"
    days = tf.evaluate(rule["expiration"][0]["days"], {"local": tf.locals_()})
    # Then nothing a site may keep is expired early, and nothing stays much past it
    assert MAX_RETENTION_MONTHS * 365.25 / 12 <= days < MAX_RETENTION_MONTHS * 31


def test_lifecycle_expires_quarantine_and_aborts_incomplete_uploads() -> None:
    rules = list(lifecycle_rules().values())
    (quarantine,) = [r for r in rules if prefix_of(r) == "quarantine/"]
    days = quarantine["expiration"][0]["days"]
    assert days == "${var.archive_quarantine_days}"
    assert 7 <= tf.variables()["archive_quarantine_days"]["default"] <= 90
    (abort,) = [r for r in rules if "abort_incomplete_multipart_upload" in r]
    assert prefix_of(abort) is None  # the whole bucket
    assert abort["abort_incomplete_multipart_upload"][0]["days_after_initiation"] <= 7


def test_archive_prefixes_are_the_layouts() -> None:
    assert tf.locals_()["archive_prefix"] == layout.PREFIX + "/"
    assert tf.locals_()["quarantine_prefix"] == layout.QUARANTINE + "/"
    assert tf.locals_()["imports_prefix"] == imports_store.PREFIX + "/"
    assert layout.quarantine_key("events/a/2026-01-01/x.parquet").startswith("quarantine/")


# ---- IAM: least privilege on the bucket --------------------------------------------------------


def test_no_role_gets_a_wildcard_action_or_the_whole_bucket() -> None:
    for function, document in function_policies().items():
        for statement in statements(document):
            assert statement.get("effect", "Allow") == "Allow"
            for action in statement["actions"]:
                assert "*" not in action, (function, action)
            for resource in statement["resources"]:
                # Objects only under a named prefix: never `<bucket>/*`
                assert resource != f"{BUCKET_ARN}/*", (function, statement["sid"])


def test_aggregator_only_puts_objects_under_events() -> None:
    assert s3_grants("aggregator") == {("s3:PutObject", EVENTS_OBJECTS)}


def test_query_only_reads_events_and_writes_only_imports() -> None:
    # events/ read only, and counters read only: Umami imports, which rewrite both, are the
    # archive function's (decisions 0035, 0039)
    imports = {(a, IMPORTS_OBJECTS) for a in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")}
    assert s3_grants("query") == {
        ("s3:GetObject", EVENTS_OBJECTS),
        ("s3:ListBucket", BUCKET_ARN),
        *imports,
    }
    aggregates = {
        action
        for statement in statements(function_policies()["query"])
        if statement["resources"] == ['${aws_dynamodb_table.this["aggregates"].arn}']
        for action in statement["actions"]
    }
    assert aggregates == {"dynamodb:Query"}


def test_archive_function_reaches_events_quarantine_and_imports_only() -> None:
    objects = {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    expected = {(a, EVENTS_OBJECTS) for a in objects}
    # quarantine/: the copies of unreadable objects written, and deleted past retention; never read
    expected |= {("s3:PutObject", QUARANTINE_OBJECTS), ("s3:DeleteObject", QUARANTINE_OBJECTS)}
    # imports/: Umami imports asked through the admin API (decision 0039)
    expected |= {(a, IMPORTS_OBJECTS) for a in objects}
    assert s3_grants("archive") == expected | {("s3:ListBucket", BUCKET_ARN)}
    # ingest never touches the archive
    assert s3_grants("ingest") == set()


@pytest.mark.parametrize("function", ["query", "archive"])
def test_listing_is_limited_to_the_roles_prefixes(function: str) -> None:
    document = function_policies()[function]
    (listing,) = [s for s in statements(document) if "s3:ListBucket" in s["actions"]]
    assert listing["actions"] == ["s3:ListBucket"]
    (condition,) = listing["condition"]
    assert (condition["test"], condition["variable"]) == ("StringLike", "s3:prefix")
    prefixes = {
        v.replace("${local.archive_prefix}", "events/")
        .replace("${local.quarantine_prefix}", "quarantine/")
        .replace("${local.imports_prefix}", "imports/")
        for v in condition["values"]
    }
    allowed = {"events/*", "imports/*"} | ({"quarantine/*"} if function == "archive" else set())
    assert prefixes == allowed


def test_archive_function_reads_only_the_site_records_of_meta() -> None:
    (sites,) = [
        s
        for s in statements("archive")
        if s["resources"] == ['${aws_dynamodb_table.this["meta"].arn}']
    ]
    assert set(sites["actions"]) <= {"dynamodb:GetItem", "dynamodb:Query"}
    assert sites["resources"] == ['${aws_dynamodb_table.this["meta"].arn}']
    (condition,) = sites["condition"]
    assert condition == {
        "test": "ForAllValues:StringEquals",
        "variable": "dynamodb:LeadingKeys",
        "values": ["SITE"],
    }


def test_archive_function_writes_only_counter_partitions_of_aggregates() -> None:
    """An Umami import rebuilds its days' counters (decision 0039): the counter partitions
    (`C#…`), never the visitor states beside them, and nothing of the events table."""
    dynamo = [
        s for s in statements("archive") if any(a.startswith("dynamodb:") for a in s["actions"])
    ]
    (counters,) = [s for s in dynamo if "aggregates" in s["resources"][0]]
    assert set(counters["actions"]) == {"dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"}
    assert counters["condition"] == [
        {"test": "ForAllValues:StringLike", "variable": "dynamodb:LeadingKeys", "values": ["C#*"]}
    ]
    assert all("events" not in r for s in dynamo for r in s["resources"])


def test_import_requests_are_notified_to_the_archive_function_as_the_local_stack_does() -> None:
    from local import s3_notify

    notification = tf.resource("aws_s3_bucket_notification.archive")
    assert notification["bucket"] == "${aws_s3_bucket.archive.id}"
    (target,) = notification["lambda_function"]
    assert target["lambda_function_arn"] == '${aws_lambda_function.this["archive"].arn}'
    assert target["events"] == ["s3:ObjectCreated:*"]
    assert target["filter_prefix"] == "${local.imports_prefix}"
    assert tf.locals_()["imports_prefix"] == s3_notify.PREFIX
    assert target["filter_suffix"] == s3_notify.SUFFIX
    permission = tf.resource("aws_lambda_permission.import_requests")
    assert permission["principal"] == "s3.amazonaws.com"
    assert permission["source_arn"] == BUCKET_ARN
    assert permission["function_name"] == '${aws_lambda_function.this["archive"].function_name}'


# ---- the functions and the schedule ------------------------------------------------------------


def test_archive_settings_reach_the_functions_that_use_them() -> None:
    functions = tf.locals_()["functions"]
    bucket = "${aws_s3_bucket.archive.bucket}"
    for name in ("aggregator", "query", "archive"):
        assert functions[name]["environment"]["LIVEINSIGHT_ARCHIVE_BUCKET"] == bucket, name
    assert "LIVEINSIGHT_ARCHIVE_BUCKET" not in functions["ingest"]["environment"]
    assert functions["archive"]["handler"] == "archive.handler.handler"


def test_query_gets_its_own_memory_for_duckdb() -> None:
    functions = tf.locals_()["functions"]
    assert functions["query"]["memory_mb"] == "${var.query_memory_mb}"
    # Decision 0029: a 30-day two-filter breakdown at 1 M pageviews a month peaked at 1.3 GB
    assert tf.variables()["query_memory_mb"]["default"] >= 1536
    assert tf.resource("aws_lambda_function.this")["memory_size"] == "${each.value.memory_mb}"


def test_compaction_runs_hourly_on_the_archive_function() -> None:
    rule = tf.resource("aws_cloudwatch_event_rule.compaction")
    assert rule["schedule_expression"] == "rate(1 hour)"
    target = tf.resource("aws_cloudwatch_event_target.compaction")
    assert target["rule"] == "${aws_cloudwatch_event_rule.compaction.name}"
    assert target["arn"] == '${aws_lambda_function.this["archive"].arn}'
    permission = tf.resource("aws_lambda_permission.compaction_schedule")
    assert permission["principal"] == "events.amazonaws.com"
    assert permission["source_arn"] == "${aws_cloudwatch_event_rule.compaction.arn}"


def test_failed_compaction_runs_go_to_the_dead_letter_queue_after_retries() -> None:
    # Given the schedule's asynchronous invocations of the archive function
    config = tf.resource("aws_lambda_function_event_invoke_config.archive")
    assert config["function_name"] == '${aws_lambda_function.this["archive"].function_name}'
    # Then a run is retried, then its failure record goes to the queue dlq-depth watches
    assert 1 <= config["maximum_retry_attempts"] <= 2
    assert config["maximum_event_age_in_seconds"] <= 3600  # the next hour's run supersedes it
    destination = config["destination_config"][0]["on_failure"][0]["destination"]
    assert destination == "${aws_sqs_queue.aggregator_dlq.arn}"
    alarm = tf.resource("aws_cloudwatch_metric_alarm.dlq_depth")
    assert alarm["dimensions"] == {"QueueName": "${aws_sqs_queue.aggregator_dlq.name}"}
    assert "archive" in alarm["alarm_description"]
    # And compaction has no alarm of its own (decision 0026: ten alarm metrics)
    for name, body in tf.blocks("resource").items():
        if name.startswith("aws_cloudwatch_metric_alarm."):
            assert "archive" not in str(body.get("dimensions", "")), name


def test_the_local_stack_retries_a_failed_run_as_often_as_terraform_tells_lambda() -> None:
    from local.async_invoke import MAXIMUM_RETRY_ATTEMPTS

    config = tf.resource("aws_lambda_function_event_invoke_config.archive")
    assert config["maximum_retry_attempts"] == MAXIMUM_RETRY_ATTEMPTS


def test_archive_function_may_send_to_the_dead_letter_queue_only() -> None:
    sends = [s for s in statements("archive") if any(a.startswith("sqs:") for a in s["actions"])]
    (send,) = sends
    assert send["actions"] == ["sqs:SendMessage"]
    assert send["resources"] == ["${aws_sqs_queue.aggregator_dlq.arn}"]
    assert "condition" not in send


def test_the_archive_tiers_iterator_age_alarm_mentions_the_archive() -> None:
    description = tf.resource("aws_cloudwatch_metric_alarm.iterator_age")["alarm_description"]
    assert "archive" in description


# ---- Athena, optional --------------------------------------------------------------------------

ATHENA = (
    "aws_glue_catalog_database.archive",
    "aws_glue_catalog_table.events",
    "aws_athena_workgroup.archive",
)


def test_athena_and_glue_exist_only_when_enabled() -> None:
    assert tf.variables()["athena"]["default"] is False
    for address in ATHENA:
        assert tf.resource(address)["count"] == "${var.athena ? 1 : 0}", address


def test_glue_table_reads_the_layouts_columns() -> None:
    # Given the Glue table's columns and partition keys
    table = tf.resource("aws_glue_catalog_table.events")
    (descriptor,) = table["storage_descriptor"]
    assert tf.dynamic_blocks(descriptor)["columns"]["for_each"] == "${local.archive_columns}"
    columns = [(c["name"], c["type"]) for c in tf.locals_()["archive_columns"]]
    partitions = [(p["name"], p["type"]) for p in table["partition_keys"]]
    # Then they are the Parquet files' columns, site being a partition key (the object's path)
    expected = [(n, HIVE_TYPES[t]) for n, t in layout.COLUMNS if n != "site"]
    assert columns == expected
    assert partitions == [("site", "string"), ("day", "string")]
    assert "ParquetHiveSerDe" in descriptor["ser_de_info"][0]["serialization_library"]


def test_glue_table_projects_site_and_day_onto_the_object_keys() -> None:
    parameters = tf.resource("aws_glue_catalog_table.events")["parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.site.type"] == "injected"  # a query must name its site
    assert parameters["projection.day.type"] == "date"
    assert parameters["projection.day.format"] == "yyyy-MM-dd"
    template = parameters["storage.location.template"]
    # `$${x}` is HCL's escape for a literal ${x}, which Athena fills in
    assert template.endswith("/${local.archive_prefix}$${site}/$${day}/")
    key = layout.part_key("a.example", "2026-03-01", ["e1"]).key
    assert key.startswith("events/a.example/2026-03-01/")


def test_athena_workgroup_is_capped_encrypted_and_writes_where_results_expire() -> None:
    (configuration,) = tf.resource("aws_athena_workgroup.archive")["configuration"]
    assert configuration["enforce_workgroup_configuration"] is True
    assert configuration["bytes_scanned_cutoff_per_query"] == "${var.athena_bytes_scanned_cutoff}"
    (result,) = configuration["result_configuration"]
    assert result["encryption_configuration"][0]["encryption_option"] in ("SSE_S3", "SSE_KMS")
    assert result["output_location"].endswith("/${local.athena_prefix}")
    (rule,) = [
        r for r in lifecycle_rules().values() if prefix_of(r) == tf.locals_()["athena_prefix"]
    ]
    assert rule["expiration"][0]["days"] <= 30


def test_the_query_functions_tmp_holds_its_archive_cache_and_room_to_spill() -> None:
    # A 30-day question at 10 M pageviews a month fetches 686 MB of objects (decision 0030): the
    # cache's budget must fit in /tmp, beside DuckDB's spill, or a big site's question fails.
    from core.settings import QuerySettings

    function = tf.resource("aws_lambda_function.this")
    assert function["ephemeral_storage"] == [{"size": "${lookup(local.tmp_mb, each.key, 512)}"}]
    tmp_mb = tf.locals_()["tmp_mb"]["query"]
    env = tf.locals_()["functions"]["query"]["environment"]
    cache = int(env["LIVEINSIGHT_ARCHIVE_CACHE_BYTES"])
    assert cache > 686 * 10**6
    assert cache + 512 * 2**20 <= tmp_mb * 2**20
    assert QuerySettings.__dataclass_fields__["archive_cache_bytes"].default < cache
