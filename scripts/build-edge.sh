#!/usr/bin/env bash
# Builds the edge Worker into edge/build/ (entry.mjs + index.js + index_bg.wasm) with
# worker-build; entry.mjs (edge/entry.mjs) is the module the runtime loads,
# offline: wasm-bindgen and esbuild come from the tools folder
# and edge/node_modules, never from a download.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
hv_edge_tools
hv_log "building the edge (worker-build --profile edge)"
(cd edge && worker-build --profile edge --no-opt >&2)
cp edge/entry.mjs edge/build/entry.mjs
hv_log "edge/build: $(du -b edge/build/entry.mjs edge/build/index.js edge/build/index_bg.wasm | awk '{s+=$1} END {print s}') bytes, $(cat edge/build/entry.mjs edge/build/index.js edge/build/index_bg.wasm | gzip -9 | wc -c) gzip'd"
