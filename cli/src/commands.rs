//! `sign`, `verify` and `send`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use hookvault_aws::http::retry_after;
use hookvault_aws::retry::{retrying, Retryable};
use hookvault_core::keyring::{KeySlot, KeySpec};
use hookvault_core::retry::RetryPolicy;
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
    /// skytells: write `sha256=<hex>` (the course's form) instead of the bare hex the
    /// provider's SDK writes. Other schemes have one form and ignore it.
    #[arg(long)]
    prefixed: bool,
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
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Attempts in all: a 429, 500, 502, 503 or 504 (the edge's 503 when the queue is
    /// unavailable) or no answer is retried with back-off, honouring `Retry-After`.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10))]
    attempts: u32,
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
    // Only HTTP's optional whitespace (space and tab, RFC 9110 §5.6.3) is trimmed, as a
    // server does before the edge sees the value: `str::trim` would also drop Unicode
    // spaces (U+00A0) and a vertical tab, and `verify` would accept values the edge refuses.
    Ok((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A delivery id: `msg_` and a UUID v4 (122 random bits from the OS), unique per
/// delivery as the schemes' receivers expect.
fn random_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
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
    let signed = if signing.prefixed {
        signing.scheme.sign_prefixed(&key, body, &params)
    } else {
        signing.scheme.sign(&key, body, &params)
    };
    signed.map_err(|e| CliError::Usage(e.to_string()))
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

/// `hookvault send`: the same signed request on every attempt, through the retry loop
/// every HTTP call in hookvault shares.
pub async fn send(a: SendArgs) -> Result<ExitCode, CliError> {
    let body = read_body(a.file.as_deref())?;
    let signed = signed_headers(a.signing, &body)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(a.timeout))
        .build()
        .map_err(|e| CliError::Failed(format!("cannot build the HTTP client: {e}")))?;
    let policy = RetryPolicy {
        max_attempts: a.attempts,
        ..RetryPolicy::downloads()
    };
    let (client, url, body, signed, extra) = (&client, &a.url, &body, &signed, &a.headers);
    let answer = retrying(&policy, None, "POST", None, |_| async move {
        let mut req = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone());
        for (name, value) in signed
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .chain(extra.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        {
            req = req.header(name, value);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = retry_after(resp.headers());
                let text = resp.text().await.unwrap_or_default();
                if (200..300).contains(&status) {
                    Ok(Ok((status, text)))
                } else {
                    Err(Retryable {
                        status: Some(status),
                        retry_after,
                        reason: format!("HTTP {status}"),
                        last: Ok((status, text)),
                    })
                }
            }
            Err(e) => {
                let reason = e.without_url().to_string();
                Err(Retryable {
                    status: None,
                    retry_after: None,
                    reason: reason.clone(),
                    last: Err(reason),
                })
            }
        }
    })
    .await;
    let (status, text) = match answer {
        Ok(done) => done,
        Err(gave_up) => gave_up.last,
    }
    .map_err(|reason| CliError::Failed(format!("POST {} failed: {reason}", a.url)))?;
    println!("HTTP {status}");
    if !text.is_empty() {
        println!("{text}");
    }
    Ok(if (200..300).contains(&status) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
