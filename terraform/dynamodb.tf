# Tables, keys, TTL attributes, the stream and the GSIs all come from core/schema.json.
resource "aws_dynamodb_table" "this" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS-owned key. A customer-managed key costs $1/month each plus requests, against a product that scales to zero; nothing secret is stored (keys are SHA-256 hashes, visitors salted hashes).
  #checkov:skip=CKV_AWS_28:Point-in-time recovery is set per table from schema.json (aggregates and meta on; raw events off: they expire after 7 days and feed the aggregates). Checkov cannot evaluate for_each values.
  for_each = local.schema.tables

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
