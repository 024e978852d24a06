#!/usr/bin/env bash
# hookvault's test command: everything CI checks, from a fresh machine.
# Installs what it needs into the git-ignored tools folder, idempotently (the first run
# compiles worker-build and wasm-bindgen-cli: allow ~25 minutes; later runs skip them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh

hv_rust_component clippy rustfmt
hv_edge_tools
hv_moto
hv_cargo_lambda

hv_log "cargo fmt --check"
cargo fmt --all --check

hv_log "every documented setting is read and named by a test (scripts/check-settings.py, and its own tests)"
python3 scripts/check-settings.py
python3 -m unittest --quiet scripts/test_check_settings.py

hv_log "clippy (all targets, warnings are errors; the edge also as wasm32, as deployed and as the test build)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p hookvault-edge --target wasm32-unknown-unknown --locked -- -D warnings
cargo clippy -p hookvault-edge --target wasm32-unknown-unknown --features test-hooks --locked -- -D warnings

hv_log "the SAM template: cfn-lint, sam validate --lint, our own rules (offline)"
scripts/check-infra.sh

hv_log "hookvault-core for wasm32-unknown-unknown"
cargo build -p hookvault-core --target wasm32-unknown-unknown --locked

scripts/build-edge.sh
scripts/build-edge.sh --test-build
hv_log "the edge as a wrangler user deploys it: wrangler deploy --dry-run (its [build] runs scripts/build-edge.sh)"
scripts/check-edge-deploy.sh
hv_log "building the Lambda functions for the runtime emulator (cargo lambda watch reuses these builds)"
# One package per build, as `cargo lambda watch` builds it (`cargo run --bin X` in the
# function's folder): cargo unifies the features of shared dependencies across the
# packages of one build, so a build of several packages leaves artifacts that a single
# package's build cannot reuse (measured: 39, 10 and 19 crates compiled again), and the
# end-to-end tests would compile the functions inside their time limits (seen on a fresh
# clone, with the CLI in the same build: the tests timed out).
for f in archiver rotator api drainer reconciler; do
  cargo build --locked -p "hookvault-$f" --bin "$f"
done
hv_log "building the CLI the operations tests run"
cargo build --locked -p hookvault-cli --bin hookvault

hv_log "tests (unit, property, CLI, and end-to-end over moto + workerd)"
cargo test --workspace --locked

hv_log "the Lambda functions as a SAM user builds them: sam build (release, arm64), sizes against the 8 MiB bar"
scripts/build-lambdas.sh
