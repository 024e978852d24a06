#!/usr/bin/env bash
# Verification benchmark: criterion on hookvault-core (every scheme, 1 KiB / 64 KiB /
# 1 MiB), then the seed's Python handler on the same bodies in the same run, with the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
cargo bench --locked -p hookvault-core --bench verify -- --warm-up-time 1 --measurement-time 3 "$@" \
  | grep -E '^(verify|floor|\s+time:|\s+thrpt:)' || true
echo
python3 scripts/bench/seed_verify.py "${CARGO_TARGET_DIR:-target}"
