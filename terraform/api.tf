# HTTP API (payload format 2.0). CloudFront routes /api/* here; ingest paths go to the ingest
# function, every other /api/* path to the query function (as the local front does).

resource "aws_apigatewayv2_api" "http" {
  name          = local.name
  protocol_type = "HTTP"
  description   = "LiveInsight ingest and query API"
  # With a custom domain for the origin, CloudFront is the only way in: the execute-api endpoint
  # answers 403. Without one it must stay on, as CloudFront's origin (a disabled default
  # endpoint refuses CloudFront too); the origin secret then guards the CloudFront-* headers.
  disable_execute_api_endpoint = local.api_origin_custom_domain
}

# API Gateway's own custom domain, CloudFront's origin for /api/* when var.api_origin_domain is
# set (e.g. api-origin.stats.example.com, a name only CloudFront uses).
resource "aws_apigatewayv2_domain_name" "origin" {
  count = local.api_origin_custom_domain ? 1 : 0

  domain_name = var.api_origin_domain
  domain_name_configuration {
    certificate_arn = var.api_origin_certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }

  lifecycle {
    precondition {
      condition     = var.api_origin_certificate_arn != ""
      error_message = "Set api_origin_certificate_arn (an ACM certificate in var.region for api_origin_domain) when api_origin_domain is set."
    }
  }
}

resource "aws_apigatewayv2_api_mapping" "origin" {
  count = local.api_origin_custom_domain ? 1 : 0

  api_id      = aws_apigatewayv2_api.http.id
  domain_name = aws_apigatewayv2_domain_name.origin[0].id
  stage       = aws_apigatewayv2_stage.default.id
}

# The origin name's DNS record, when its Route 53 zone is given; else create a CNAME to the
# api_origin_target output yourself (RUNBOOK.md) before CloudFront needs it.
resource "aws_route53_record" "api_origin" {
  count = local.api_origin_custom_domain && var.api_origin_zone_id != "" ? 1 : 0

  zone_id = var.api_origin_zone_id
  name    = var.api_origin_domain
  type    = "A"
  alias {
    name                   = aws_apigatewayv2_domain_name.origin[0].domain_name_configuration[0].target_domain_name
    zone_id                = aws_apigatewayv2_domain_name.origin[0].domain_name_configuration[0].hosted_zone_id
    evaluate_target_health = false
  }
}

locals {
  api_origin_custom_domain = var.api_origin_domain != ""
  # Not the mapping's name: the mapping follows the stage, the stage the routes and functions,
  # and the functions the distribution (lambda.tf), so that would be a cycle.
  api_origin_host = (
    local.api_origin_custom_domain
    ? aws_apigatewayv2_domain_name.origin[0].domain_name
    : replace(aws_apigatewayv2_api.http.api_endpoint, "https://", "")
  )
}

resource "aws_apigatewayv2_integration" "function" {
  for_each = toset(["ingest", "query"])

  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = aws_lambda_function.this[each.key].invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = local.functions[each.key].timeout * 1000
}

locals {
  # Ingest answers OPTIONS (CORS preflight for any origin) and rejects other methods itself.
  routes = merge(
    { for path in local.ingest_paths : "ANY ${path}" => "ingest" },
    { "ANY /api/{proxy+}" = "query" },
  )
}

resource "aws_apigatewayv2_route" "this" {
  #checkov:skip=CKV_AWS_309:Ingest is a public endpoint by design (any website posts events); the query function authenticates each request with per-site bearer keys in code (query_api/app.py), which API Gateway authorizers cannot express.
  for_each = local.routes

  api_id    = aws_apigatewayv2_api.http.id
  route_key = each.key
  target    = "integrations/${aws_apigatewayv2_integration.function[each.value].id}"
}

resource "aws_cloudwatch_log_group" "api_access" {
  #checkov:skip=CKV_AWS_158:Encrypted with CloudWatch Logs' own key; the access log format below leaves out IP addresses and user agents.
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days (30 days by default): operational logs only.
  name              = "/aws/apigateway/${local.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.query_throttle.rate
    throttling_burst_limit = var.query_throttle.burst
  }

  dynamic "route_settings" {
    for_each = { for key, fn in local.routes : key => fn if fn == "ingest" }
    content {
      route_key              = route_settings.key
      throttling_rate_limit  = var.ingest_throttle.rate
      throttling_burst_limit = var.ingest_throttle.burst
    }
  }

  # requestId is the correlation_id of the function's log lines. Deliberately no
  # $context.identity.sourceIp and no user agent (DESIGN.md invariant 5). A line is paid for on
  # every request (two a pageview), so it holds what finds a failure and no more: latency is in
  # Lambda's Duration metric, sizes in CloudFront's (decision 0021: 171 -> ~100 bytes a line).
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId        = "$context.requestId"
      routeKey         = "$context.routeKey"
      status           = "$context.status"
      integrationError = "$context.integrationErrorMessage"
    })
  }

  depends_on = [aws_apigatewayv2_route.this]
}

resource "aws_lambda_permission" "api" {
  for_each = toset(["ingest", "query"])

  statement_id  = "AllowApiGatewayInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.key].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*/*"
}
