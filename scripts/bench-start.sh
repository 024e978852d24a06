#!/usr/bin/env bash
# Start-to-ready of the three Lambdas: each release binary spawned against cargo-lambda's
# runtime API and invoked once with an event it answers without network (--runs N times,
# default 10). Figures go to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
hv_cargo_lambda
hv_log "building the release Lambdas (fat LTO: a few minutes the first time)"
cargo build --quiet --locked --release -p hookvault-archiver --bin archiver -p hookvault-rotator --bin rotator -p hookvault-api --bin api
cargo build --quiet --locked --release -p hookvault-localstack --bin hookvault-dev
target/release/hookvault-dev bench-start "$@"
