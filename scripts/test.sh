#!/usr/bin/env bash
# hookvault's test command: everything CI checks, from a fresh machine.
# Installs what it needs (rust target and components, into the tools folder), idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh

hv_rust_component clippy rustfmt
hv_rust_target wasm32-unknown-unknown

hv_log "cargo fmt --check"
cargo fmt --all --check

hv_log "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

hv_log "hookvault-core for wasm32-unknown-unknown"
cargo build -p hookvault-core --target wasm32-unknown-unknown --locked

hv_log "tests"
cargo test --workspace --locked
