# Tables, keys, TTL attributes, the stream and the GSIs all come from core/schema.json.
locals {
  # Each table's instance key is its name after the prefix: the logical name, or the schema's
  # physical_suffix for a table keyed anew (events: events-v2, decision 0040). A new key schema is
  # a new instance, and the old table's address is free to move to its legacy resource below.
  table_keys    = { for logical, table in local.schema.tables : logical => try(table.physical_suffix, logical) }
  stored_tables = { for logical, table in local.schema.tables : local.table_keys[logical] => table }
  legacy_events = local.schema.legacy_tables.events
}

resource "aws_dynamodb_table" "this" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS-owned key. A customer-managed key costs $1/month each plus requests, against a product that scales to zero; nothing secret is stored (keys are SHA-256 hashes, visitors salted hashes).
  #checkov:skip=CKV_AWS_28:Point-in-time recovery is set per table from schema.json (aggregates and meta on; raw events off: they expire after 7 days and feed the aggregates). Checkov cannot evaluate for_each values.
  for_each = local.stored_tables

  # As the local stack names it (core/schema.py Table.physical_name)
  name                        = "${local.name}-${each.key}"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.hash_key
  range_key                   = try(each.value.range_key, null)
  deletion_protection_enabled = var.deletion_protection

  dynamic "attribute" {
    for_each = each.value.attributes
    content {
      name = attribute.key
      type = attribute.value
    }
  }

  dynamic "ttl" {
    for_each = each.value.ttl_attribute == null ? [] : [each.value.ttl_attribute]
    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  stream_enabled   = each.value.stream_view_type != null
  stream_view_type = each.value.stream_view_type

  dynamic "global_secondary_index" {
    for_each = each.value.global_secondary_indexes
    content {
      name            = global_secondary_index.value.name
      hash_key        = global_secondary_index.value.hash_key
      range_key       = try(global_secondary_index.value.range_key, null)
      projection_type = global_secondary_index.value.projection
    }
  }

  point_in_time_recovery {
    enabled = each.value.point_in_time_recovery
  }
}

# The events table as it was keyed before decision 0040 (by event id alone), kept for one release
# so that its stream drains: a key schema cannot change in place, and replacing the table would
# lose the records the aggregator has not read yet. Ingest writes only the new table; the
# aggregator's two tiers keep reading this one's stream (lambda.tf) until var.drain_legacy_events
# is set false, which removes the table and its mappings (RUNBOOK.md says when).
resource "aws_dynamodb_table" "legacy_events" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS-owned key, as the events table it was (see aws_dynamodb_table.this).
  #checkov:skip=CKV_AWS_28:No point-in-time recovery, as the events table it was: raw events that expire after 7 days and are in the archive; the table only drains.
  count = var.drain_legacy_events ? 1 : 0

  name         = "${local.name}-${local.legacy_events.physical_suffix}"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = local.legacy_events.hash_key

  # Off: this table is removed by setting var.drain_legacy_events false, in one apply, once it
  # has drained; it holds nothing the aggregates and the archive do not hold already.
  deletion_protection_enabled = false

  dynamic "attribute" {
    for_each = local.legacy_events.attributes
    content {
      name = attribute.key
      type = attribute.value
    }
  }

  ttl {
    attribute_name = local.legacy_events.ttl_attribute
    enabled        = true
  }

  # The stream it had: changing its view type would replace the stream and lose its records.
  stream_enabled   = true
  stream_view_type = local.legacy_events.stream_view_type

  point_in_time_recovery {
    enabled = local.legacy_events.point_in_time_recovery
  }
}

# The deployed events table becomes the legacy one (kept, not destroyed); the new events table
# is created beside it under its new name.
moved {
  from = aws_dynamodb_table.this["events"]
  to   = aws_dynamodb_table.legacy_events[0]
}
