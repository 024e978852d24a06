#!/usr/bin/env bash
# The edge's benchmarks: the gzip'd bundle size of edge/build (bar: 256 KiB), then a load
# run on loopback (wrk, from Debian's packages) against the Rust Worker and the JavaScript
# WebCrypto baseline (edge/bench/js-worker.mjs), side by side in the same run.
#   scripts/bench-edge.sh [--seconds N] [--connections N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
hv_edge_tools
hv_moto
if ! command -v wrk >/dev/null; then
  hv_log "installing wrk (Debian package)"
  { apt-get update -qq && apt-get install -y -qq wrk; } >&2
fi
scripts/build-edge.sh
cargo build --quiet --locked --release -p hookvault-localstack --bin hookvault-dev

wasm=$(stat -c %s edge/build/index_bg.wasm); js=$(cat edge/build/entry.mjs edge/build/index.js | wc -c)
gz=$(cat edge/build/entry.mjs edge/build/index.js edge/build/index_bg.wasm | gzip -9 | wc -c)
echo "bundle: index_bg.wasm $wasm B + entry.mjs and index.js $js B = $((wasm + js)) B; gzip -9: $gz B ($(( gz * 100 / 262144 ))% of the 256 KiB bar)"
echo
target/release/hookvault-dev bench-edge "$@"
