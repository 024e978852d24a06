#!/usr/bin/env bash
# Checks the SAM template (infra/template.yaml) offline, with no AWS credentials:
#   1. cfn-lint;
#   2. `sam validate --lint` (SAM's transform, then cfn-lint on the result);
#   3. infra/check_template.py, hookvault's own rules (least privilege, DLQ and visibility
#      timeout, partial batch responses, 90-day rotation, locked-down buckets), and its
#      unit tests;
#   4. scripts/deploy-lambdas.sh offline (infra/test_deploy_lambdas.py): the `cargo lambda
#      deploy` commands it prints for the fixtures of a stack's outputs and its functions'
#      configuration (infra/fixtures/), and its refusals.
# Installs aws-sam-cli and cfn-lint (pinned) into .tools/venv-sam once (scripts/lib/tools.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh

hv_sam
template=infra/template.yaml

# Nothing here may reach AWS: dummy credentials (no profile lookup, no instance metadata),
# no telemetry. `sam validate --lint` only lints; without --lint, SAM would ask IAM for the
# list of managed policies. Where this machine allows network namespaces, the checks run
# in one without any network, so a check that started calling AWS would fail here.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0
# No __pycache__ left in infra/.
export PYTHONDONTWRITEBYTECODE=1
unset AWS_PROFILE AWS_ENDPOINT_URL
offline=()
if unshare -n true 2>/dev/null; then
  offline=(unshare -n --)
fi

hv_log "cfn-lint $template"
${offline[@]+"${offline[@]}"} "$HV_SAM_BIN/cfn-lint" -- "$template"
echo "cfn-lint: no errors or warnings"

hv_log "sam validate --lint $template"
${offline[@]+"${offline[@]}"} "$HV_SAM_BIN/sam" validate --lint --template "$template" --region us-east-1

hv_log "infra/check_template.py $template"
${offline[@]+"${offline[@]}"} "$HV_SAM_BIN/python" infra/check_template.py "$template"

hv_log "infra/'s tests: check_template.py, deploy-lambdas.sh (offline, infra/fixtures/)"
${offline[@]+"${offline[@]}"} "$HV_SAM_BIN/python" -m unittest discover -s infra -p 'test_*.py'
