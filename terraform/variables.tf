variable "region" {
  description = "AWS region for everything but CloudFront's global parts."
  type        = string
  default     = "us-east-1"
}

variable "environment" {
  description = "Environment name, part of every resource name (prod, staging, ...)."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,15}$", var.environment))
    error_message = "environment: lower-case letters, digits and dashes, at most 16 characters."
  }
}

variable "project_name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "liveinsight"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,23}$", var.project_name))
    error_message = "project_name: lower-case letters, digits and dashes, at most 24 characters."
  }
}

variable "domain" {
  description = "Custom domain for the dashboard and tracker (e.g. stats.example.com); empty for the CloudFront domain."
  type        = string
  default     = ""
}

variable "acm_certificate_arn" {
  description = "ACM certificate in us-east-1 covering var.domain; required when domain is set."
  type        = string
  default     = ""
}

variable "alarm_email" {
  description = "Where alarms are sent (SNS e-mail subscription, confirm the first mail); empty for none."
  type        = string
  default     = ""
}

variable "log_retention_days" {
  description = "Retention of the Lambda logs. Logs hold no IP address or user agent."
  type        = number
  default     = 30
}

variable "log_level" {
  description = "POWERTOOLS_LOG_LEVEL of the three functions."
  type        = string
  default     = "INFO"
}

variable "lambda_memory_mb" {
  description = "Memory of ingest and the aggregator (the bill, bench/bill.py, reads each function's memory from here)."
  type        = number
  default     = 256
}

variable "query_memory_mb" {
  description = "Memory of the query function: DuckDB's archive queries need it (a 30-day two-filter breakdown peaked at 0.28 GB at 1 M pageviews a month and 1.42 GB at 10 M, decisions 0028 and 0029), and Lambda's CPU share grows with it (a full core from 1,769 MB)."
  type        = number
  default     = 2048
}

variable "compaction_memory_mb" {
  description = "Memory of the hourly archive compaction (merges a site-day's Parquet objects with DuckDB; a day of a site with 10 M pageviews a month peaked at 1.04 GB, decision 0030)."
  type        = number
  default     = 1536
}

variable "archive_quarantine_days" {
  description = "Days an archive object that could not be read stays under quarantine/ for inspection before S3 deletes it."
  type        = number
  default     = 30
}

variable "athena" {
  description = "Create the Glue table and Athena workgroup over the event archive (decision 0030): for sites past what one Lambda answers. Off by default; Athena bills per query ($5 per TB scanned), nothing while unused."
  type        = bool
  default     = false
}

variable "athena_bytes_scanned_cutoff" {
  description = "Athena cancels a query of the archive workgroup that would scan more than this many bytes (at least 10 MB)."
  type        = number
  default     = 10737418240 # 10 GB: $0.05 a query at most

  validation {
    condition     = var.athena_bytes_scanned_cutoff >= 10485760
    error_message = "athena_bytes_scanned_cutoff: at least 10485760 (10 MB), Athena's minimum."
  }
}

variable "ingest_reserved_concurrency" {
  description = "Reserved concurrency of the ingest function: its cap and its guarantee (about 20 serves 500 events/s). -1: none, the default, as new accounts (a quota of 10) cannot reserve any; see RUNBOOK.md, Throttles."
  type        = number
  default     = -1

  validation {
    condition     = var.ingest_reserved_concurrency == -1 || (var.ingest_reserved_concurrency >= 1 && floor(var.ingest_reserved_concurrency) == var.ingest_reserved_concurrency)
    error_message = "ingest_reserved_concurrency: -1 (none) or a whole number, at least 1 (0 would turn ingest off)."
  }
}

variable "query_reserved_concurrency" {
  description = "Reserved concurrency of the query function (the dashboard and the Stats API). -1: none, the default; see RUNBOOK.md, Throttles."
  type        = number
  default     = -1

  validation {
    condition     = var.query_reserved_concurrency == -1 || (var.query_reserved_concurrency >= 1 && floor(var.query_reserved_concurrency) == var.query_reserved_concurrency)
    error_message = "query_reserved_concurrency: -1 (none) or a whole number, at least 1 (0 would turn the query API off)."
  }
}

variable "iterator_age_alarm_seconds" {
  description = "Alarm when the aggregator falls this far behind the events stream."
  type        = number
  default     = 120
}

variable "api_5xx_alarm_percent" {
  description = "Alarm when this share of function URL requests (ingest and query) ends in a 5xx over 5 minutes."
  type        = number
  default     = 1
}

variable "price_class" {
  description = "CloudFront price class."
  type        = string
  default     = "PriceClass_100"
}

variable "deletion_protection" {
  description = "DynamoDB deletion protection (turn off only to destroy a test environment)."
  type        = bool
  default     = true
}

variable "drain_legacy_events" {
  description = "Keep the events table as keyed before decision 0040 (by event id) and the aggregator's mappings on its stream, so that the records written before the upgrade are still counted. Set false once its stream holds no record younger than 24 h plus the mappings' maximum record age (RUNBOOK.md): that removes the table and its mappings. True by default: an upgrade must never drop a stream that still holds uncounted events, and an idle on-demand table and its mappings cost nothing."
  type        = bool
  default     = true
}

variable "origin_secret_generation" {
  description = "Generation of the origin secret CloudFront sends to the function URLs (secrets.tf). Raise it by one to rotate the secret, and keep the new value (RUNBOOK.md)."
  type        = number
  default     = 1

  validation {
    condition     = var.origin_secret_generation >= 1 && floor(var.origin_secret_generation) == var.origin_secret_generation
    error_message = "origin_secret_generation: a whole number, at least 1."
  }
}

variable "cloudwatch_dashboard" {
  description = "Create the CloudWatch dashboard (terraform/dashboard.tf): free within the account's three always-free dashboards, else $3 a month (decision 0026)."
  type        = bool
  default     = false
}

variable "alerts_dlq_alarm" {
  description = "Alarm on webhook alerts dead-lettered after every attempt (terraform/alerts.tf): an eleventh alarm metric, $0.10 a month beyond the always-free ten (decisions 0026, 0036)."
  type        = bool
  default     = false
}

variable "email_from" {
  description = "The address email reports and alert emails are sent from (e.g. reports@stats.example.com; decision 0038). Its domain becomes an SES identity with DKIM: add the records of the email_dns_records output, and leave SES's sandbox (RUNBOOK.md). Empty, the default: no email (no identity, no SES grant, no reports schedule)."
  type        = string
  default     = ""

  validation {
    condition     = var.email_from == "" || can(regex("^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.email_from))
    error_message = "email_from: empty, or a plain address whose domain is in lower case (reports@stats.example.com)."
  }
}
