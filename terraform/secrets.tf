# Secrets, and what Terraform may know of them (decision 0016).
#
# The sign-in secrets (the session-signing key and the admin password hash) are SSM SecureString
# parameters that scripts/deploy.sh creates with `aws ssm put-parameter` and the RUNBOOK's steps
# change; Terraform only names them. A parameter resource would keep its value in the state, and
# one with ignore_changes still reads it back into the state on every refresh. The query function
# reads both with ssm:GetParameter (its role allows exactly these two) and caches them for a few
# minutes (query_api/auth.py), so a new password hash takes effect without a deployment.
# Standard parameters are free, where Secrets Manager costs $0.40 per secret and month.

locals {
  secret_parameters = {
    session_signing_key = "/${var.project_name}/${var.environment}/session-signing-key"
    admin_password_hash = "/${var.project_name}/${var.environment}/admin-password-hash"
  }
  secret_parameter_arns = {
    for key, name in local.secret_parameters :
    key => "arn:${data.aws_partition.current.partition}:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter${name}"
  }
}

data "aws_partition" "current" {}

# Deployments made before the parameters moved out of Terraform: forget them, do not delete them.
removed {
  from = aws_ssm_parameter.session_signing_key
  lifecycle {
    destroy = false
  }
}

removed {
  from = aws_ssm_parameter.admin_password_hash
  lifecycle {
    destroy = false
  }
}

# The origin secret CloudFront adds to every request it sends the function URLs (cdn.tf), the one
# proof that a request's CloudFront-Viewer-Address and -Country are CloudFront's (core/edge.py).
# It is the one secret in the state, by necessity: CloudFront's origin configuration, custom
# headers included, is part of the distribution's state whoever generates the value. So it is
# generated here, where rotating it is one apply, and it guards nothing but those headers.
#
# Three generations exist at a time: CloudFront sends generation N, the functions accept N - 1,
# N and N + 1 (by SHA-256 digest: their environment holds no secret). Raising
# origin_secret_generation to N + 1 makes CloudFront send a secret the functions already accept,
# and the functions then accept N, N + 1 and N + 2: the generation any edge location sends,
# the old or the new, is accepted before, during and after the apply, whichever of the
# distribution and the functions it updates first. The functions cannot wait for the
# distribution (decision 0023: it names their URLs, so that would be a cycle). The price: after
# a suspected leak of generation N, raise the generation twice (two applies) before N stops
# counting.
resource "random_password" "origin_secret" {
  for_each = toset([
    tostring(var.origin_secret_generation - 1),
    tostring(var.origin_secret_generation),
    tostring(var.origin_secret_generation + 1),
  ])

  length  = 48
  special = false
}

locals {
  origin_secret = random_password.origin_secret[tostring(var.origin_secret_generation)].result
  origin_secret_digests = join(",", [
    for generation in sort(keys(random_password.origin_secret)) :
    sha256(random_password.origin_secret[generation].result)
  ])
}
