#!/usr/bin/env bash
# Builds the five Lambda functions as a SAM user does and as AWS runs them: `sam build`
# (samconfig.toml; BuildMethod rust-cargolambda), which runs `cargo lambda build --release
# --arm64 --bin <name>` in each function's folder, so the build shares the workspace's
# target/ (cargo-lambda and zig come from the tools venv; nothing is downloaded at build
# time). Then it checks the five bootstraps SAM packaged: arm64, each under the 8 MiB bar.
# Output: .aws-sam/build/{Archiver,Rotator,Api,Drainer,Reconciler}Function/bootstrap (what
# `sam deploy` uploads) and target/lambda/{archiver,rotator,api,drainer,reconciler}/bootstrap.
# Offline and non-interactive: dummy AWS credentials, no telemetry; `sam build` reads no
# AWS account.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
hv_cargo_lambda
hv_sam
hv_rust_target aarch64-unknown-linux-gnu

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0
unset AWS_PROFILE AWS_ENDPOINT_URL

hv_log "sam build (rust-cargolambda: cargo lambda build --release --arm64, one function at a time)"
"$HV_SAM_BIN/sam" build --config-file samconfig.toml >&2

# Sizes and architecture with python3 (present on every machine this runs on).
python3 - <<'PY'
import struct, sys
limit, failed = 8 * 1024 * 1024, False
print(f"{'function':20} {'bytes':>12} {'MiB':>7}  arch")
for logical in ("ArchiverFunction", "RotatorFunction", "ApiFunction", "DrainerFunction", "ReconcilerFunction"):
    path = f".aws-sam/build/{logical}/bootstrap"
    try:
        with open(path, "rb") as b:
            data = b.read()
    except OSError as e:
        print(f"{path}: {e}", file=sys.stderr)
        failed = True
        continue
    machine = struct.unpack_from("<H", data, 18)[0] if data[:4] == b"\x7fELF" else None
    arch = {0xB7: "arm64", 0x3E: "x86_64"}.get(machine, str(machine))
    print(f"{logical:20} {len(data):12d} {len(data) / 1048576:7.2f}  {arch}")
    if len(data) > limit or arch != "arm64":
        print(f"{logical}: over the 8 MiB bar or not arm64", file=sys.stderr)
        failed = True
sys.exit(1 if failed else 0)
PY
