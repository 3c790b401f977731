resource "aws_cloudwatch_log_group" "lambda" {
  #checkov:skip=CKV_AWS_158:Encrypted with CloudWatch Logs' own key; the lines hold no personal data (no IP, no user agent: tests/infra checks every line), so a $1/month CMK per log group buys nothing.
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days (30 days by default): operational logs only, and keeping less is the privacy-friendly default.
  for_each = local.functions

  name              = "/aws/lambda/${local.name}-${each.key}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:No VPC: the functions only call DynamoDB's public, IAM-authenticated endpoint, and a VPC would need NAT or endpoints (a fixed monthly cost) for nothing.
  #checkov:skip=CKV_AWS_116:Ingest and query are invoked synchronously through their function URLs, the aggregator by the event source mapping (on-failure destination: the SQS dead-letter queue); archive (compaction) and reports are invoked asynchronously, by their hourly schedules, and their failed runs go to the same SQS queue through an on-failure destination (aws_lambda_function_event_invoke_config.archive and .reports), which carries the error where a DLQ would carry only the event; alerts reads an SQS queue that has its own dead-letter queue; alert_schedule's runs are not retried (the next minute's looks again).
  #checkov:skip=CKV_AWS_115:Reserved concurrency is optional (ingest_reserved_concurrency, query_reserved_concurrency, none by default): new accounts have a concurrency quota of 10 and AWS refuses a reservation that leaves fewer than 10 unreserved; the aggregator's concurrency is one per shard (parallelization_factor).
  #checkov:skip=CKV_AWS_173:The environment holds only table names, the public URL, SSM parameter names, SHA-256 digests of the origin secret and Powertools settings, no secrets; the sign-in secrets live in SSM SecureString parameters, read by the function.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile and a signed S3 upload; the zips are reproducible from the locked requirements and built by `make package` in the deploying account's pipeline.
  #checkov:skip=CKV_AWS_50:X-Ray is off: the code has no tracer, and one trace per ingest call would cost about half of our per-pageview budget. Correlation ids in the JSON logs follow an event end to end (RUNBOOK.md).
  for_each = local.functions

  function_name    = "${local.name}-${each.key}"
  description      = each.value.description
  role             = aws_iam_role.lambda[each.key].arn
  runtime          = "python3.11"
  architectures    = ["arm64"]
  handler          = each.value.handler
  filename         = "${local.package_dir}/${each.key}.zip"
  source_code_hash = filebase64sha256("${local.package_dir}/${each.key}.zip")
  memory_size      = each.value.memory_mb
  timeout          = each.value.timeout
  # /tmp: Lambda's 512 MB unless a function needs more (locals.tf, tmp_mb).
  ephemeral_storage {
    size = lookup(local.tmp_mb, each.key, 512)
  }
  # The aggregator's tiers are aliases of a published version (decision 0010).
  publish = each.key == "aggregator"
  # Behind function URLs nothing sheds a flood before Lambda: a reservation caps ingest and query
  # (and guarantees them that much), so a flood on one cannot starve the others. -1: unreserved.
  reserved_concurrent_executions = lookup(local.reserved_concurrency, each.key, -1)

  environment {
    variables = merge(
      {
        POWERTOOLS_SERVICE_NAME      = each.key
        POWERTOOLS_METRICS_NAMESPACE = "LiveInsight"
        POWERTOOLS_LOG_LEVEL         = var.log_level
      },
      each.value.environment,
    )
  }

  logging_config {
    # Powertools writes one JSON object per line already, and Lambda does not encode it again.
    # System logs at WARN: no START/END/REPORT lines (~920 bytes a pageview, decision 0021).
    # For an investigation, turn them on without a deploy: RUNBOOK.md, "Timeouts and memory".
    # Lambda also filters application lines (a line without a level, like an EMF blob, is INFO):
    # at INFO, or DEBUG when Powertools logs DEBUG; Powertools applies stricter levels itself.
    log_format            = "JSON"
    system_log_level      = "WARN"
    application_log_level = var.log_level == "DEBUG" ? "DEBUG" : "INFO"
    log_group             = aws_cloudwatch_log_group.lambda[each.key].name
  }

  # Not after the distribution, which names the functions' URLs: the functions accept the origin
  # secret generations on both sides of a rotation instead (secrets.tf).
  depends_on = [aws_iam_role_policy.lambda]
}

