# shellcheck shell=bash
# The one place hookvault installs what it needs. Every function is idempotent: it checks
# what is already there and installs only what is missing, into the git-ignored tools
# folder (.tools/) — never system-wide, never by hand.
#
#   source scripts/lib/tools.sh
#   hv_rust_target wasm32-unknown-unknown
#   hv_venv && hv_pip 'moto[server]==5.1.18'
#   hv_cargo_tool worker-build 0.8.7
#   hv_npm edge            # npm ci in edge/ when its lockfile changed

HV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HV_TOOLS="${HV_TOOLS:-$HV_ROOT/.tools}"
export HV_ROOT HV_TOOLS
mkdir -p "$HV_TOOLS/bin" "$HV_TOOLS/stamps"
export PATH="$HV_TOOLS/bin:$HV_TOOLS/cargo/bin:$HV_TOOLS/venv/bin:$PATH"

hv_log() { printf '\033[1;34m[hookvault]\033[0m %s\n' "$*" >&2; }

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

# The python venv under .tools/venv.
hv_venv() {
  if [ ! -x "$HV_TOOLS/venv/bin/python" ]; then
    hv_log "creating python venv in .tools/venv"
    python3 -m venv "$HV_TOOLS/venv" >&2
    "$HV_TOOLS/venv/bin/pip" install --quiet --upgrade pip >&2
  fi
}

# pip requirements into the venv; skipped when the same set was installed before.
hv_pip() {
  hv_venv
  local stamp="$HV_TOOLS/stamps/pip-$(printf '%s\n' "$@" | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    hv_log "pip install $*"
    "$HV_TOOLS/venv/bin/pip" install --quiet "$@" >&2
    touch "$stamp"
  fi
}

# A binary crate at an exact version, into .tools/cargo. Tries the crate's own lockfile
# first (--locked); when that lockfile names a version crates.io no longer serves (a
# yanked dependency), falls back to a fresh resolution.
# hv_cargo_tool BIN VERSION [CRATE]
hv_cargo_tool() {
  local bin="$1" version="$2" crate="${3:-$1}"
  local stamp="$HV_TOOLS/stamps/cargo-$crate-$version"
  if [ ! -f "$stamp" ] || [ ! -x "$HV_TOOLS/cargo/bin/$bin" ]; then
    hv_log "cargo install $crate@$version (once; this can take minutes)"
    cargo install --quiet --locked --root "$HV_TOOLS/cargo" --version "=$version" "$crate" >&2 \
      || { hv_log "$crate@$version: its lockfile does not resolve; installing with a fresh resolution"
           cargo install --quiet --root "$HV_TOOLS/cargo" --version "=$version" "$crate" >&2; }
    touch "$stamp"
  fi
}

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

# moto server (S3, SQS, Secrets Manager) in the tools venv.
hv_moto() {
  hv_pip 'moto[server]==5.2.5'
}

# cargo-lambda (and ziglang, its dependency) in the tools venv: the Lambda runtime
# emulator (`cargo lambda watch`) and the Lambda builds.
hv_cargo_lambda() {
  hv_pip 'cargo-lambda==1.9.2'
}

# The template checkers: aws-sam-cli (`sam validate --lint`) and cfn-lint, pinned, in a
# venv of their own (.tools/venv-sam), because aws-sam-cli pins boto3/botocore exactly and
# moto's pins in .tools/venv must not move. That venv is NOT put on PATH: call its binaries
# by path ("$HV_SAM_BIN/sam", "$HV_SAM_BIN/cfn-lint", "$HV_SAM_BIN/python"). cfn-lint's
# pin is the newest that aws-sam-cli 1.170.0 accepts (cfn-lint<1.59,>=1.52.0).
hv_sam() {
  local venv="$HV_TOOLS/venv-sam"
  local reqs=('aws-sam-cli==1.170.0' 'cfn-lint==1.58.0')
  local stamp="$HV_TOOLS/stamps/sam-$(printf '%s\n' "${reqs[@]}" | sha256sum | cut -c1-16)"
  export HV_SAM_BIN="$venv/bin"
  if [ ! -f "$stamp" ] || [ ! -x "$venv/bin/sam" ] || [ ! -x "$venv/bin/cfn-lint" ]; then
    if [ ! -x "$venv/bin/python" ]; then
      hv_log "creating python venv in .tools/venv-sam"
      python3 -m venv "$venv" >&2
      "$venv/bin/pip" install --quiet --upgrade pip >&2
    fi
    hv_log "pip install ${reqs[*]} (into .tools/venv-sam)"
    "$venv/bin/pip" install --quiet "${reqs[@]}" >&2
    touch "$stamp"
  fi
}
