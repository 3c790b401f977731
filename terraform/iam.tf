# One role per function, allowing exactly the calls its code makes (tests/infra records them under
# moto and compares) on exactly its tables. TransactWriteItems has no IAM action of its own: each
# Put / Update inside it needs dynamodb:PutItem / dynamodb:UpdateItem.

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  for_each = local.functions

  name               = "${local.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

resource "aws_iam_role_policy" "lambda" {
  for_each = local.functions

  name   = "least-privilege"
  role   = aws_iam_role.lambda[each.key].id
  policy = local.policies[each.key]
}

locals {
  policies = {
    ingest     = data.aws_iam_policy_document.ingest.json
    aggregator = data.aws_iam_policy_document.aggregator.json
    query      = data.aws_iam_policy_document.query.json
    archive    = data.aws_iam_policy_document.archive.json
    reports    = data.aws_iam_policy_document.reports.json
    alerts     = data.aws_iam_policy_document.alerts.json
    # the minute schedule of alerts (decision 0037)
    alert_schedule = data.aws_iam_policy_document.alert_schedule.json
  }
}

# ingest: one conditional PutItem per event (ingest/store.py); sites are read (core/sites.py
# SiteStore.get), the daily salts read, created and the expired ones deleted (ingest/visitor.py),
# and visitors' last-seen times read and written (ingest/sessions.py, sessions over midnight);
# an Umami website id's site is read by id (core/sites.py SiteStore.site_for_umami_id); an event
# id a client sent puts its resend marker (ingest/store.py), which a failed condition returns.
# In meta it reaches only those partitions (core/keys.py SITE_PK, SALT_PK, UMAMI#<uuid>,
# SEEN#<site>#<id> and EVID#<site>#<id>) and writes only the salts', the last-seen items and the
# resend markers: ingest is the public endpoint, and keys, sign-in sessions and sites are not its
# to touch.
# ForAllValues: every partition key the request names must be the listed one (or match it).
data "aws_iam_policy_document" "ingest" {
  statement {
    sid       = "StoreEvents"
    actions   = ["dynamodb:PutItem"]
    resources = [aws_dynamodb_table.this[local.table_keys.events].arn]
  }
  statement {
    sid       = "ReadSites"
    actions   = ["dynamodb:GetItem"]
    resources = [aws_dynamodb_table.this["meta"].arn]
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:LeadingKeys"
      values   = ["SITE"]
    }
  }
  statement {
    sid       = "Salts"
    actions   = ["dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"]
    resources = [aws_dynamodb_table.this["meta"].arn]
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:LeadingKeys"
      values   = ["SALT"]
    }
  }
  statement {
    sid       = "UmamiIds"
    actions   = ["dynamodb:GetItem"]
    resources = [aws_dynamodb_table.this["meta"].arn]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["UMAMI#*"]
    }
  }
  statement {
    sid       = "LastSeen"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.this["meta"].arn]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["SEEN#*"]
    }
  }
  statement {
    sid       = "ResendMarkers"
    actions   = ["dynamodb:PutItem"]
    resources = [aws_dynamodb_table.this["meta"].arn]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["EVID#*"]
    }
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda["ingest"].arn}:*"]
  }
}

# aggregator: visitor states read with BatchGetItem, then one TransactWriteItems per chunk of Put
# (visitor states, a day's and a month's slot) and Update (hour and minute counters); a fold reads
# a bucket's slots with Query and its bases with BatchGetItem, then Puts the bases and Deletes the
# slots in one TransactWriteItems (aggregator/store.py, decision 0015). The event source mapping
# reads the stream and sends on-failure records to the DLQ with this role.
data "aws_iam_policy_document" "aggregator" {
  statement {
    sid = "Aggregates"
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:Query",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
    ]
    resources = [aws_dynamodb_table.this["aggregates"].arn]
  }
  statement {
    sid = "ReadEventsStream"
    actions = [
      "dynamodb:DescribeStream",
      "dynamodb:GetRecords",
      "dynamodb:GetShardIterator",
      "dynamodb:ListStreams",
    ]
    # the events table's stream, and the legacy one's while it drains (decision 0040)
    resources = values(local.event_stream_arns)
  }
  statement {
    sid       = "DeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.aggregator_dlq.arn]
  }
  # The rollup tier's batch, one new object per site and day (archive/store.py): write only,
  # under events/ only. It never reads, lists or deletes.
  statement {
    sid       = "ArchiveWrite"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.archive.arn}/${local.archive_prefix}*"]
  }
  # Alerts (decision 0036): a site's rules read (one Query, cached) and a crossing recorded on
  # the rule (a conditional UpdateItem), in the rules' partitions only; then queued.
  statement {
    sid       = "AlertRules"
    actions   = ["dynamodb:Query", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.this["meta"].arn]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["ALERTS#*"]
    }
  }
  statement {
    sid       = "QueueAlerts"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.alerts.arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda["aggregator"].arn}:*"]
  }
}

