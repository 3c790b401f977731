# The dashboard and tracker on a private S3 bucket behind CloudFront (origin access control);
# /api/* goes uncached to the functions' URLs (api.tf), so the dashboard and the API share one
# origin.

data "aws_caller_identity" "current" {}

resource "aws_s3_bucket" "static" {
  #checkov:skip=CKV_AWS_18:No S3 access logs: every request reaches the bucket through CloudFront, and those logs would hold viewer IP addresses and user agents (DESIGN.md invariant 5).
  #checkov:skip=CKV_AWS_144:No cross-region replication: the bucket holds build output, re-uploaded by scripts/deploy.sh from the repository.
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES-256), not KMS: CloudFront's origin access control would need a key policy for a CMK, and the objects are public web assets.
  #checkov:skip=CKV2_AWS_62:No event notifications: nothing reacts to uploads; scripts/deploy.sh invalidates CloudFront itself.
  bucket = "${local.name}-static-${data.aws_caller_identity.current.account_id}"
}

resource "aws_s3_bucket_public_access_block" "static" {
  bucket                  = aws_s3_bucket.static.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "static" {
  bucket = aws_s3_bucket.static.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "static" {
  bucket = aws_s3_bucket.static.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "static" {
  bucket = aws_s3_bucket.static.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "static" {
  bucket = aws_s3_bucket.static.id
  rule {
    id     = "expire-old-builds"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
  depends_on = [aws_s3_bucket_versioning.static]
}

data "aws_iam_policy_document" "static_bucket" {
  statement {
    sid       = "CloudFrontReadsThroughOAC"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.static.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.this.arn]
    }
  }
  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.static.arn, "${aws_s3_bucket.static.arn}/*"]
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

resource "aws_s3_bucket_policy" "static" {
  bucket     = aws_s3_bucket.static.id
  policy     = data.aws_iam_policy_document.static_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.static]
}

resource "aws_cloudfront_origin_access_control" "static" {
  name                              = "${local.name}-static"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

# Static assets: cached at the edge, honouring the Cache-Control scripts/deploy.sh sets on upload
# (HTML no-cache; tracker and assets 5 minutes, as the local front serves them).
resource "aws_cloudfront_cache_policy" "static" {
  name        = "${local.name}-static"
  min_ttl     = 0
  default_ttl = 300
  max_ttl     = 31536000

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_brotli = true
    enable_accept_encoding_gzip   = true
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "none"
    }
  }
}

# /api/*: never cached; every viewer header but Host goes to the function URLs (a function URL
# answers 403 to a foreign Host). The managed policy also forwards CloudFront-Viewer-Address and
# -Country, which the functions believe only with the origin secret (the origins' custom_header
# below); query strings and cookies go too (shared-link tokens, the admin's session).
data "aws_cloudfront_cache_policy" "disabled" {
  name = "Managed-CachingDisabled"
}

data "aws_cloudfront_origin_request_policy" "all_viewer_except_host" {
  name = "Managed-AllViewerExceptHostHeader"
}

# Ingest paths: the viewer headers ingest reads, and CloudFront's viewer address and location
# (country, ISO 3166-2 subdivision, city; believed only with the origin secret, decision 0016),
# never its latitude, longitude, postal code or time zone headers (nothing finer than a city is
# stored, docs/DESIGN.md invariant 5). Not Host: a function URL answers 403 to a foreign Host.
# User-Agent must be listed: CloudFront sends its own otherwise, and every visitor would hash
# alike.
resource "aws_cloudfront_origin_request_policy" "ingest" {
  name    = "${local.name}-ingest"
  comment = "Ingest: the tracker's headers and the viewer's address and location, not Host"
  cookies_config {
    cookie_behavior = "none"
  }
  headers_config {
    header_behavior = "whitelist"
    headers {
      items = [
        "User-Agent",
        "Content-Type",
        "Origin",
        "Access-Control-Request-Method",
        "Access-Control-Request-Headers",
        "CloudFront-Viewer-Address",
        "CloudFront-Viewer-Country",
        "CloudFront-Viewer-Country-Region",
        "CloudFront-Viewer-City",
      ]
    }
  }
  query_strings_config {
    query_string_behavior = "all"
  }
}

resource "aws_cloudfront_response_headers_policy" "security" {
  name    = "${local.name}-security"
  comment = "CSP, HSTS and the other headers local/front.py serves"

  security_headers_config {
    content_security_policy {
      content_security_policy = local.content_security_policy
      override                = true
    }
    content_type_options {
      override = true
    }
    frame_options {
      frame_option = "DENY"
      override     = true
    }
    referrer_policy {
      referrer_policy = "strict-origin-when-cross-origin"
      override        = true
    }
    strict_transport_security {
      access_control_max_age_sec = 63072000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
  }
}

# The tracker is loaded by other sites: the same headers, plus CORS for any origin, and a day in
# the browser's cache (decision 0026): a fetch is a CloudFront request ($1.15 per million with
# its bytes), and with S3's 5 minutes a visitor fetched it again after every 5-minute gap. Edges
# keep S3's 5 minutes (and deploy.sh invalidates them), so a fix reaches browsers within a day.
resource "aws_cloudfront_response_headers_policy" "tracker" {
  name    = "${local.name}-tracker"
  comment = "Security headers, CORS and a day's browser cache for /js/* (the tracker)"

  custom_headers_config {
    items {
      header   = "Cache-Control"
      value    = "public, max-age=86400"
      override = true
    }
  }

  cors_config {
    access_control_allow_credentials = false
    origin_override                  = true
    access_control_allow_headers {
      items = ["*"]
    }
    access_control_allow_methods {
      items = ["GET", "HEAD"]
    }
    access_control_allow_origins {
      items = ["*"]
    }
  }

  security_headers_config {
    content_type_options {
      override = true
    }
    referrer_policy {
      referrer_policy = "strict-origin-when-cross-origin"
      override        = true
    }
    strict_transport_security {
      access_control_max_age_sec = 63072000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
  }
}

resource "aws_cloudfront_distribution" "this" {
  #checkov:skip=CKV_AWS_86:No CloudFront access logs: they record every viewer's IP address and user agent, which LiveInsight promises never to store (DESIGN.md invariant 5).
  #checkov:skip=CKV_AWS_68:No WAF: a web ACL costs $5/month plus rules, against a product that scales to zero (decision 0023); reserved concurrency can bound ingest and query, and ingest drops bots itself.
  #checkov:skip=CKV2_AWS_47:No WAF (see CKV_AWS_68); the functions are Python, not Java, so Log4j rules protect nothing here.
  #checkov:skip=CKV_AWS_310:No origin failover: each path has one origin (S3 for assets, a function URL for each /api/* path), all regional managed services.
  #checkov:skip=CKV_AWS_374:No geo restriction: websites anywhere send analytics events.
  #checkov:skip=CKV2_AWS_42:A custom certificate is used when var.domain is set (var.acm_certificate_arn); without a domain CloudFront's default certificate is the only one possible.
  #checkov:skip=CKV_AWS_174:TLSv1.2_2021 is set whenever a custom certificate is used; with CloudFront's default certificate AWS fixes the minimum at TLSv1.
  comment             = "${local.name}: dashboard, tracker, /api/*"
  enabled             = true
  is_ipv6_enabled     = true
  http_version        = "http2and3"
  price_class         = var.price_class
  default_root_object = "index.html"
  aliases             = var.domain == "" ? [] : [var.domain]

  origin {
    origin_id                = "static"
    domain_name              = aws_s3_bucket.static.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.static.id
  }

  # Each function's URL (api.tf). The origin secret is the proof that a request came through
  # CloudFront, checked before the functions believe its CloudFront-Viewer-Address and -Country
  # (core/edge.py ORIGIN_HEADER, decision 0016). CloudFront replaces a viewer's header of the
  # same name.
  origin {
    origin_id   = "ingest"
    domain_name = local.function_url_hosts["ingest"]
    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
    custom_header {
      name  = "X-LiveInsight-Origin"
      value = local.origin_secret
    }
  }

  origin {
    origin_id   = "query"
    domain_name = local.function_url_hosts["query"]
    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
    custom_header {
      name  = "X-LiveInsight-Origin"
      value = local.origin_secret
    }
  }

  default_cache_behavior {
    target_origin_id           = "static"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD", "OPTIONS"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = aws_cloudfront_cache_policy.static.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id
    compress                   = true
  }

  # The ingest paths to ingest's URL. CloudFront takes the first behavior that matches, and a
  # dynamic block's blocks stand where it is written: before /api/*.
  dynamic "ordered_cache_behavior" {
    for_each = local.ingest_paths
    content {
      path_pattern = ordered_cache_behavior.value
      # https-only, not redirect: a redirected POST would lose its body.
      target_origin_id           = "ingest"
      viewer_protocol_policy     = "https-only"
      allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
      cached_methods             = ["GET", "HEAD"]
      cache_policy_id            = data.aws_cloudfront_cache_policy.disabled.id
      origin_request_policy_id   = aws_cloudfront_origin_request_policy.ingest.id
      response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id
      compress                   = true
    }
  }

  # Every other /api/* path to query's URL.
  ordered_cache_behavior {
    path_pattern = "/api/*"
    # https-only, not redirect: a redirected POST would lose its body.
    target_origin_id           = "query"
    viewer_protocol_policy     = "https-only"
    allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = data.aws_cloudfront_cache_policy.disabled.id
    origin_request_policy_id   = data.aws_cloudfront_origin_request_policy.all_viewer_except_host.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id
    compress                   = true
  }

  ordered_cache_behavior {
    path_pattern               = "/js/*"
    target_origin_id           = "static"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD", "OPTIONS"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = aws_cloudfront_cache_policy.static.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.tracker.id
    compress                   = true
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = var.domain == ""
    acm_certificate_arn            = var.domain == "" ? null : var.acm_certificate_arn
    ssl_support_method             = var.domain == "" ? null : "sni-only"
    minimum_protocol_version       = var.domain == "" ? "TLSv1" : "TLSv1.2_2021"
  }

  lifecycle {
    precondition {
      condition     = var.domain == "" || var.acm_certificate_arn != ""
      error_message = "Set acm_certificate_arn (a us-east-1 ACM certificate for var.domain) when domain is set."
    }
  }
}
