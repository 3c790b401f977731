# HTTP API (payload format 2.0). CloudFront routes /api/* here; ingest paths go to the ingest
# function, every other /api/* path to the query function (as the local front does).

resource "aws_apigatewayv2_api" "http" {
  name          = local.name
  protocol_type = "HTTP"
  description   = "LiveInsight ingest and query API"
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
  # $context.identity.sourceIp and no user agent (DESIGN.md invariant 5).
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId         = "$context.requestId"
      routeKey          = "$context.routeKey"
      status            = "$context.status"
      responseLatencyMs = "$context.responseLatency"
      integrationStatus = "$context.integrationStatus"
      integrationError  = "$context.integrationErrorMessage"
      responseLength    = "$context.responseLength"
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
