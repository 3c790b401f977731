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
  description = "Retention of the Lambda and API access logs. Logs hold no IP address or user agent."
  type        = number
  default     = 30
}

variable "log_level" {
  description = "POWERTOOLS_LOG_LEVEL of the three functions."
  type        = string
  default     = "INFO"
}

variable "lambda_memory_mb" {
  description = "Memory of each function (bench/__main__.py prices Lambda with the same figure)."
  type        = number
  default     = 256
}

variable "ingest_throttle" {
  description = "API Gateway throttling of the ingest routes (requests per second, burst)."
  type        = object({ rate = number, burst = number })
  default     = { rate = 500, burst = 1000 }
}

variable "query_throttle" {
  description = "API Gateway throttling of the query routes (requests per second, burst)."
  type        = object({ rate = number, burst = number })
  default     = { rate = 50, burst = 100 }
}

variable "iterator_age_alarm_seconds" {
  description = "Alarm when the aggregator falls this far behind the events stream."
  type        = number
  default     = 120
}

variable "api_5xx_alarm_percent" {
  description = "Alarm when this share of API requests ends in a 5xx over 5 minutes."
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

variable "api_origin_domain" {
  description = "A name for API Gateway's own custom domain (e.g. api-origin.stats.example.com), CloudFront's origin for /api/*. Set it to turn the execute-api endpoint off; empty keeps that endpoint as the origin."
  type        = string
  default     = ""
}

variable "api_origin_certificate_arn" {
  description = "ACM certificate in var.region covering api_origin_domain; required when it is set."
  type        = string
  default     = ""
}

variable "api_origin_zone_id" {
  description = "Route 53 hosted zone in which to create api_origin_domain's record; empty: create the CNAME yourself (output api_origin_target)."
  type        = string
  default     = ""
}

variable "origin_secret_generation" {
  description = "Generation of the origin secret CloudFront sends to API Gateway (secrets.tf). Raise it by one to rotate the secret, and keep the new value (RUNBOOK.md)."
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
