# Secrets for the dashboard login: SSM SecureString parameters (free for standard parameters,
# where Secrets Manager costs $0.40 per secret and month). The query function reads both with
# ssm:GetParameter (its role allows exactly these two) and caches them for a few minutes
# (query_api/auth.py), so a new password hash takes effect without a deployment.

resource "random_password" "session_signing_key" {
  length  = 64
  special = false
}

resource "aws_ssm_parameter" "session_signing_key" {
  #checkov:skip=CKV_AWS_337:Encrypted with the AWS-managed aws/ssm key; a customer-managed key ($1/month) would protect nothing more for a single-tenant deployment.
  name        = "/${var.project_name}/${var.environment}/session-signing-key"
  description = "HMAC key that signs dashboard session cookies. Rotating it logs everyone out."
  type        = "SecureString"
  value       = random_password.session_signing_key.result
}

resource "aws_ssm_parameter" "admin_password_hash" {
  #checkov:skip=CKV_AWS_337:Encrypted with the AWS-managed aws/ssm key; a customer-managed key ($1/month) would protect nothing more for a single-tenant deployment.
  name        = "/${var.project_name}/${var.environment}/admin-password-hash"
  description = "scrypt hash of the dashboard admin password (liveinsight admin hash-password). Set out of band (RUNBOOK.md), never in Terraform state."
  type        = "SecureString"
  value       = "unset"

  lifecycle {
    ignore_changes = [value]
  }
}
