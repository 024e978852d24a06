# shellcheck shell=bash
# The one place hookvault installs what it needs. Every function is idempotent: it checks
# what is already there and installs only what is missing, into the git-ignored tools
# folder (.tools/) — never system-wide, never by hand.
#
#   source scripts/lib/tools.sh
#   hv_rust_target wasm32-unknown-unknown
#   hv_moto               # the tools venv from scripts/lib/requirements/tools.txt (hashes)
#   hv_cargo_tool worker-build 0.8.7
#   hv_npm edge            # npm ci in edge/ when its lockfile changed

HV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HV_TOOLS="${HV_TOOLS:-$HV_ROOT/.tools}"
export HV_ROOT HV_TOOLS
mkdir -p "$HV_TOOLS/bin" "$HV_TOOLS/stamps"
export PATH="$HV_TOOLS/bin:$HV_TOOLS/cargo/bin:$HV_TOOLS/venv/bin:$PATH"

# Each line says how long its script has run (bash's SECONDS), so a CI log shows where
# the time goes.
hv_log() { printf '\033[1;34m[hookvault +%ss]\033[0m %s\n' "$SECONDS" "$*" >&2; }

# A rustup target, e.g. wasm32-unknown-unknown.
hv_rust_target() {
  local target="$1"
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    hv_log "adding rust target $target"
    rustup target add "$target" >&2
  fi
}

# rustup components (clippy, rustfmt).
hv_rust_component() {
  local c
  for c in "$@"; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
      hv_log "adding rust component $c"
      rustup component add "$c" >&2
    fi
  done
}

# A lock file (scripts/lib/requirements/*.txt: every package at an exact version, with
# its hashes) into the venv at $1, with --require-hashes: a fresh machine gets exactly
# these files or nothing. Skipped when the same lock was installed before.
# hv_pip_lock VENV LOCK
hv_pip_lock() {
  local venv="$1" lock="$HV_ROOT/scripts/lib/requirements/$2"
  local stamp="$HV_TOOLS/stamps/lock-$(basename "$venv")-$(sha256sum "$lock" | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    if [ ! -x "$venv/bin/python" ]; then
      hv_log "creating python venv in ${venv#"$HV_ROOT/"}"
      python3 -m venv "$venv" >&2
    fi
    hv_log "pip install --require-hashes -r scripts/lib/requirements/$2 (into ${venv#"$HV_ROOT/"})"
    "$venv/bin/pip" install --quiet --require-hashes --no-deps -r "$lock" >&2
    touch "$stamp"
  fi
}

# A binary crate at an exact version, into .tools/cargo. Tries the crate's own lockfile
# first (--locked); when that lockfile names a version crates.io no longer serves (a
# yanked dependency), falls back to a fresh resolution.
# hv_cargo_tool BIN VERSION [CRATE] [FEATURES]
hv_cargo_tool() {
  local bin="$1" version="$2" crate="${3:-$1}" features="${4:-}"
  local stamp="$HV_TOOLS/stamps/cargo-$crate-$version"
  local extra=()
  [ -n "$features" ] && extra=(--features "$features")
  if [ ! -f "$stamp" ] || [ ! -x "$HV_TOOLS/cargo/bin/$bin" ]; then
    hv_log "cargo install $crate@$version (once; this can take minutes)"
    cargo install --quiet --locked --root "$HV_TOOLS/cargo" --version "=$version" "${extra[@]}" "$crate" >&2 \
      || { hv_log "$crate@$version: its lockfile does not resolve; installing with a fresh resolution"
           cargo install --quiet --root "$HV_TOOLS/cargo" --version "=$version" "${extra[@]}" "$crate" >&2; }
    touch "$stamp"
  fi
}

# s3s-fs: an S3 implementation over the file system, for the archiver's benchmark (moto
# bounds every path that writes to it at ~100-130 MiB/s). Benchmarks only: the test
# command does not install it.
hv_s3s_fs() { hv_cargo_tool s3s-fs 0.14.1 s3s-fs binary; }  # 0.15+ needs rustc 1.96

# npm ci in a folder of the repo, when its package-lock.json changed since the last run.
hv_npm() {
  local dir="$HV_ROOT/$1"
  local stamp="$HV_TOOLS/stamps/npm-$(echo "$1" | tr / _)-$(sha256sum "$dir/package-lock.json" | cut -c1-16)"
  if [ ! -f "$stamp" ] || [ ! -d "$dir/node_modules" ]; then
    hv_log "npm ci in $1"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
    touch "$stamp"
  fi
}

# The version of a package in Cargo.lock.
hv_lock_version() {
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' "$HV_ROOT/Cargo.lock"
}

# Everything the edge build and its local runtime need: the wasm32 target, worker-build,
# wasm-bindgen-cli at exactly the version in Cargo.lock, and edge/'s npm packages
# (workerd, esbuild, wrangler). Exports the *_BIN variables worker-build reads.
hv_edge_tools() {
  hv_rust_target wasm32-unknown-unknown
  hv_cargo_tool worker-build 0.8.7
  hv_cargo_tool wasm-bindgen "$(hv_lock_version wasm-bindgen)" wasm-bindgen-cli
  hv_npm edge
  export WASM_BINDGEN_BIN="$HV_TOOLS/cargo/bin/wasm-bindgen"
  export ESBUILD_BIN="$HV_ROOT/edge/node_modules/.bin/esbuild"
  export WORKERD_BIN="$HV_ROOT/edge/node_modules/.bin/workerd"
}

# Node.js 22, for wrangler 4 (which needs Node >= 22; a machine's own may be older), from
# npm's `node` package (the official binaries), pinned, into .tools/node22. Exports
# HV_NODE22_BIN, the folder with `node`: put it first on PATH to run wrangler.
hv_node22() {
  local version=22.23.3
  local stamp="$HV_TOOLS/stamps/node-$version"
  export HV_NODE22_BIN="$HV_TOOLS/node22/node_modules/.bin"
  if [ ! -f "$stamp" ] || [ ! -x "$HV_NODE22_BIN/node" ]; then
    hv_log "npm install node@$version (into .tools/node22, for wrangler)"
    mkdir -p "$HV_TOOLS/node22"
    npm install --prefix "$HV_TOOLS/node22" --no-audit --no-fund --loglevel=error "node@$version" >&2
    touch "$stamp"
  fi
}

# moto server (S3, SQS, Secrets Manager) in the tools venv, from the lock
# (scripts/lib/requirements/tools.in says what is pinned and how the lock is made).
hv_moto() {
  hv_pip_lock "$HV_TOOLS/venv" tools.txt
}

# cargo-lambda (and ziglang, its dependency) in the tools venv: the Lambda runtime
# emulator (`cargo lambda watch`) and the Lambda builds. The same lock as moto's.
hv_cargo_lambda() {
  hv_pip_lock "$HV_TOOLS/venv" tools.txt
}

# The template checkers: aws-sam-cli (`sam validate --lint`) and cfn-lint, pinned, in a
# venv of their own (.tools/venv-sam), because aws-sam-cli pins boto3/botocore exactly and
# moto's pins in .tools/venv must not move. That venv is NOT put on PATH: call its binaries
# by path ("$HV_SAM_BIN/sam", "$HV_SAM_BIN/cfn-lint", "$HV_SAM_BIN/python"). cfn-lint's
# pin is the newest that aws-sam-cli 1.170.0 accepts (cfn-lint<1.59,>=1.52.0).
hv_sam() {
  export HV_SAM_BIN="$HV_TOOLS/venv-sam/bin"
  hv_pip_lock "$HV_TOOLS/venv-sam" sam.txt
}
