#!/usr/bin/env bash
# `make deploy`: sam build + sam deploy of template.yaml. Parameters come from the environment
# (README, "Deployment"); a file of KEY=value lines can hold them: DEPLOY_ENV=prod.env make deploy.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${DEPLOY_ENV:-}" ]; then
  set -a
  # shellcheck disable=SC1090
  . "$DEPLOY_ENV"
  set +a
fi

command -v sam >/dev/null || {
  cat >&2 <<'MSG'
`sam` (AWS SAM CLI) is not installed. Install it, e.g. into the project venv:
  .venv/bin/pip install aws-sam-cli && export PATH="$PWD/.venv/bin:$PATH"
or with AWS's installer, then run `make deploy` again. AWS credentials for the target
account must be available as for the aws CLI (AWS_PROFILE, SSO, environment variables).
MSG
  exit 1
}

missing=()
for var in AUTH0_ISSUER AUTH0_AUDIENCE CORS_ALLOWED_ORIGINS FRONTEND_URL APP_SECRET_ARN \
  DB_SECRET_ARN DB_HOST DB_NAME SUBNET_IDS SECURITY_GROUP_IDS; do
  [ -n "${!var:-}" ] || missing+=("$var")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "make deploy needs: ${missing[*]} (README, \"Deployment\")" >&2
  exit 1
fi

# cargo lambda and zig for `sam build` (BuildMethod: rust-cargolambda), from the project venv.
scripts/venv.sh build
export PATH="$PWD/.venv/bin:$PATH"
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
  || rustup target add aarch64-unknown-linux-gnu

# The RDS CA bundle layer (/opt/rds/global-bundle.pem in the functions).
layer=.local/rds-ca-layer/rds
mkdir -p "$layer"
if [ -n "${RDS_CA_BUNDLE:-}" ]; then
  cp "$RDS_CA_BUNDLE" "$layer/global-bundle.pem"
elif [ ! -s "$layer/global-bundle.pem" ]; then
  curl -fsSL -o "$layer/global-bundle.pem" https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
fi
grep -q "BEGIN CERTIFICATE" "$layer/global-bundle.pem" \
  || { echo "$layer/global-bundle.pem is not a PEM bundle" >&2; exit 1; }

# sam's `Key=Value` form needs quotes around values holding spaces or commas.
overrides=(
  "Auth0Issuer=\"$AUTH0_ISSUER\""
  "Auth0Audience=\"$AUTH0_AUDIENCE\""
  "CorsAllowedOrigins=\"$CORS_ALLOWED_ORIGINS\""
  "FrontendUrl=\"$FRONTEND_URL\""
  # The set-password page's origin for CORS: FRONTEND_URL's scheme and host unless given.
  "FrontendOrigin=\"${FRONTEND_ORIGIN:-$(sed -E 's#^(https?://[^/?#]+).*#\1#' <<<"$FRONTEND_URL")}\""
  "AppSecretArn=\"$APP_SECRET_ARN\""
  "DatabaseSecretArn=\"$DB_SECRET_ARN\""
  "DatabaseHost=\"$DB_HOST\""
  "DatabaseName=\"$DB_NAME\""
  "SubnetIds=\"$SUBNET_IDS\""
  "SecurityGroupIds=\"$SECURITY_GROUP_IDS\""
)
optional() { # environment variable, template parameter
  [ -z "${!1:-}" ] || overrides+=("$2=\"${!1}\"")
}
optional DB_PORT DatabasePort
optional DB_SSL_ROOT_CERT DatabaseSslRootCert
optional SECRETS_KMS_KEY_ARN SecretsKmsKeyArn
optional CLEANUP_SCHEDULE CleanupSchedule
optional CLEANUP_AUTH0_MAX_CALLS_PER_RUN CleanupAuth0CallsPerRun
optional CLEANUP_AUTH0_FULL_PASS_HOURS CleanupFullPassHours
optional LOG_RETENTION_DAYS LogRetentionDays
optional ALARM_TOPIC_ARN AlarmTopicArn
optional ROLLBACK_ALARM_THRESHOLD RollbackAlarmThreshold
optional EMAIL_API_URL EmailApiUrl
optional AUTH0_REVOKE_SESSIONS Auth0RevokeSessions
optional PUBLIC_THROTTLING_RATE_LIMIT PublicThrottlingRateLimit
optional PUBLIC_THROTTLING_BURST_LIMIT PublicThrottlingBurstLimit

# rust-cargolambda is a beta build method of SAM.
sam build --beta-features --template-file template.yaml
sam deploy \
  --stack-name "${STACK_NAME:-atomic-user-provisioning}" \
  ${AWS_REGION:+--region "$AWS_REGION"} \
  --capabilities CAPABILITY_IAM \
  --resolve-s3 \
  --no-fail-on-empty-changeset \
  ${CONFIRM_CHANGESET:+--confirm-changeset} \
  --parameter-overrides "${overrides[@]}"
