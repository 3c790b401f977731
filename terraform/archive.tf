# The event archive (issue 18): every accepted event as Parquet, `events/<site>/<day>/*.parquet`
# (archive/layout.py). The rollup tier writes one object per batch, site and site-local day; the
# compaction function merges a day's objects hourly and applies each site's retention; the query
# function's archive engine reads them (decisions 0027-0030). Optional: Glue and Athena over the
# same objects, for sites past what one Lambda answers (var.athena, decision 0030).

locals {
  archive_prefix    = "events/"
  quarantine_prefix = "quarantine/"
  athena_prefix     = "athena-results/"
  # Imported Plausible tables beside the archive, `imports/<site>/<id>/` (imports/store.py,
  # decision 0035): kept until deleted, so no lifecycle rule.
  imports_prefix = "imports/"
  # The longest retention a site may be given (`liveinsight site update --retention-months`,
  # at most 120): the lifecycle rule below is a backstop behind compaction's per-site retention.
  archive_max_retention_days = 3653 # 120 months, leap days included

  # The Glue table's columns: archive/layout.py COLUMNS (Parquet types as Hive names it), minus
  # `site`, which is a partition key there (tests/infra checks the two lists agree).
  archive_columns = [
    { name = "event_id", type = "string" },
    { name = "ts", type = "bigint" },
    { name = "name", type = "string" },
    { name = "visitor_id", type = "string" },
    # UBIGINT (Parquet UINT_64): Hive has no unsigned type; Spark and Trino map it to this
    { name = "visitor_key", type = "decimal(20,0)" },
    { name = "tz", type = "string" },
    { name = "previous_visitor_id", type = "string" },
    { name = "hostname", type = "string" },
    { name = "page", type = "string" },
    { name = "referrer", type = "string" },
    { name = "source", type = "string" },
    { name = "utm_medium", type = "string" },
    { name = "utm_source", type = "string" },
    { name = "utm_campaign", type = "string" },
    { name = "utm_content", type = "string" },
    { name = "utm_term", type = "string" },
    { name = "country", type = "string" },
    # region, city, channel: Athena reads them as NULL in files written before them
    { name = "region", type = "string" },
    { name = "city", type = "string" },
    { name = "channel", type = "string" },
    { name = "browser", type = "string" },
    { name = "browser_version", type = "string" },
    { name = "os", type = "string" },
    { name = "os_version", type = "string" },
    { name = "device", type = "string" },
    { name = "interactive", type = "boolean" },
    { name = "internal", type = "boolean" },
    { name = "props", type = "map<string,string>" },
    { name = "revenue_amount", type = "string" },
    { name = "revenue_currency", type = "string" },
    { name = "scroll_depth", type = "int" },
    { name = "engaged_ms", type = "bigint" },
  ]
}

resource "aws_s3_bucket" "archive" {
  #checkov:skip=CKV_AWS_18:No S3 server access logs: only the three functions' roles touch the bucket, their calls are in their own logs and CloudTrail, and a log bucket would be one more to secure and pay for.
  #checkov:skip=CKV_AWS_144:No cross-region replication: it would double the archive's storage and PUTs; the archive is a second copy of what the counters already answer, and a region's S3 durability is eleven nines.
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES-256), as the static bucket: a customer-managed key costs $1/month plus a request per object read or written (every compaction and archive query), and the objects hold no IP address or user agent.
  #checkov:skip=CKV_AWS_21:Versioning off: a site's purge and its retention must delete events for real (privacy), objects are written once under names derived from their content, and compaction writes the merged object before it deletes the parts.
  bucket = "${local.name}-archive-${data.aws_caller_identity.current.account_id}"
}

