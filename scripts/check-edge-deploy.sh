#!/usr/bin/env bash
# Checks the edge's wrangler configuration the way a user deploys it, offline:
# `wrangler deploy --dry-run` for production and for `--env local`. wrangler runs the
# [build] command (scripts/build-edge.sh) first, bundles, lists the bindings, writes what
# it would upload to target/wrangler-dry-run/, and stops: no account, no network.
# Installs Node 22 into the tools folder when the machine's is older (wrangler 4 needs it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
hv_edge_tools
hv_node22
export PATH="$HV_NODE22_BIN:$PATH" WRANGLER_SEND_METRICS=false CI=1
# No Cloudflare credentials are needed for a dry run; make sure none is used.
unset CLOUDFLARE_API_TOKEN CLOUDFLARE_ACCOUNT_ID

for env in "" local; do
  out="$PWD/target/wrangler-dry-run/${env:-production}"
  rm -rf "$out"
  hv_log "wrangler deploy --dry-run --env=${env:-\"\"} (node $(node --version))"
  (cd edge && node_modules/.bin/wrangler deploy --dry-run --env="$env" --outdir "$out" >&2)
  # What it would upload: the entry module and the wasm, under the 3 MiB (gzip) limit of
  # the Workers Free plan (https://developers.cloudflare.com/workers/platform/limits/#worker-size).
  wasm=$(find "$out" -name '*.wasm' | head -1)
  [ -n "$wasm" ] && [ -f "$out/entry.js" ] || { echo "wrangler wrote no bundle to $out" >&2; exit 1; }
  size=$(cat "$out/entry.js" "$wasm" | gzip -9 | wc -c)
  hv_log "wrangler bundle ${env:-production}: $size bytes gzip'd"
  [ "$size" -lt $((3 * 1024 * 1024)) ] || { echo "the bundle is over 3 MiB gzip'd" >&2; exit 1; }
done
