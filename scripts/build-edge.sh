#!/usr/bin/env bash
# Builds the edge Worker into edge/build/ (entry.mjs + index.js + index_bg.wasm) with
# worker-build; entry.mjs (edge/entry.mjs) is the module the runtime loads. Offline:
# wasm-bindgen and esbuild come from the tools folder and edge/node_modules, never from a
# download.
#   scripts/build-edge.sh                 the Worker to deploy
#   scripts/build-edge.sh --test-build    the test build into target/edge-test-build/, with
#                                         the test hooks (cargo feature test-hooks): POST
#                                         /_hookvault/panic panics, TEST_BREAK_WEBCRYPTO=1
#                                         breaks WebCrypto; never deploy it
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
hv_edge_tools
out=edge/build; cargo_args=()
if [[ "${1:-}" == "--test-build" ]]; then
  out=target/edge-test-build; cargo_args=(-- --features test-hooks)
fi
hv_log "building the edge into $out (worker-build --profile edge)"
(cd edge && worker-build --profile edge --no-opt --out-dir "$PWD/../$out" "${cargo_args[@]}" >&2)
cp edge/entry.mjs "$out/entry.mjs"
hv_log "$out: $(du -b "$out"/entry.mjs "$out"/index.js "$out"/index_bg.wasm | awk '{s+=$1} END {print s}') bytes, $(cat "$out"/entry.mjs "$out"/index.js "$out"/index_bg.wasm | gzip -9 | wc -c) gzip'd"