# One alias per aggregator tier: the handler reads its tier from the alias it was invoked through.
resource "aws_lambda_alias" "aggregator" {
  for_each = local.aggregator_tiers

  name             = each.key
  description      = "aggregator tier ${each.key}: counters of granularities ${join(", ", each.value.granularities)}"
  function_name    = aws_lambda_function.this["aggregator"].function_name
  function_version = aws_lambda_function.this["aggregator"].version
}

locals {
  # The streams the tiers read: the events table's, and the legacy events table's until it has
  # drained (decision 0040, var.drain_legacy_events).
  event_stream_arns = merge(
    { events = aws_dynamodb_table.this[local.table_keys[local.esm.source_table]].stream_arn },
    { for table in aws_dynamodb_table.legacy_events : "legacy_events" => table.stream_arn },
  )
  # One mapping per tier and stream, "<tier>/<stream>", every one with its tier's settings.
  aggregator_mappings = merge([
    for source in concat(["events"], var.drain_legacy_events ? ["legacy_events"] : []) : {
      for tier, settings in local.aggregator_tiers : "${tier}/${source}" => merge(settings, { tier = tier, source = source })
    }
  ]...)
}

# Each tier reads each stream (two readers per shard, DynamoDB's recommended maximum) with every
# setting from core/schema.json: its own batch size and batching window.
resource "aws_lambda_event_source_mapping" "aggregator" {
  for_each = local.aggregator_mappings

  event_source_arn                   = local.event_stream_arns[each.value.source]
  function_name                      = aws_lambda_alias.aggregator[each.value.tier].arn
  starting_position                  = local.esm.starting_position
  batch_size                         = each.value.batch_size
  maximum_batching_window_in_seconds = each.value.maximum_batching_window_in_seconds
  bisect_batch_on_function_error     = local.esm.bisect_batch_on_function_error
  maximum_retry_attempts             = local.esm.maximum_retry_attempts
  maximum_record_age_in_seconds      = local.esm.maximum_record_age_in_seconds
  function_response_types            = local.esm.function_response_types
  parallelization_factor             = local.esm.parallelization_factor

  # The tier's pattern from core/schema.json: new items only, and for the realtime tier no
  # engagement events (it counts nothing from them; a filtered record costs no invocation).
  filter_criteria {
    filter {
      pattern = jsonencode(each.value.filter_pattern)
    }
  }

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.aggregator_dlq.arn
    }
  }
}

# The mappings deployed before decision 0040 read the table that is now the legacy one: they stay
# on it, with their checkpoints, instead of being replaced.
moved {
  from = aws_lambda_event_source_mapping.aggregator["realtime"]
  to   = aws_lambda_event_source_mapping.aggregator["realtime/legacy_events"]
}

moved {
  from = aws_lambda_event_source_mapping.aggregator["rollup"]
  to   = aws_lambda_event_source_mapping.aggregator["rollup/legacy_events"]
}

# The dead-letter queue of both: batches the aggregator gave up on (retries or record age
# exhausted; Lambda sends metadata only, the shard and sequence range, and `liveinsight dlq
# replay` reads the records back from the stream, 24 h retention, or from the events table,
# 7 days), and the archive function's failed compaction runs (the scheduled event and the error:
# replay invokes the function again). The name stays: renaming would replace the queue.
# See RUNBOOK.md, dlq-depth.
resource "aws_sqs_queue" "aggregator_dlq" {
  name                      = "${local.name}-aggregator-dlq"
  message_retention_seconds = 1209600 # 14 days, SQS's maximum
  sqs_managed_sse_enabled   = true
}
