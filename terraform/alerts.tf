# Alerts (issue 23, decision 0036): the realtime tier records a crossing of a site's rule and
# queues it here; the delivery function posts it to the rule's webhook. Settings from
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
