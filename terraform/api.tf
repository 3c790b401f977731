# The front door (decision 0023): a Lambda function URL for ingest and one for query, behind
# CloudFront (cdn.tf: the ingest paths to ingest's URL, every other /api/* path to query's, as the
# local front routes them). A function URL costs nothing per request, where the HTTP API it
# replaces cost $1 per million plus its access log.
#
# Auth type NONE: CloudFront's origin access control (AWS_IAM) would need every viewer to send
# the SHA-256 of a POST body, which no tracker does (decision 0016, option 3). A caller who finds
# a URL is treated like any client: without the origin secret its CloudFront-* headers are
# ignored (core/edge.py), and everything else is checked in code, as behind CloudFront.
resource "aws_lambda_function_url" "this" {
  #checkov:skip=CKV_AWS_258:Public by design: ingest takes events from any website and the query function authenticates each request itself (keys, share tokens, the admin session); CloudFront's origin access control (AWS_IAM) would need viewers to sign POST bodies, which trackers do not (decision 0016, 0023).
  for_each = toset(["ingest", "query"])

  function_name      = aws_lambda_function.this[each.key].function_name
  authorization_type = "NONE"
  invoke_mode        = "BUFFERED"
  # No cors block: a preflight reaches ingest, which answers it itself (any origin may send
  # events), and the dashboard calls query from its own origin.
}

# Since October 2025 a public function URL needs both statements in the function's policy:
# lambda:InvokeFunctionUrl for auth type NONE, and lambda:InvokeFunction only when invoked
# through a function URL (provider >= 6.29: invoked_via_function_url). Without that condition
# the second would let any AWS principal invoke the functions directly with made-up events.
resource "aws_lambda_permission" "function_url" {
  #checkov:skip=CKV_AWS_301:A public function URL (auth type NONE) needs lambda:InvokeFunctionUrl for principal *, limited by the lambda:FunctionUrlAuthType condition; the functions check every request themselves (decision 0023).
  for_each = aws_lambda_function_url.this

  statement_id           = "AllowPublicFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = each.value.function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "invoked_via_function_url" {
  #checkov:skip=CKV_AWS_301:Principal * may invoke only through the function URL (the lambda:InvokedViaFunctionUrl condition), which AWS requires of a public URL since October 2025; not a direct Invoke grant (decision 0023).
  for_each = aws_lambda_function_url.this

  statement_id             = "AllowInvokeViaFunctionUrl"
  action                   = "lambda:InvokeFunction"
  function_name            = each.value.function_name
  principal                = "*"
  invoked_via_function_url = true
}

locals {
  # "https://<id>.lambda-url.<region>.on.aws/" -> the host CloudFront connects to.
  function_url_hosts = {
    for key, url in aws_lambda_function_url.this :
    key => replace(replace(url.function_url, "https://", ""), "/", "")
  }
}

# The dashboard's origin, for the query function when there is no custom domain: it cannot be in
# the function's environment, as the distribution's domain is known only once the distribution
# exists, and the distribution names the function's URL (a cycle). Not a secret: a String
# parameter, read by the function on the admin paths that need it (query_api/deps.py PublicUrl),
# with ssm:GetParameter on this one name (iam.tf). Standard parameters are free.
resource "aws_ssm_parameter" "public_url" {
  #checkov:skip=CKV2_AWS_34:Not a secret: the dashboard's public address (https://<distribution>.cloudfront.net or the custom domain), printed by scripts/deploy.sh; a String parameter needs no decryption grant.
  name        = local.public_url_parameter
  description = "The dashboard's origin: the query function's CSRF check, cookies and shared links."
  type        = "String"
  value       = "https://${local.public_host}"
}
