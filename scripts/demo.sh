#!/usr/bin/env bash
# hookvault's demo command. Part 1: the CLI signs a sample webhook the way the provider
# does, verifies it, refuses a tampered copy, and shows a key rotation. Part 2: the whole
# local pipeline — moto (SQS, S3, Secrets Manager), the edge Worker in the real workerd
# runtime, the stand-in provider, the api, archiver and rotator Lambdas under
# cargo-lambda's emulator — from a submitted prediction to its archived outputs, then a
# webhook secret rotation with the provider sending throughout.
# Pass --serve to keep the stack up at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
hv_edge_tools
hv_moto
hv_cargo_lambda

hv_log "building the hookvault CLI"
cargo build --quiet --locked -p hookvault-cli
hv="$PWD/target/debug/hookvault"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/webhook.json" <<'JSON'
{"type":"prediction.completed","data":{"id":"pred_demo_1","status":"succeeded","model":"stable-video-6s","output":["https://cdn.skytells.ai/out/pred_demo_1/video.mp4"],"error_id":null,"error_message":null}}
JSON
export HOOKVAULT_SECRET="demo-webhook-secret-$(date +%s)"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. The provider signs the webhook (x-skytells-signature over the raw body)"
"$hv" sign --scheme skytells "$work/webhook.json" | tee "$work/headers"
sig="$(cut -d' ' -f2- "$work/headers")"

step "2. hookvault verifies it (constant time, key ring)"
"$hv" verify --scheme skytells -H "x-skytells-signature: $sig" "$work/webhook.json"

step "3. A tampered body is refused with the edge's status"
sed 's/succeeded/failed/' "$work/webhook.json" > "$work/tampered.json"
if "$hv" verify --scheme skytells -H "x-skytells-signature: $sig" "$work/tampered.json"; then
  echo "tampered body accepted: this is a bug" >&2; exit 1
fi

step "4. During a rotation both secrets verify; the report says which one matched"
old="$HOOKVAULT_SECRET"; new="rotated-secret-$(date +%s)"
new_sig="$(HOOKVAULT_SECRET="$new" "$hv" sign --scheme skytells "$work/webhook.json" | cut -d' ' -f2-)"
"$hv" verify --scheme skytells --secret "$new" --secret "$old" -H "x-skytells-signature: $sig" "$work/webhook.json"
"$hv" verify --scheme skytells --secret "$new" --secret "$old" -H "x-skytells-signature: $new_sig" "$work/webhook.json"

step "5. Standard Webhooks: a stale timestamp is refused"
"$hv" sign --scheme standard --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw --id msg_demo \
  --timestamp $(( $(date +%s) - 3600 )) "$work/webhook.json" > "$work/std"
mapfile -t std_headers < <(sed 's/^/-H\n/' "$work/std")
if "$hv" verify --scheme standard --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw "${std_headers[@]}" "$work/webhook.json"; then
  echo "stale webhook accepted: this is a bug" >&2; exit 1
fi

scripts/build-edge.sh
hv_log "building the Lambda functions for the runtime emulator (cargo lambda watch reuses this build)"
# One package per build, as `cargo lambda watch` builds it (see scripts/test.sh).
for f in archiver rotator api; do
  cargo build --locked -p "hookvault-$f" --bin "$f"
done
cargo build --quiet --locked -p hookvault-localstack --bin hookvault-dev
target/debug/hookvault-dev demo "$@"

printf '\n\033[1;32mdemo finished\033[0m\n'
