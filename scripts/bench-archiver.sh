#!/usr/bin/env bash
# The archiver's benchmark: a 1 GiB output (or --mib N) from the stand-in CDN into moto's
# S3 through the release archiver binary under cargo-lambda's runtime API, with its peak
# RSS; beside it a plain download, a plain copy (download, then one PutObject) and the
# seed's boto3 upload_fileobj; the binary's size and start time. Figures go to
# docs/benchmarks.md.
#   scripts/bench-archiver.sh [--mib N] [--s3 moto|s3s-fs] [--sweep]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
hv_moto
hv_cargo_lambda
# --s3 s3s-fs: the fast S3 (built once into .tools/cargo).
if [[ " $* " == *" s3s-fs "* ]]; then hv_s3s_fs; fi
hv_log "building the release archiver (fat LTO: a few minutes the first time)"
cargo build --quiet --locked --release -p hookvault-archiver --bin archiver
cargo build --quiet --locked --release -p hookvault-localstack --bin hookvault-dev
target/release/hookvault-dev bench-archiver "$@"
