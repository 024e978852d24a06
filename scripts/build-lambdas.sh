#!/usr/bin/env bash
# Builds the three Lambda functions as AWS runs them: `cargo lambda build --release
# --arm64` (provided.al2023 on Graviton; cargo-lambda cross-compiles with zig from the
# tools venv), then reports each bootstrap's size and fails over the 8 MiB bar.
# Output: target/lambda/{archiver,rotator,api}/bootstrap (what `sam build` packages).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
hv_cargo_lambda
hv_rust_target aarch64-unknown-linux-gnu

hv_log "cargo lambda build --release --arm64 (archiver, rotator, api)"
cargo lambda build --release --arm64 --locked --bin archiver --bin rotator --bin api

# Sizes and architecture with python3 (present on every machine this runs on).
python3 - <<'PY'
import struct, sys
limit, failed = 8 * 1024 * 1024, False
print(f"{'function':10} {'bytes':>12} {'MiB':>7}  arch")
for f in ("archiver", "rotator", "api"):
    with open(f"target/lambda/{f}/bootstrap", "rb") as b:
        data = b.read()
    machine = struct.unpack_from("<H", data, 18)[0]
    arch = {0xB7: "arm64", 0x3E: "x86_64"}.get(machine, hex(machine))
    print(f"{f:10} {len(data):12d} {len(data) / 1048576:7.2f}  {arch}")
    if len(data) > limit or arch != "arm64":
        print(f"{f}: over the 8 MiB bar or not arm64", file=sys.stderr)
        failed = True
sys.exit(1 if failed else 0)
PY
