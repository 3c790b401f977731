#!/usr/bin/env bash
# Deploy LiveInsight into the AWS account of the current credentials:
#   1. build the Lambda zips (make package) and the dashboard and tracker (make build);
#   2. terraform init + apply (arguments are passed to apply: -var, -var-file, -auto-approve);
#   3. create the sign-in secrets in SSM Parameter Store (SecureString) if they do not exist yet:
#      a random session-signing key, and the admin password hash's placeholder `unset`
#      (RUNBOOK.md sets the hash). Terraform only names them, so no sign-in secret is ever in
#      its state (decision 0016);
#   4. upload the dashboard and the tracker to the private bucket, invalidate CloudFront;
#   5. print the dashboard URL, the API URL (CloudFront's /api) and the tracker snippet.
#
#   scripts/deploy.sh -var alarm_email=oncall@example.com
#   scripts/deploy.sh -var-file=prod.tfvars -auto-approve
#
# Needs: python3.11, node + npm, terraform >= 1.7, the AWS CLI, credentials (AWS_PROFILE, ...).
# State stays local (terraform/terraform.tfstate, git-ignored) unless you add a backend. It holds
# the origin secret CloudFront sends the functions' URLs (CloudFront's configuration is in the
# state whoever makes the value), so keep it private: an encrypted backend with restricted access.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TF_DIR=${TF_DIR:-terraform}

for tool in make npm terraform aws; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "deploy: $tool is not installed" >&2
    exit 1
  fi
done
aws sts get-caller-identity --query Arn --output text >/dev/null || {
  echo "deploy: no AWS credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID)" >&2
  exit 1
}

tf() { terraform -chdir="$TF_DIR" "$@"; }
output() { tf output -raw "$1"; }
# One entry of a map output (secret_parameters), without needing jq.
output_entry() {
  tf output -json "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# Secrets are written to a private temporary file and passed as file://, never as an argument
# (visible to every user of this machine in the process list) and never to Terraform.
secret_file=$(mktemp)
chmod 600 "$secret_file"
trap 'rm -f "$secret_file"' EXIT

# Create an SSM SecureString parameter from $secret_file, or leave an existing one as it is
# (rotating and setting secrets is the RUNBOOK's, with put-parameter --overwrite).
create_parameter() {
  local name=$1 description=$2 failure
  if failure=$(aws ssm put-parameter --name "$name" --type SecureString \
    --value "file://$secret_file" --description "$description" 2>&1 >/dev/null); then
    echo "    created $name"
  elif [[ $failure == *ParameterAlreadyExists* ]]; then
    echo "    kept $name"
  else
    echo "$failure" >&2
    exit 1
  fi
}

echo "==> packaging the Lambdas and building the static assets"
make package build

echo "==> terraform apply"
tf init -input=false
tf apply -input=false "$@"

echo "==> sign-in secrets in SSM Parameter Store"
python3 -c 'import secrets, sys; sys.stdout.write(secrets.token_urlsafe(48))' >"$secret_file"
create_parameter "$(output_entry secret_parameters session_signing_key)" \
  "HMAC key that signs dashboard session cookies. Rotating it logs everyone out."
printf unset >"$secret_file"
create_parameter "$(output_entry secret_parameters admin_password_hash)" \
  "scrypt hash of the dashboard admin password (liveinsight admin hash-password); unset: sign-in is off."
: >"$secret_file"

bucket=$(output static_bucket)
distribution=$(output cloudfront_distribution_id)

echo "==> uploading the tracker and the dashboard to s3://$bucket"
# The tracker first, so a dashboard sync with --delete never removes it.
aws s3 cp tracker/dist/script.js "s3://$bucket/js/script.js" \
  --cache-control "public, max-age=300" --content-type "application/javascript; charset=utf-8"
# Assets: cached 5 minutes (as the local front serves them); js/ and *.html are excluded, so
# --delete leaves the tracker alone and the HTML is uploaded below with its own headers.
aws s3 sync dashboard/dist "s3://$bucket/" --delete \
  --exclude "js/*" --exclude "*.html" --cache-control "public, max-age=300"
# HTML: revalidated on every load, so a deploy shows at once.
aws s3 sync dashboard/dist "s3://$bucket/" --delete \
  --exclude "*" --include "*.html" --cache-control "no-cache" \
  --content-type "text/html; charset=utf-8"

echo "==> invalidating CloudFront ($distribution)"
aws cloudfront create-invalidation --distribution-id "$distribution" --paths "/*" \
  --query Invalidation.Id --output text

cat <<DONE

LiveInsight is deployed.
  dashboard:  $(output dashboard_url)
  API:        $(output api_url)
  tracker:    $(output tracker_snippet)

Register a site and get its read key (point the CLI at the deployment first, RUNBOOK.md):
  .venv/bin/liveinsight site add example.com
If you set alarm_email, confirm the subscription mail SNS sent you, or no alarm will reach you.
DONE
