output "dashboard_url" {
  description = "The dashboard (CloudFront). Append ?site=<domain>#key=<read key>."
  value       = "https://${local.public_host}/"
}

output "api_url" {
  description = "The API as browsers, trackers and Stats API clients call it: CloudFront's /api."
  value       = "https://${local.public_host}/api"
}

output "function_urls" {
  description = "The functions' own URLs, CloudFront's origins. Reachable directly (auth type NONE), but a direct caller's CloudFront-* headers are ignored (decision 0023): for checks with curl only."
  value       = { for key, url in aws_lambda_function_url.this : key => url.function_url }
}

output "tracker_snippet" {
  description = "Paste into every page of a site (replace example.com with the site's domain)."
  value       = "<script defer data-domain=\"example.com\" src=\"https://${local.public_host}/js/script.js\"></script>"
}

output "static_bucket" {
  description = "Where scripts/deploy.sh uploads the dashboard and the tracker."
  value       = aws_s3_bucket.static.bucket
}

output "cloudfront_distribution_id" {
  description = "Invalidated by scripts/deploy.sh after each upload."
  value       = aws_cloudfront_distribution.this.id
}

output "table_names" {
  description = "Physical table names by logical name (core/schema.json)."
  value       = local.tables
}

output "function_names" {
  description = "Lambda function names by logical name."
  value       = local.fn
}

output "log_groups" {
  description = "CloudWatch log groups of the functions, for Logs Insights (RUNBOOK.md)."
  value       = { for key, group in aws_cloudwatch_log_group.lambda : key => group.name }
}

output "dead_letter_queue_url" {
  description = "The aggregator's on-failure destination; `liveinsight dlq replay` drains it."
  value       = aws_sqs_queue.aggregator_dlq.url
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies."
  value       = aws_sns_topic.alarms.arn
}

output "secret_parameters" {
  description = "SSM SecureString parameters of the dashboard login: scripts/deploy.sh creates them, Terraform only names them."
  value       = local.secret_parameters
}

output "region" {
  description = "Region of the deployment (RUNBOOK.md's shell set-up reads it)."
  value       = var.region
}

output "archive_bucket" {
  description = "The event archive: Parquet objects under events/<site>/<day>/ (archive/layout.py)."
  value       = aws_s3_bucket.archive.bucket
}

output "athena_workgroup" {
  description = "Athena workgroup over the archive (var.athena; empty when off). Tables: <database>.events."
  value       = var.athena ? aws_athena_workgroup.archive[0].name : ""
}

output "email_dns_records" {
  description = "DNS records to add for var.email_from's domain (decision 0038): SES signs with DKIM once the three CNAMEs resolve; the MX and TXT of the MAIL FROM subdomain align SPF (until they exist SES bounces to amazonses.com). Empty without var.email_from."
  value = var.email_from == "" ? [] : concat(
    [
      for token in aws_sesv2_email_identity.email[0].dkim_signing_attributes[0].tokens : {
        type  = "CNAME"
        name  = "${token}._domainkey.${local.email_domain}"
        value = "${token}.dkim.amazonses.com"
      }
    ],
    [
      {
        type  = "MX"
        name  = local.email_mail_from_domain
        value = "10 feedback-smtp.${var.region}.amazonses.com"
      },
      {
        type  = "TXT"
        name  = local.email_mail_from_domain
        value = "v=spf1 include:amazonses.com ~all"
      },
    ],
  )
}