# query: sites, key and share-token hashes from meta (core/sites.py), read and, for the admin,
# written (sites, keys, goals, shared links: PutItem, UpdateItem, DeleteItem; TransactWriteItems
# of two Puts); sessions and failed sign-ins (query_api/auth.py); counters from aggregates
# (query_api/reader.py); the two sign-in secrets and the dashboard's public URL (a String, without
# a custom domain: query_api/deps.py PublicUrl) from SSM. The secrets are SecureStrings under the
# AWS-managed aws/ssm key, whose key policy lets SSM decrypt for any principal of the account that
# may read the parameter, so no kms:Decrypt grant is needed.
data "aws_iam_policy_document" "query" {
  statement {
    sid = "SitesSessionsAndSignIns"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:Query",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
    ]
    resources = [aws_dynamodb_table.this["meta"].arn]
  }
  statement {
    sid     = "SignInSecrets"
    actions = ["ssm:GetParameter"]
    resources = [
      local.secret_parameter_arns.admin_password_hash,
      local.secret_parameter_arns.session_signing_key,
    ]
  }
  statement {
    sid       = "PublicUrl"
    actions   = ["ssm:GetParameter"]
    resources = [local.public_url_parameter_arn]
  }
  statement {
    sid       = "Counters"
    actions   = ["dynamodb:Query"]
    resources = [aws_dynamodb_table.this["aggregates"].arn]
  }
  # The archive engine lists a site's days and fetches their objects into its cache (archive/
  # store.py ArchiveStore.local_files): read only, under events/. It never rewrites the archive
  # or the counters: Umami imports, which do, are the archive function's (decision 0039).
  statement {
    sid       = "ArchiveRead"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.archive.arn}/${local.archive_prefix}*"]
  }
  # Plausible imports (imports/store.py): the admin API writes an import's tables and manifest,
  # the stats read them, a removal deletes them; an Umami upload, its request and status are
  # written there for the archive function (decision 0039); under imports/ only.
  statement {
    sid       = "Imports"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.archive.arn}/${local.imports_prefix}*"]
  }
  statement {
    sid       = "ArchiveList"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.archive.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.archive_prefix}*", "${local.imports_prefix}*"]
    }
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda["query"].arn}:*"]
  }
}

# compaction (archive/compact.py): lists a site-day's objects, reads them, writes the merged one,
# deletes the merged parts and whatever is past the site's retention; an object it cannot read
# goes to quarantine/ (copied: GetObject on the source, PutObject on the copy; then deleted).
# Under quarantine/ it only writes those copies, lists a site's and deletes the ones past its
# retention: it never reads one back.
# The sites and their retention come from the meta table's site records (core/sites.py). A run
# that fails after Lambda's retries is sent to the dead-letter queue with this role (archive.tf).
# Umami imports asked through the admin API (imports/worker.py, decision 0039): the request,
# upload and status read and written under imports/, the import's events written into (and a
# removal's taken out of) events/, the site read, and the counters of the days rebuilt
# (aggregator/rebuild.py) in the counter partitions only (`C#…`, core/keys.py), never the
# visitor states beside them.
data "aws_iam_policy_document" "archive" {
  statement {
    sid       = "ArchiveObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.archive.arn}/${local.archive_prefix}*"]
  }
  statement {
    sid       = "Imports"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.archive.arn}/${local.imports_prefix}*"]
  }
  statement {
    sid       = "ImportCounters"
    actions   = ["dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"]
    resources = [aws_dynamodb_table.this["aggregates"].arn]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["C#*"]
    }
  }
  statement {
    sid       = "Quarantine"
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.archive.arn}/${local.quarantine_prefix}*"]
  }
  statement {
    sid       = "ArchiveList"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.archive.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.archive_prefix}*", "${local.quarantine_prefix}*", "${local.imports_prefix}*"]
    }
  }
  statement {
    sid = "ReadSites"
    # SiteStore.list: every site, one Query of the SITE partition; an import's site: GetItem
    actions   = ["dynamodb:Query", "dynamodb:GetItem"]
    resources = [aws_dynamodb_table.this["meta"].arn]
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:LeadingKeys"
      values   = ["SITE"]
    }
  }
  statement {
    sid       = "DeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.aggregator_dlq.arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda["archive"].arn}:*"]
  }
}

