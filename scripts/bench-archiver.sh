#!/usr/bin/env bash
# The archiver's benchmark: a 1 GiB output (or --mib N) from the stand-in CDN into moto's
# S3 through the release archiver binary under cargo-lambda's runtime API, with its peak
# RSS; beside it a plain download and the seed's boto3 upload_fileobj; the binary's size
# and start time. Figures go to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
hv_moto
hv_cargo_lambda
hv_log "building the release archiver (fat LTO: a few minutes the first time)"
cargo build --quiet --locked --release -p hookvault-archiver --bin archiver
cargo build --quiet --locked --release -p hookvault-localstack --bin hookvault-dev
target/release/hookvault-dev bench-archiver "$@"
