#!/usr/bin/env bash
# Where does the edge spend a request? Builds the edge with its symbols kept (into
# target/edge-profile/, apart from edge/build), runs it in workerd with the inspector on,
# loads one route with wrk, records a CPU profile and prints a summary
# (edge/bench/profile/). This is how the costs in docs/benchmarks.md were found.
#   scripts/profile-edge.sh [healthz|probe|webhook] [--seconds N]
# The probe is a signed 4 KiB webhook, verified and answered 204: the Worker's own work,
# no SQS. `webhook` is the whole path (verify, envelope, SigV4 SendMessage, 202) with the
# benchmark's instant SQS sink behind it (`hookvault-dev sqs-sink`). The profile is kept
# as target/edge-profile/<route>.cpuprofile (open it in Chrome's DevTools for the whole
# tree).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
route="${1:-probe}"; seconds=5
[[ "${2:-}" == "--seconds" ]] && seconds="$3"
case "$route" in healthz|probe|webhook) ;; *) echo "usage: $0 [healthz|probe|webhook] [--seconds N]" >&2; exit 2 ;; esac
hv_edge_tools
command -v wrk >/dev/null || { echo "wrk is missing: scripts/bench-edge.sh installs it" >&2; exit 1; }

out="$HV_ROOT/target/edge-profile"
hv_log "building the edge with symbols into $out"
(cd edge && worker-build --profile edge --no-opt --out-dir "$out" -- \
  --config 'profile.edge.strip=false' --config 'profile.edge.package.hookvault-edge.strip=false' >&2)
cp edge/entry.mjs "$out/entry.mjs"

secret="profile-webhook-secret"
python3 - "$secret" "$out/post.lua" <<'PY'
import hashlib, hmac, json, sys
secret, path = sys.argv[1], sys.argv[2]
head = '{"id":"pred_profile","status":"succeeded","model":"m","output":["https://cdn.skytells.ai/p/0.png"],"padding":"'
body = head + "x" * (4096 - 2 - len(head)) + '"}'
sig = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()  # bare, as the provider's SDK signs
with open(path, "w") as f:
    f.write('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["x-skytells-signature"] = %s\n' % (json.dumps(body), json.dumps(sig)))
PY

sqs_endpoint="https://sqs.us-east-1.amazonaws.com/"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
if [[ "$route" == webhook ]]; then
  cargo build --quiet --locked --release -p hookvault-localstack --bin hookvault-dev
  target/release/hookvault-dev sqs-sink >"$out/sink.out" &
  pids+=($!)
  for _ in $(seq 50); do [[ -s "$out/sink.out" ]] && break; sleep 0.1; done
  sqs_endpoint=$(head -1 "$out/sink.out")
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port); inspector=$(free_port)
cat > "$out/edge.capnp" <<CAPNP
using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .edge),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:$port", http = (), service = "main")],
);
const edge :Workerd.Worker = (
  modules = [
    (name = "entry.mjs", esModule = embed "entry.mjs"),
    (name = "index.js", esModule = embed "index.js"),
    (name = "index_bg.wasm", wasm = embed "index_bg.wasm"),
  ],
  compatibilityDate = "2025-09-23",
  bindings = [
    (name = "WEBHOOK_SECRETS", text = "$secret"),
    (name = "SQS_QUEUE_URL", text = "${sqs_endpoint}000000000000/bench"),
    (name = "SQS_ENDPOINT", text = "$sqs_endpoint"),
    (name = "AWS_REGION", text = "us-east-1"),
    (name = "AWS_ACCESS_KEY_ID", text = "unused"),
    (name = "AWS_SECRET_ACCESS_KEY", text = "unused"),
  ],
  globalOutbound = "internet",
);
CAPNP
edge/node_modules/.bin/workerd serve "$out/edge.capnp" --inspector-addr="127.0.0.1:$inspector" \
  >"$out/workerd.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done

case "$route" in
  healthz) url="http://127.0.0.1:$port/healthz"; script=() ;;
  probe) url="http://127.0.0.1:$port/_hookvault/probe"; script=(-s "$out/post.lua") ;;
  webhook) url="http://127.0.0.1:$port/webhooks/skytells"; script=(-s "$out/post.lua") ;;
esac
node edge/bench/profile/record.mjs "127.0.0.1:$inspector" "$((seconds + 1))" "$out/$route.cpuprofile" &
recorder=$!
sleep 0.5
wrk -t2 -c50 -d"${seconds}s" "${script[@]}" "$url" | grep -E "Requests/sec|Non-2xx" || true
wait "$recorder"
node edge/bench/profile/summarize.mjs "$out/$route.cpuprofile"