# reports (reports/handler.py, decision 0038): every site read for its zone (one Query of the site
# list), and where a report is due the site's subscriptions and sent markers (REPORTS#<site>):
# a marker claimed with a conditional PutItem, marked sent (UpdateItem), or deleted after a
# failed send. The report's questions are the stats API's: counters read from aggregates and,
# for what they refuse, the site's archived days listed and fetched (events/ only, read only).
# The unsubscribe links' key is derived from the session key, and the links' origin may be the
# public URL parameter (both SSM). Sending: the email policy (reports.tf). A failed run goes to
# the dead-letter queue with this role.
data "aws_iam_policy_document" "reports" {
  statement {
    sid       = "ReadSites"
    actions   = ["dynamodb:Query"]
    resources = [aws_dynamodb_table.this["meta"].arn]
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:LeadingKeys"
      values   = ["SITE"]
    }
  }
  statement {
    sid       = "Subscriptions"
    actions   = ["dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
    resources = [aws_dynamodb_table.this["meta"].arn]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["REPORTS#*"]
    }
  }
  # the counter partitions only (`C#…`, core/keys.py), never the visitor states beside them
  statement {
    sid       = "Counters"
    actions   = ["dynamodb:Query"]
    resources = [aws_dynamodb_table.this["aggregates"].arn]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["C#*"]
    }
  }
  statement {
    sid       = "ArchiveRead"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.archive.arn}/${local.archive_prefix}*"]
  }
  statement {
    sid       = "ArchiveList"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.archive.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.archive_prefix}*"]
    }
  }
  statement {
    sid     = "LinkSecrets"
    actions = ["ssm:GetParameter"]
    resources = [
      local.secret_parameter_arns.session_signing_key,
      local.public_url_parameter_arn,
    ]
  }
  statement {
    sid       = "DeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.aggregator_dlq.arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda["reports"].arn}:*"]
  }
}

# alerts (alerts/handler.py): a message's rule read (its webhook and secret), the delivery log
# read and written, and a failed message's visibility stretched to the next backoff. The event
# source mapping receives and deletes the queue's messages with this role.
data "aws_iam_policy_document" "alerts" {
  statement {
    sid       = "ReadRules"
    actions   = ["dynamodb:GetItem"]
    resources = [aws_dynamodb_table.this["meta"].arn]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["ALERTS#*"]
    }
  }
  statement {
    sid       = "DeliveryLog"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [aws_dynamodb_table.this["meta"].arn]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["ALERTLOG#*"]
    }
  }
  statement {
    sid       = "Backoff"
    actions   = ["sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.alerts.arn]
  }
  statement {
    sid       = "ReadQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.alerts.arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda["alerts"].arn}:*"]
  }
}

# alert_schedule (alerts/schedule.py, decision 0037): the schedule's index read and a site taken
# off it, the listed sites' rules read and their moves recorded (conditional UpdateItem), in the
# rules' partitions only; a site read for its time zone; the counters read (hours, minutes, the
# days' sources and slots) in the counter partitions only; a message queued.
data "aws_iam_policy_document" "alert_schedule" {
  statement {
    sid       = "AlertRules"
    actions   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.this["meta"].arn]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["ALERTS#*"]
    }
  }
  statement {
    sid       = "ReadSites"
    actions   = ["dynamodb:GetItem"]
    resources = [aws_dynamodb_table.this["meta"].arn]
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:LeadingKeys"
      values   = ["SITE"]
    }
  }
  statement {
    sid       = "Counters"
    actions   = ["dynamodb:Query"]
    resources = [aws_dynamodb_table.this["aggregates"].arn]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["C#*"]
    }
  }
  statement {
    sid       = "QueueAlerts"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.alerts.arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda["alert_schedule"].arn}:*"]
  }
}
