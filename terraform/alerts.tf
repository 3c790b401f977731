# Alerts (issue 23, decision 0036): the realtime tier records a crossing of a site's rule and
# queues it here (and the minute schedule, decision 0037, the rules no event triggers); the
# delivery function posts it to the rule's webhook. Settings from
# core/schema.json `alert_queue` (the local stack creates the same queues from it).

locals {
  alert_queue = local.schema.alert_queue
}

resource "aws_sqs_queue" "alerts_dlq" {
  name                      = "${local.name}-alerts-dlq"
  message_retention_seconds = local.alert_queue.dlq_message_retention_seconds
  sqs_managed_sse_enabled   = true
}

# A failed webhook's message comes back after a backoff the function sets (ChangeMessageVisibility)
# and, after max_receive_count receives, moves to the dead-letter queue.
resource "aws_sqs_queue" "alerts" {
  name                       = "${local.name}-alerts"
  visibility_timeout_seconds = local.alert_queue.visibility_timeout_seconds
  message_retention_seconds  = local.alert_queue.message_retention_seconds
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.alerts_dlq.arn
    maxReceiveCount     = local.alert_queue.max_receive_count
  })
}

resource "aws_lambda_event_source_mapping" "alerts" {
  event_source_arn                   = aws_sqs_queue.alerts.arn
  function_name                      = aws_lambda_function.this["alerts"].arn
  batch_size                         = local.alert_queue.batch_size
  maximum_batching_window_in_seconds = local.alert_queue.maximum_batching_window_in_seconds
  function_response_types            = local.alert_queue.function_response_types
}

# Off by default: a dead-lettered webhook is a site owner's endpoint failing five times (the
# site's delivery log shows it), and an eleventh alarm metric would pass the always-free ten
# (decision 0026). On: $0.10 a month beyond them.
resource "aws_cloudwatch_metric_alarm" "alerts_dlq_depth" {
  count = var.alerts_dlq_alarm ? 1 : 0

  alarm_name          = "${local.name}-alerts-dlq-depth"
  alarm_description   = "Webhook alerts that failed every attempt are in the alerts' dead-letter queue. See ${local.runbook}, section alerts-dlq-depth."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.alerts_dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# ---- the minute schedule (decision 0037) ------------------------------------------------------

# EventBridge Scheduler, not a scheduled rule: the rules' bill model (bench/terraform_facts.py)
# prices the one scheduled rule as the archive's compaction. 43,200 invocations a month, within
# Scheduler's 14 M free ones ($1 per million past them: $0.04). A run that fails is not retried:
# the next minute's looks at the same rules (a late retry would only look at them late).
resource "aws_scheduler_schedule" "alerts" {
  #checkov:skip=CKV_AWS_297:The schedule holds no data but the function's name (no input payload): a customer-managed key would cost $1/month for nothing.
  name                = "${local.name}-alert-schedule"
  description         = "Every minute: alert rules no event triggers (alerts.schedule.handler)"
  schedule_expression = "rate(1 minute)"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.this["alert_schedule"].arn
    role_arn = aws_iam_role.alert_scheduler.arn

    retry_policy {
      maximum_retry_attempts       = 0
      maximum_event_age_in_seconds = 60
    }
  }
}

# Scheduler's own role: it may invoke this one function, for schedules of this account only.
data "aws_iam_policy_document" "assume_scheduler" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "alert_scheduler" {
  name               = "${local.name}-alert-scheduler"
  assume_role_policy = data.aws_iam_policy_document.assume_scheduler.json
}

data "aws_iam_policy_document" "alert_scheduler" {
  statement {
    sid       = "InvokeSchedule"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this["alert_schedule"].arn]
  }
}

resource "aws_iam_role_policy" "alert_scheduler" {
  name   = "invoke-alert-schedule"
  role   = aws_iam_role.alert_scheduler.id
  policy = data.aws_iam_policy_document.alert_scheduler.json
}
