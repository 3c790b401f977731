# Alarms (each one has a section in RUNBOOK.md with the same name) and the CloudWatch dashboard.
# Custom metrics are Powertools EMF lines: namespace LiveInsight, dimension service=<function>;
# few names, each published only when it has a value to say (decision 0021): ingest flushes its
# counts once a minute per warm instance, the rollup tier once a batch.

resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed aws/sns key, and a CMK ($1/month) for alarm names and states protects nothing secret.
  name = "${local.name}-alarms"
}

resource "aws_sns_topic_subscription" "email" {
  count = var.alarm_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]
  runbook       = "RUNBOOK.md in the LiveInsight repository"
}

# No alarm on the aggregator's Errors (decision 0026, amended for the archive): a batch that
# raises is retried, so its tier falls behind (stream-iterator-age), and one that keeps raising
# ends in the dead-letter queue (dlq-depth). Both page; an Errors alarm only paged sooner, for
# the $0.10 a month an idle deployment needs for the archive's upkeep to stay within $1.

# One per tier (alias): a tier's records wait up to its batching window by design, so each alarms
# at that window plus iterator_age_alarm_seconds (tests/infra) and realtime stays watched closely.
resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  for_each          = local.aggregator_tiers
  alarm_name        = "${local.name}-stream-iterator-age-${each.key}"
  alarm_description = "The aggregator's ${each.key} tier is more than ${var.iterator_age_alarm_seconds} s behind the events stream beyond its ${each.value.maximum_batching_window_in_seconds} s window: ${each.key == "realtime" ? "realtime numbers" : "the dashboard's ranges and the event archive (written from this tier's batches)"} are stale. See ${local.runbook}, section stream-iterator-age."
  namespace         = "AWS/Lambda"
  metric_name       = "IteratorAge"
  dimensions = {
    FunctionName = aws_lambda_function.this["aggregator"].function_name
    Resource     = "${aws_lambda_function.this["aggregator"].function_name}:${each.key}"
  }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = (var.iterator_age_alarm_seconds + each.value.maximum_batching_window_in_seconds) * 1000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# The archive's hourly compaction has no alarm of its own (decision 0026: an eleventh alarm metric
# would pass the free ten): a run that still fails after Lambda's retries goes to the
# dead-letter queue (archive.tf, aws_lambda_function_event_invoke_config.archive) and pages here.
resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  alarm_name          = "${local.name}-dlq-depth"
  alarm_description   = "The dead-letter queue holds stream records the aggregator gave up on (not counted nor archived yet) or archive compaction runs that failed after their retries (small objects pile up, retention may not be applied). See ${local.runbook}, section dlq-depth."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.aggregator_dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# One account-level metric (Throttles with no dimension: every function in the account and
# region) instead of one alarm per function and one per DynamoDB table (decision 0026: 9 alarm
# metrics to 1, $0.90 a month). Lambda throttles when the account's concurrency is used up,
# which is what this alarm is for, whichever function hit it first. DynamoDB throttles page
# through the alarms of what they break: ingest and query requests fail (api-5xx-rate), the
# aggregator's batches stop and its tier falls behind (stream-iterator-age); a burst that heals
# itself before then needs nobody.
resource "aws_cloudwatch_metric_alarm" "lambda_throttles" {
  alarm_name          = "${local.name}-lambda-throttles"
  alarm_description   = "Lambda throttled invocations in this account and region (concurrency exhausted): ingest, aggregator or query may be refused. See ${local.runbook}, section throttles."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  alarm_name          = "${local.name}-api-5xx-rate"
  alarm_description   = "More than ${var.api_5xx_alarm_percent}% of function URL requests (ingest and query) failed with a 5xx (at least 20 requests in 5 minutes). See ${local.runbook}, section api-5xx-rate."
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  threshold           = var.api_5xx_alarm_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  # Ingest's and query's function URLs together (decision 0023): one series per function.
  metric_query {
    id          = "rate"
    expression  = "IF(requests >= 20, 100 * (FILL(errors_ingest, 0) + FILL(errors_query, 0)) / requests, 0)"
    label       = "5xx %"
    return_data = true
  }
  metric_query {
    id         = "requests"
    expression = "FILL(requests_ingest, 0) + FILL(requests_query, 0)"
  }
  metric_query {
    id = "errors_ingest"
    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Url5xxCount"
      dimensions  = { FunctionName = aws_lambda_function.this["ingest"].function_name }
      stat        = "Sum"
      period      = 300
    }
  }
  metric_query {
    id = "errors_query"
    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Url5xxCount"
      dimensions  = { FunctionName = aws_lambda_function.this["query"].function_name }
      stat        = "Sum"
      period      = 300
    }
  }
  metric_query {
    id = "requests_ingest"
    metric {
      namespace   = "AWS/Lambda"
      metric_name = "UrlRequestCount"
      dimensions  = { FunctionName = aws_lambda_function.this["ingest"].function_name }
      stat        = "Sum"
      period      = 300
    }
  }
  metric_query {
    id = "requests_query"
    metric {
      namespace   = "AWS/Lambda"
      metric_name = "UrlRequestCount"
      dimensions  = { FunctionName = aws_lambda_function.this["query"].function_name }
      stat        = "Sum"
      period      = 300
    }
  }
}

# Accepted events stopped: none in an hour. Silence breaches (missing data): a tracker that
# stopped sending is the failure that matters most, and the only one no other alarm sees. One
# alarm metric, where CloudWatch's anomaly band billed 3 (decision 0026): the band also caught
# partial drops, but needed two weeks of history and paged small sites on every quiet quarter
# hour; a partial drop shows in EventsDropped and the dashboard's drop reasons.
resource "aws_cloudwatch_metric_alarm" "accepted_events_drop" {
  alarm_name          = "${local.name}-accepted-events-drop"
  alarm_description   = "No accepted events for an hour: trackers stopped sending, or ingest drops or refuses everything. See ${local.runbook}, section accepted-events-drop."
  namespace           = "LiveInsight"
  metric_name         = "EventsAccepted"
  dimensions          = { service = "ingest" }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