resource "aws_s3_bucket_public_access_block" "archive" {
  bucket                  = aws_s3_bucket.archive.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "archive" {
  bucket = aws_s3_bucket.archive.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "archive" {
  bucket = aws_s3_bucket.archive.id
  versioning_configuration {
    status = "Disabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id

  # Compaction deletes a site's days past its retention (24 months by default); this catches
  # whatever it did not reach, at the longest retention a site may have.
  rule {
    id     = "expire-events-past-the-longest-retention"
    status = "Enabled"
    filter {
      prefix = local.archive_prefix
    }
    expiration {
      days = local.archive_max_retention_days
    }
  }
  rule {
    id     = "expire-quarantine"
    status = "Enabled"
    filter {
      prefix = local.quarantine_prefix
    }
    expiration {
      days = var.archive_quarantine_days
    }
  }
  rule {
    id     = "expire-athena-results"
    status = "Enabled"
    filter {
      prefix = local.athena_prefix
    }
    expiration {
      days = 7
    }
  }
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "archive_bucket" {
  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.archive.arn, "${aws_s3_bucket.archive.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "archive" {
  bucket     = aws_s3_bucket.archive.id
  policy     = data.aws_iam_policy_document.archive_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.archive]
}

# ---- compaction, hourly ---------------------------------------------------------------------

# A scheduled rule (free: an AWS service event), not EventBridge Scheduler (free for 14 M
# invocations, then $1 per million, and one more role): one target, one rate.
resource "aws_cloudwatch_event_rule" "compaction" {
  name                = "${local.name}-archive-compaction"
  description         = "Hourly: merge each site-day's archive objects, apply retention (archive.handler)"
  schedule_expression = "rate(1 hour)"
}

resource "aws_cloudwatch_event_target" "compaction" {
  rule = aws_cloudwatch_event_rule.compaction.name
  arn  = aws_lambda_function.this["archive"].arn
}

resource "aws_lambda_permission" "compaction_schedule" {
  statement_id  = "AllowHourlyCompaction"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["archive"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.compaction.arn
}

# EventBridge invokes the function asynchronously: Lambda retries a failed run, then sends its
# failure record (the scheduled event and the error) to the dead-letter queue, where dlq-depth
# pages and `liveinsight dlq replay` runs it again (decision 0026: no alarm of its own). A run is
# idempotent and the next hour's supersedes it, so a run older than that is given up too.
resource "aws_lambda_function_event_invoke_config" "archive" {
  function_name                = aws_lambda_function.this["archive"].function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.aggregator_dlq.arn
    }
  }
}

# ---- Umami imports asked through the admin API (decision 0039) -------------------------------

# The query function stores an Umami upload and then its request, `imports/<site>/<id>/request.json`
# (imports/store.py); S3 invokes the archive function, asynchronously, for each request created
# (a removal is a request too). The invoke config above applies: two retries, then the DLQ. The
# suffix keeps the import's own writes (tables, manifest, status) from triggering anything.
resource "aws_lambda_permission" "import_requests" {
  statement_id   = "AllowImportRequests"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this["archive"].function_name
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.archive.arn
  source_account = data.aws_caller_identity.current.account_id
}

resource "aws_s3_bucket_notification" "archive" {
  bucket = aws_s3_bucket.archive.id

  lambda_function {
    id                  = "import-requests"
    lambda_function_arn = aws_lambda_function.this["archive"].arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = local.imports_prefix
    filter_suffix       = "/request.json" # local/s3_notify.py SUFFIX (tests/infra)
  }

  depends_on = [aws_lambda_permission.import_requests]
}

# ---- Athena over the same objects (off by default) ------------------------------------------

resource "aws_glue_catalog_database" "archive" {
  count = var.athena ? 1 : 0

  name        = replace("${local.name}_archive", "-", "_")
  description = "LiveInsight's event archive (decision 0030)"
}

# Partition projection: Athena computes a query's prefixes from `site = '...'` and the day range
# instead of listing partitions, so no crawler and no partition to add as days go by.
resource "aws_glue_catalog_table" "events" {
  count = var.athena ? 1 : 0

  name          = "events"
  database_name = aws_glue_catalog_database.archive[0].name
  table_type    = "EXTERNAL_TABLE"
  parameters = {
    "classification"               = "parquet"
    "EXTERNAL"                     = "TRUE"
    "projection.enabled"           = "true"
    "projection.site.type"         = "injected"
    "projection.day.type"          = "date"
    "projection.day.format"        = "yyyy-MM-dd"
    "projection.day.range"         = "2024-01-01,NOW"
    "projection.day.interval"      = "1"
    "projection.day.interval.unit" = "DAYS"
    "storage.location.template"    = "s3://${aws_s3_bucket.archive.bucket}/${local.archive_prefix}$${site}/$${day}/"
  }

  partition_keys {
    name = "site"
    type = "string"
  }
  partition_keys {
    name = "day"
    type = "string"
  }

  storage_descriptor {
    location      = "s3://${aws_s3_bucket.archive.bucket}/${local.archive_prefix}"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }
    dynamic "columns" {
      for_each = local.archive_columns
      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

resource "aws_athena_workgroup" "archive" {
  count = var.athena ? 1 : 0

  name        = "${local.name}-archive"
  description = "Queries of the event archive; results under ${local.athena_prefix} (kept 7 days)"

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff
    result_configuration {
      output_location = "s3://${aws_s3_bucket.archive.bucket}/${local.athena_prefix}"
      encryption_configuration {
        encryption_option = "SSE_S3"
      }
    }
  }
}
