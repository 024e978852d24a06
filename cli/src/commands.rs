//! The three subcommands.

use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use hookvault_core::keyring::{KeySlot, KeySpec};
use hookvault_core::scheme::{SignParams, DEFAULT_TOLERANCE_SECS};
use hookvault_core::{KeyRing, Scheme, VerifyOptions};

use crate::body;

/// A failure, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The arguments are wrong (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Reading the body or talking to the server failed (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// 2 for a usage error, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
        }
    }
}

/// What signing a request takes, shared by `sign` and `send`.
#[derive(Args, Debug)]
pub struct Signing {
    /// skytells, github, standard or stripe.
    #[arg(long, value_parser = crate::parse_scheme)]
    scheme: Scheme,
    /// The secret, in the scheme's format (`whsec_…` base64 for standard).
    #[arg(long, env = "HOOKVAULT_SECRET", hide_env_values = true)]
    secret: String,
    /// Delivery id (standard: webhook-id; github: X-GitHub-Delivery). Random if absent.
    #[arg(long)]
    id: Option<String>,
    /// Unix seconds to sign with (standard, stripe). Now if absent.
    #[arg(long, allow_hyphen_values = true)]
    timestamp: Option<i64>,
}

#[derive(Args, Debug)]
pub struct SignArgs {
    #[command(flatten)]
    signing: Signing,
    /// The body; stdin if absent or `-`.
    file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// skytells, github, standard or stripe.
    #[arg(long, value_parser = crate::parse_scheme)]
    scheme: Scheme,
    /// A secret to accept; repeat for a rotation (the first is current, later ones previous).
    #[arg(
        long = "secret",
        env = "HOOKVAULT_SECRET",
        hide_env_values = true,
        required_unless_present = "keyring"
    )]
    secrets: Vec<String>,
    /// A key ring JSON file instead: [{"id","secret","slot","not_after"}, …], newest first.
    #[arg(long, conflicts_with = "secrets")]
    keyring: Option<PathBuf>,
    /// A request header, `Name: value`; repeat for each.
    #[arg(long = "header", short = 'H', value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Unix seconds to verify at (default: now).
    #[arg(long, allow_hyphen_values = true)]
    now: Option<i64>,
    /// Allowed distance of a signed timestamp from now, seconds.
    #[arg(long, default_value_t = DEFAULT_TOLERANCE_SECS)]
    tolerance: u64,
    /// The body; stdin if absent or `-`.
    file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SendArgs {
    /// Where to POST.
    url: String,
    #[command(flatten)]
    signing: Signing,
    /// An extra header, `Name: value`; repeat for each.
    #[arg(long = "header", short = 'H', value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// The body; stdin if absent or `-`.
    file: Option<PathBuf>,
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not `Name: value`"))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_graphic()) {
        return Err(format!("{name:?} is not a header name"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn random_id() -> String {
    let h = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("msg_{h:016x}")
}

fn read_body(file: Option<&std::path::Path>) -> Result<Vec<u8>, CliError> {
    body::read(file).map_err(|e| CliError::Failed(format!("cannot read the body: {e}")))
}

/// The headers a sender adds.
fn signed_headers(signing: Signing, body: &[u8]) -> Result<Vec<(&'static str, String)>, CliError> {
    let key = signing
        .scheme
        .decode_secret(&signing.secret)
        .map_err(|e| CliError::Usage(format!("--secret: {e}")))?;
    let params = SignParams {
        id: Some(signing.id.unwrap_or_else(random_id)),
        timestamp: Some(signing.timestamp.unwrap_or_else(now)),
    };
    signing
        .scheme
        .sign(&key, body, &params)
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// `hookvault sign`.
pub fn sign(a: SignArgs) -> Result<ExitCode, CliError> {
    let body = read_body(a.file.as_deref())?;
    for (name, value) in signed_headers(a.signing, &body)? {
        println!("{name}: {value}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `hookvault verify`.
pub fn verify(a: VerifyArgs) -> Result<ExitCode, CliError> {
    let ring = match &a.keyring {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::Usage(format!("--keyring {}: {e}", path.display())))?;
            KeyRing::parse(a.scheme, &text)
        }
        None => {
            let specs: Vec<KeySpec> = a
                .secrets
                .iter()
                .enumerate()
                .map(|(i, s)| KeySpec {
                    id: Some(if i == 0 {
                        "secret-1".to_owned()
                    } else {
                        format!("secret-{}", i + 1)
                    }),
                    secret: s.clone(),
                    slot: Some(if i == 0 {
                        KeySlot::Current
                    } else {
                        KeySlot::Previous
                    }),
                    not_after: None,
                })
                .collect();
            KeyRing::from_specs(a.scheme, &specs)
        }
    }
    .map_err(|e| CliError::Usage(e.to_string()))?;
    let body = read_body(a.file.as_deref())?;
    let opts = VerifyOptions {
        now: a.now.unwrap_or_else(now),
        tolerance: a.tolerance,
    };
    match a.scheme.verify(&ring, &a.headers, &body, &opts) {
        Ok(v) => {
            println!("verified: key {} ({})", v.key_id, v.slot.as_str());
            if let Some(id) = v.delivery_id {
                println!("delivery id: {id}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!(
                "refused: {e} (the edge answers {} {})",
                e.status(),
                e.code()
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// `hookvault send`.
pub fn send(a: SendArgs) -> Result<ExitCode, CliError> {
    let body = read_body(a.file.as_deref())?;
    let signed = signed_headers(a.signing, &body)?;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(a.timeout))
        .build()
        .map_err(|e| CliError::Failed(format!("cannot build the HTTP client: {e}")))?;
    let mut req = client
        .post(&a.url)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in signed
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .chain(a.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    {
        req = req.header(name, value);
    }
    let resp = req
        .send()
        .map_err(|e| CliError::Failed(format!("POST {} failed: {e}", a.url)))?;
    let status = resp.status();
    let text = resp.text().unwrap_or_default();
    println!("HTTP {}", status.as_u16());
    if !text.is_empty() {
        println!("{text}");
    }
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
