//! Where the repository, the tools folder and the edge build are.

use std::path::PathBuf;

use crate::StackError;

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The tools folder (`HV_TOOLS`, default `.tools/`).
pub fn tools() -> PathBuf {
    std::env::var_os("HV_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".tools"))
}

fn existing(what: &'static str, path: PathBuf) -> Result<PathBuf, StackError> {
    if path.exists() {
        Ok(path)
    } else {
        Err(StackError::Missing {
            what,
            path: path.display().to_string(),
        })
    }
}

/// moto's server script in the tools venv.
pub fn moto_server() -> Result<PathBuf, StackError> {
    existing("moto_server", tools().join("venv/bin/moto_server"))
}

/// The workerd binary from edge/'s npm packages.
pub fn workerd() -> Result<PathBuf, StackError> {
    existing("workerd", root().join("edge/node_modules/.bin/workerd"))
}

/// The built edge (`edge/build/`, with `entry.mjs`, `index.js` and `index_bg.wasm`).
pub fn edge_build() -> Result<PathBuf, StackError> {
    built_edge(root().join("edge/build"))
}

/// The edge's test build, with its test hooks: a route that panics, and WebCrypto broken
/// on request (`scripts/build-edge.sh --test-build`).
pub fn edge_test_build() -> Result<PathBuf, StackError> {
    built_edge(root().join("target/edge-test-build"))
}

fn built_edge(dir: PathBuf) -> Result<PathBuf, StackError> {
    existing("the edge build (index_bg.wasm)", dir.join("index_bg.wasm"))?;
    existing("the edge build (index.js)", dir.join("index.js"))?;
    existing("the edge build (entry.mjs)", dir.join("entry.mjs"))?;
    Ok(dir)
}

/// The `hookvault` CLI as `cargo build -p hookvault-cli` (or `cargo test --workspace`)
/// leaves it: `$CARGO_TARGET_DIR/debug/hookvault`, default `target/`.
pub fn hookvault_cli() -> Result<PathBuf, StackError> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    existing(
        "the hookvault CLI (cargo build -p hookvault-cli)",
        target.join("debug/hookvault"),
    )
}

/// cargo-lambda in the tools venv.
pub fn cargo_lambda() -> Result<PathBuf, StackError> {
    existing("cargo-lambda", tools().join("venv/bin/cargo-lambda"))
}

/// `PATH` with the tools venv first (cargo-lambda finds zig through the venv's python).
pub fn tool_path() -> std::ffi::OsString {
    let mut parts = vec![tools().join("venv/bin")];
    if let Some(p) = std::env::var_os("PATH") {
        parts.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(parts).unwrap_or_default()
}
