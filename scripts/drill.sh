#!/usr/bin/env bash
# The operations runbook's drill on the local stack (docs/operations.md): break the
# archiver, watch events reach the DLQ with the permanent-failure metric, fix it, replay
# the DLQ with the hookvault CLI, and check every event was archived once.
# --yes runs every step without waiting; --serve keeps the stack up at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
hv_edge_tools
hv_moto
hv_cargo_lambda

scripts/build-edge.sh
hv_log "building the archiver (for the runtime emulator), the hookvault CLI and hookvault-dev"
# One package per build, as `cargo lambda watch` builds it (see scripts/test.sh).
cargo build --locked -p hookvault-archiver --bin archiver
cargo build --locked -p hookvault-cli --bin hookvault
cargo build --locked -p hookvault-localstack --bin hookvault-dev
export PATH="$PWD/target/debug:$PATH"
target/debug/hookvault-dev drill "$@"
