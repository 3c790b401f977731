locals {
  fn = { for key, f in aws_lambda_function.this : key => f.function_name }

  dashboard_widgets = [
    {
      type = "metric", x = 0, y = 0, width = 12, height = 6
      properties = {
        title  = "Ingest: events accepted, duplicates, invalid, dropped"
        region = var.region
        stat   = "Sum"
        period = 60
        metrics = [
          ["LiveInsight", "EventsAccepted", "service", "ingest"],
          ["LiveInsight", "EventsDuplicate", "service", "ingest"],
          ["LiveInsight", "EventsInvalid", "service", "ingest"],
          ["LiveInsight", "EventsDropped", "service", "ingest"],
        ]
      }
    },
    {
      # One EventsDropped metric, not one per reason (decision 0021): the reasons are in the
      # ingest log's "events ingested" lines, every drop has one.
      type = "log", x = 12, y = 0, width = 12, height = 6
      properties = {
        title  = "Ingest: events dropped, by reason (log)"
        region = var.region
        query  = "SOURCE '${aws_cloudwatch_log_group.lambda["ingest"].name}' | filter message = 'events ingested' and ispresent(dropped.0) | stats count(*) as requests by dropped.0, bin(5m)"
        view   = "timeSeries"
      }
    },
    {
      type = "metric", x = 0, y = 6, width = 12, height = 6
      properties = {
        title  = "Aggregator: duplicates skipped, malformed records"
        region = var.region
        stat   = "Sum"
        period = 60
        metrics = [
          ["LiveInsight", "DuplicatesSkipped", "service", "aggregator"],
          ["LiveInsight", "MalformedRecords", "service", "aggregator"],
        ]
      }
    },
    {
      type = "metric", x = 12, y = 6, width = 12, height = 6
      properties = {
        title  = "Freshness: stream iterator age of each tier (ms)"
        region = var.region
        stat   = "Maximum"
        period = 60
        # Lambda's own IteratorAge per alias: free, where a BatchAgeSeconds metric cost $0.30 a month.
        metrics = [
          for tier in keys(local.aggregator_tiers) :
          ["AWS/Lambda", "IteratorAge", "FunctionName", local.fn["aggregator"], "Resource", "${local.fn["aggregator"]}:${tier}", { label = tier }]
        ]
      }
    },
    {
      type = "metric", x = 0, y = 12, width = 8, height = 6
      properties = {
        title  = "Lambda errors and throttles"
        region = var.region
        stat   = "Sum"
        period = 60
        metrics = concat(
          [for key, name in local.fn : ["AWS/Lambda", "Errors", "FunctionName", name, { label = "${key} errors" }]],
          [for key, name in local.fn : ["AWS/Lambda", "Throttles", "FunctionName", name, { label = "${key} throttles" }]],
        )
      }
    },
    {
      type = "metric", x = 8, y = 12, width = 8, height = 6
      properties = {
        title   = "Lambda duration p95 (ms)"
        region  = var.region
        stat    = "p95"
        period  = 60
        metrics = [for key, name in local.fn : ["AWS/Lambda", "Duration", "FunctionName", name, { label = key }]]
      }
    },
    {
      type = "metric", x = 16, y = 12, width = 8, height = 6
      properties = {
        title  = "Dead-letter queue depth"
        region = var.region
        stat   = "Maximum"
        period = 60
        metrics = [
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.aggregator_dlq.name],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 18, width = 12, height = 6
      properties = {
        title  = "API (function URLs): requests, 4xx, 5xx"
        region = var.region
        stat   = "Sum"
        period = 60
        metrics = concat(
          [for key in ["ingest", "query"] : ["AWS/Lambda", "UrlRequestCount", "FunctionName", aws_lambda_function.this[key].function_name, { label = "${key} requests" }]],
          [for key in ["ingest", "query"] : ["AWS/Lambda", "Url4xxCount", "FunctionName", aws_lambda_function.this[key].function_name, { label = "${key} 4xx" }]],
          [for key in ["ingest", "query"] : ["AWS/Lambda", "Url5xxCount", "FunctionName", aws_lambda_function.this[key].function_name, { label = "${key} 5xx" }]],
        )
      }
    },
    {
      type = "metric", x = 12, y = 18, width = 12, height = 6
      properties = {
        title  = "DynamoDB: consumed write units and throttle events"
        region = var.region
        stat   = "Sum"
        period = 60
        metrics = concat(
          [for key, t in aws_dynamodb_table.this : ["AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", t.name, { label = "${key} WCU" }]],
          [for key, t in aws_dynamodb_table.this : ["AWS/DynamoDB", "WriteThrottleEvents", "TableName", t.name, { label = "${key} write throttles" }]],
        )
      }
    },
    {
      # Events counted (each tier counts each event once) and transaction retries from the
      # batches' summaries, not metrics: published every hour, each would cost $0.30 a month for
      # a number that pages nobody (decision 0020).
      type = "log", x = 0, y = 30, width = 24, height = 6
      properties = {
        title  = "Aggregator: events counted, transaction retries (log)"
        region = var.region
        query  = "SOURCE '${aws_cloudwatch_log_group.lambda["aggregator"].name}' | filter message = 'batch processed' | stats sum(counted) as counted, sum(retries) as retries by tier, bin(5m)"
        view   = "timeSeries"
      }
    },
    {
      type = "log", x = 0, y = 24, width = 24, height = 6
      properties = {
        title  = "Warnings and errors (all functions)"
        region = var.region
        query  = "SOURCE '${aws_cloudwatch_log_group.lambda["ingest"].name}' | SOURCE '${aws_cloudwatch_log_group.lambda["aggregator"].name}' | SOURCE '${aws_cloudwatch_log_group.lambda["query"].name}' | fields @timestamp, service, level, message, correlation_id, failed_sequence_number | filter level in ['WARNING', 'ERROR', 'CRITICAL'] | sort @timestamp desc | limit 50"
        view   = "table"
      }
    },
  ]
}

# Optional (decision 0026): $3 a month beyond the account's three always-free dashboards, three
# times the rest of an idle month. Alarms page without it, and each widget's metric or query is
# in RUNBOOK.md.
resource "aws_cloudwatch_dashboard" "this" {
  count = var.cloudwatch_dashboard ? 1 : 0

  dashboard_name = local.name
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
