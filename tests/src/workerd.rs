//! The edge Worker in workerd, the runtime Cloudflare runs, with a generated config.

use std::time::Duration;

use tokio::process::Command;

use crate::process::{free_port, Service, TempDir};
use crate::{paths, StackError};

/// The compatibility date the edge is written against (as in `edge/wrangler.toml`).
pub const COMPATIBILITY_DATE: &str = "2025-09-23";

/// A running edge.
#[derive(Debug)]
pub struct Edge {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    service: Service,
    _dir: TempDir,
}

/// A string as a Cap'n Proto text literal.
fn capnp_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The modules of the Rust edge as scripts/build-edge.sh leaves them: the main module
/// (edge/entry.mjs) first, then what worker-build emits.
pub const RUST_EDGE_MODULES: &[(&str, &str)] = &[
    ("entry.mjs", "esModule"),
    ("index.js", "esModule"),
    ("index_bg.wasm", "wasm"),
];

/// The workerd config for a worker made of `modules` (file name, module kind) on `port`
/// with `bindings` (vars and secrets, all as text bindings), allowing outbound requests to
/// loopback and private addresses (the default network service only reaches public ones).
pub fn config(port: u16, modules: &[(&str, &str)], bindings: &[(String, String)]) -> String {
    let bindings: Vec<String> = bindings
        .iter()
        .map(|(k, v)| format!("    (name = {}, text = {}),", capnp_str(k), capnp_str(v)))
        .collect();
    format!(
        r#"using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .edge),
    (name = "internet", network = (allow = ["public", "private", "local"], tlsOptions = (trustBrowserCas = true))),
  ],
  sockets = [(name = "http", address = "127.0.0.1:{port}", http = (), service = "main")],
);

const edge :Workerd.Worker = (
  modules = [
{modules}
  ],
  compatibilityDate = "{COMPATIBILITY_DATE}",
  bindings = [
{bindings}
  ],
  globalOutbound = "internet",
);
"#,
        bindings = bindings.join("\n"),
        modules = modules
            .iter()
            .map(|(name, kind)| format!(
                "    (name = {}, {kind} = embed {}),",
                capnp_str(name),
                capnp_str(name)
            ))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// The AWS secret key the local stack's components use with moto (which accepts any).
/// A test can look for it in logs: it must never appear.
pub const LOCAL_AWS_SECRET: &str = "local-aws-secret-key";

/// The edge's vars for moto at `moto_endpoint` (SQS, and S3 for the claim check) and the
/// queue `queue_url`, with `extra` added or replacing the defaults (`WEBHOOK_SECRETS` has
/// none: pass it; nor has `CLAIM_CHECK_BUCKET`: without it the edge takes only bodies that
/// fit in one message).
pub fn local_bindings(
    moto_endpoint: &str,
    queue_url: &str,
    extra: &[(&str, String)],
) -> Vec<(String, String)> {
    let base = vec![
        ("SQS_QUEUE_URL".to_owned(), queue_url.to_owned()),
        ("SQS_ENDPOINT".to_owned(), format!("{moto_endpoint}/")),
        // Used once CLAIM_CHECK_BUCKET names a bucket (pass it in `extra`).
        ("S3_ENDPOINT".to_owned(), format!("{moto_endpoint}/")),
        ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY".to_owned(),
            LOCAL_AWS_SECRET.to_owned(),
        ),
    ];
    crate::lambda::with_overrides(base, extra)
}

impl Edge {
    /// Starts the built edge in workerd with `bindings`, on a free port (or `port`).
    pub async fn start(
        bindings: &[(String, String)],
        port: Option<u16>,
    ) -> Result<Self, StackError> {
        Self::start_modules(&paths::edge_build()?, RUST_EDGE_MODULES, bindings, port).await
    }

    /// Starts any worker whose `modules` (file name, kind) are files in `from`; the first
    /// is the main module. Ready once it answers HTTP at all.
    pub async fn start_modules(
        from: &std::path::Path,
        modules: &[(&str, &str)],
        bindings: &[(String, String)],
        port: Option<u16>,
    ) -> Result<Self, StackError> {
        let workerd = paths::workerd()?;
        let dir = TempDir::new("edge")?;
        for (f, _) in modules {
            std::fs::copy(from.join(f), dir.0.join(f))?;
        }
        let port = match port {
            Some(p) => p,
            None => free_port()?,
        };
        let conf = dir.0.join("edge.capnp");
        std::fs::write(&conf, config(port, modules, bindings))?;
        let mut cmd = Command::new(workerd);
        cmd.arg("serve").arg(&conf).arg("--verbose");
        let mut service = Service::spawn(cmd, dir.0.join("workerd.log"))?;
        let url = format!("http://127.0.0.1:{port}");
        service
            .wait_http(&format!("{url}/healthz"), Duration::from_secs(20))
            .await?;
        Ok(Edge {
            url,
            service,
            _dir: dir,
        })
    }

    /// CPU seconds workerd has used so far (see [`Service::cpu_seconds`]).
    pub fn cpu_seconds(&self) -> Option<f64> {
        self.service.cpu_seconds()
    }

    /// workerd's peak resident memory so far, KiB (see [`Service::peak_rss_kib`]).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.service.peak_rss_kib()
    }

    /// What workerd printed (the edge's log lines among it).
    pub fn logs(&self) -> String {
        self.service.output()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_bindings_are_escaped() {
        let c = super::config(
            8787,
            super::RUST_EDGE_MODULES,
            &[("A".into(), r#"{"x":"a\b"}"#.into())],
        );
        assert!(
            c.contains(r#"(name = "index_bg.wasm", wasm = embed "index_bg.wasm"),"#),
            "{c}"
        );
        assert!(
            c.contains(r#"(name = "A", text = "{\"x\":\"a\\b\"}"),"#),
            "{c}"
        );
        assert!(c.contains("127.0.0.1:8787"));
    }
}
