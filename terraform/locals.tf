locals {
  # The one schema source (STYLE.md 9): tables, TTL, stream, GSIs and the event source mapping
  # come from the file the local stack and the tests read too. Nothing here repeats a key name.
  schema = jsondecode(file("${path.module}/../core/schema.json"))
  esm    = local.schema.event_source_mapping
  # The aggregator's tiers (decision 0010): one alias and one event source mapping each.
  aggregator_tiers = local.schema.aggregator_tiers

  name        = "${var.project_name}-${var.environment}"
  package_dir = "${path.module}/../build/lambda" # `make package` writes <function>.zip here

  tags = {
    project     = var.project_name
    environment = var.environment
    managed-by  = "terraform"
  }

  tables = { for logical, key in local.table_keys : logical => aws_dynamodb_table.this[key].name }

  # One entry per Lambda; scripts/package.py builds the zips with the same names and handlers.
  # `environment` must set every LIVEINSIGHT_* field without a default in that function's
  # settings class (core/settings.py): tests/infra checks it.
  functions = {
    ingest = {
      handler     = "ingest.handler.handler"
      timeout     = 10
      memory_mb   = var.lambda_memory_mb
      description = "POST /api/event: validate, enrich, hash the visitor, store, answer 202"
      environment = {
        LIVEINSIGHT_EVENTS_TABLE = local.tables["events"]
        LIVEINSIGHT_META_TABLE   = local.tables["meta"]
        # The viewer address comes from CloudFront-Viewer-Address, believed with the origin
        # secret (its digests: secrets.tf); X-Forwarded-For is forgeable.
        LIVEINSIGHT_ORIGIN_SECRET_SHA256 = local.origin_secret_digests
        LIVEINSIGHT_TRUST_FORWARDED_FOR  = "false"
      }
    }
    aggregator = {
      handler     = "aggregator.handler.handler"
      timeout     = 60
      memory_mb   = var.lambda_memory_mb
      description = "events stream (INSERT) -> aggregates, exactly once; the rollup tier also archives the batch to S3"
      environment = {
        LIVEINSIGHT_AGGREGATES_TABLE = local.tables["aggregates"]
        # The rollup tier writes each batch's events as Parquet here (archive.tf).
        LIVEINSIGHT_ARCHIVE_BUCKET = aws_s3_bucket.archive.bucket
        # The realtime tier reads the sites' alert rules and queues their crossings (alerts.tf).
        LIVEINSIGHT_META_TABLE       = local.tables["meta"]
        LIVEINSIGHT_ALERTS_QUEUE_URL = aws_sqs_queue.alerts.url
      }
    }
    query = {
      handler = "query_api.handler.handler"
      # An archive answer takes ~0.8 s at 1 M pageviews a month and ~8 s at 10 M (decision 0030);
      # CloudFront waits 30 s for an origin.
      timeout = 29
      # DuckDB answers what the counters cannot from the archive: more memory, and the CPU share
      # that comes with it (decision 0029).
      memory_mb   = var.query_memory_mb
      description = "/api/*: stats JSON, Plausible Stats API v1, dashboard cards, sign-in, admin"
      environment = {
        LIVEINSIGHT_AGGREGATES_TABLE = local.tables["aggregates"]
        LIVEINSIGHT_META_TABLE       = local.tables["meta"]
        # The sign-in secrets stay in SSM: the function gets their names and reads them itself.
        LIVEINSIGHT_ADMIN_PASSWORD_HASH_PARAMETER = local.secret_parameters.admin_password_hash
        LIVEINSIGHT_SESSION_SECRET_PARAMETER      = local.secret_parameters.session_signing_key
        # The login limit's client is CloudFront-Viewer-Address only with the origin secret.
        LIVEINSIGHT_ORIGIN_SECRET_SHA256 = local.origin_secret_digests
        # The one origin a signed-in browser may change things from (CSRF), and the base of
        # shared links. CloudFront does not forward Host, so the function cannot infer it. With
        # a custom domain, here; without one, the distribution's domain, which the function
        # cannot name (the distribution names its URL), from the SSM parameter (api.tf).
        LIVEINSIGHT_PUBLIC_URL           = var.domain != "" ? "https://${var.domain}" : ""
        LIVEINSIGHT_PUBLIC_URL_PARAMETER = local.public_url_parameter
        # The event archive the archive engine reads (archive.tf), and its local cache's budget
        # within the function's /tmp (tmp_mb below).
        LIVEINSIGHT_ARCHIVE_BUCKET      = aws_s3_bucket.archive.bucket
        LIVEINSIGHT_ARCHIVE_CACHE_BYTES = 1073741824
      }
    }
    archive = {
      handler     = "archive.handler.handler"
      timeout     = 300
      memory_mb   = var.compaction_memory_mb
      description = "hourly: merges each site-day's archive objects into one, applies each site's retention; Umami imports asked through the admin API"
      environment = {
        LIVEINSIGHT_ARCHIVE_BUCKET = aws_s3_bucket.archive.bucket
        LIVEINSIGHT_META_TABLE     = local.tables["meta"]
        # Umami imports rebuild their days' counters (imports/worker.py, decision 0039).
        LIVEINSIGHT_AGGREGATES_TABLE = local.tables["aggregates"]
      }
    }
    reports = {
      handler = "reports.handler.handler"
      # Hourly (reports.tf, when var.email_from is set). A report's questions are the stats API's,
      # through the query side's planner: counters, or the archive (DuckDB) for what they refuse.
      # Under STALE_SECONDS (reports/store.py, 900 s): a run past it could send a report twice.
      timeout     = 300
      memory_mb   = 512
      description = "hourly: the weekly and monthly email reports due in each site's zone, by SES"
      environment = {
        LIVEINSIGHT_META_TABLE       = local.tables["meta"]
        LIVEINSIGHT_AGGREGATES_TABLE = local.tables["aggregates"]
        LIVEINSIGHT_ARCHIVE_BUCKET   = aws_s3_bucket.archive.bucket
        LIVEINSIGHT_EMAIL_FROM       = var.email_from
        # The links in a report: the dashboard's origin (as the query function's, api.tf) and
        # the session key the unsubscribe key is derived from (read from SSM, secrets.tf).
        LIVEINSIGHT_PUBLIC_URL               = var.domain != "" ? "https://${var.domain}" : ""
        LIVEINSIGHT_PUBLIC_URL_PARAMETER     = local.public_url_parameter
        LIVEINSIGHT_SESSION_SECRET_PARAMETER = local.secret_parameters.session_signing_key
      }
    }
    alerts = {
      handler = "alerts.handler.handler"
      # A batch of 5 messages, each webhook waited on 5 s at most; the queue's visibility (60 s)
      # must be at least this.
      timeout     = 30
      memory_mb   = 128
      description = "alerts queue (SQS) -> the rules' webhooks, signed, at least once"
      environment = {
        LIVEINSIGHT_META_TABLE       = local.tables["meta"]
        LIVEINSIGHT_ALERTS_QUEUE_URL = aws_sqs_queue.alerts.url
        # A rule's email recipients (decision 0038): "" refuses to send (email off).
        LIVEINSIGHT_EMAIL_FROM = var.email_from
      }
    }
    alert_schedule = {
      handler = "alerts.schedule.handler"
      # Every minute (alerts.tf): drop and new-top-referrer rules, firing spikes resolved when
      # traffic stops (decision 0037). A run reads one item when no site has such a rule.
      timeout     = 50
      memory_mb   = 128
      description = "every minute: the alert rules no event triggers (drop, new top referrer)"
      environment = {
        LIVEINSIGHT_META_TABLE       = local.tables["meta"]
        LIVEINSIGHT_AGGREGATES_TABLE = local.tables["aggregates"]
        LIVEINSIGHT_ALERTS_QUEUE_URL = aws_sqs_queue.alerts.url
      }
    }
  }

  # /tmp of the query function: the archive's local cache (LIVEINSIGHT_ARCHIVE_CACHE_BYTES, 1 GiB)
  # and DuckDB's spill. A 30-day question at 10 M pageviews a month fetches 686 MB of objects
  # (decision 0030): more than Lambda's default 512 MB.
  tmp_mb = { query = 2048 }

  # Reserved concurrency of the functions behind the function URLs (variables.tf).
  reserved_concurrency = {
    ingest = var.ingest_reserved_concurrency
    query  = var.query_reserved_concurrency
  }

  # Paths served by ingest; every other /api/* path goes to query (local/front.py INGEST_PATHS).
  ingest_paths = ["/api/event", "/api/send", "/api/batch"]

  # The dashboard's security headers, the same as the local front's (local/front.py).
  content_security_policy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"

  # The dashboard's host. Only outputs and the public URL parameter may read it: the functions
  # cannot depend on the distribution (decision 0023).
  public_host          = var.domain != "" ? var.domain : aws_cloudfront_distribution.this.domain_name
  public_url_parameter = "/${var.project_name}/${var.environment}/public-url"
  public_url_parameter_arn = (
    "arn:${data.aws_partition.current.partition}:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter${local.public_url_parameter}"
  )
}
