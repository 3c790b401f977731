# Email (issue 23, decision 0038): weekly and monthly reports, and alert emails, sent through SES
# from var.email_from. Its domain is an SES identity signed with Easy DKIM; the DNS records to add
# are in the `email_dns_records` output. Without var.email_from none of this exists: no identity,
# no SES grant, no reports schedule (the reports function stays, idle: it costs nothing uninvoked).

locals {
  email        = var.email_from != ""
  email_domain = local.email ? split("@", var.email_from)[1] : ""
  # Bounces come back to this subdomain (its MX), so SPF aligns with the From domain for DMARC;
  # until its records exist SES falls back to its own MAIL FROM (DKIM still aligns).
  email_mail_from_domain = local.email ? "bounce.${local.email_domain}" : ""
}

resource "aws_sesv2_email_identity" "email" {
  count = var.email_from != "" ? 1 : 0

  email_identity = local.email_domain
  dkim_signing_attributes {
    next_signing_key_length = "RSA_2048_BIT"
  }
}

resource "aws_sesv2_email_identity_mail_from_attributes" "email" {
  count = var.email_from != "" ? 1 : 0

  email_identity         = aws_sesv2_email_identity.email[0].email_identity
  mail_from_domain       = local.email_mail_from_domain
  behavior_on_mx_failure = "USE_DEFAULT_VALUE"
}

# Sending, for the two functions that send: only from var.email_from, only through its identity.
# SES v2 SendEmail with Content.Raw (core/mail.py) is authorized as ses:SendEmail, and AWS also
# checks ses:SendRawEmail for raw content. A policy of its own, so the functions' main policies
# (iam.tf) stay the same whether email is on or off.
data "aws_iam_policy_document" "email" {
  count = var.email_from != "" ? 1 : 0

  statement {
    sid       = "SendEmail"
    actions   = ["ses:SendEmail", "ses:SendRawEmail"]
    resources = [aws_sesv2_email_identity.email[0].arn]
    condition {
      test     = "StringEquals"
      variable = "ses:FromAddress"
      values   = [var.email_from]
    }
  }
}

resource "aws_iam_role_policy" "email" {
  for_each = var.email_from != "" ? toset(["reports", "alerts"]) : toset([])

  name   = "send-email"
  role   = aws_iam_role.lambda[each.key].id
  policy = data.aws_iam_policy_document.email[0].json
}

# ---- the reports schedule, hourly -----------------------------------------------------------

# As compaction's (archive.tf): a scheduled rule, free as an AWS service event. A report is due
# from 08:00 local on its first day to that day's end (reports/schedule.py): an hourly run in
# every zone. A run with nothing due is one Query of the site list.
resource "aws_cloudwatch_event_rule" "reports" {
  count = var.email_from != "" ? 1 : 0

  name                = "${local.name}-reports"
  description         = "Hourly: the weekly and monthly email reports due in each site's zone (reports.handler)"
  schedule_expression = "rate(1 hour)"
}

resource "aws_cloudwatch_event_target" "reports" {
  count = var.email_from != "" ? 1 : 0

  rule = aws_cloudwatch_event_rule.reports[0].name
  arn  = aws_lambda_function.this["reports"].arn
}

resource "aws_lambda_permission" "reports_schedule" {
  count = var.email_from != "" ? 1 : 0

  statement_id  = "AllowHourlyReports"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["reports"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.reports[0].arn
}

# Asynchronous, as compaction's: Lambda retries a failed run twice, then its failure record goes
# to the dead-letter queue (dlq-depth pages; `liveinsight dlq replay` runs it again). A run is
# idempotent (the sent markers) and the next hour's supersedes it.
resource "aws_lambda_function_event_invoke_config" "reports" {
  function_name                = aws_lambda_function.this["reports"].function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.aggregator_dlq.arn
    }
  }
}
