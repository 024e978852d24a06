//! `hookvault`: sign, verify and send webhooks in the schemes hookvault-core supports;
//! for operators, list and show archived events and replay them (`docs/operations.md`).
//!
//! Exit codes: 0 success, 1 refused or failed (verification failed, non-2xx answer, a
//! replay that failed for some event), 2 usage error.
#![deny(clippy::all)]
#![warn(missing_docs)]

mod body;
mod commands;
mod ops;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hookvault_core::Scheme;

const SCHEMES_HELP: &str = "\
Schemes (all HMAC-SHA256):
  skytells  header `x-skytells-signature: <64 hex>`, HMAC of the raw body keyed with the
            secret's bytes: the account API key (`sk-…`, the provider's default `general`
            mode) or the dashboard webhook secret (`enterprise`). `sign` writes bare
            lowercase hex, as the provider's SDK does (--prefixed: `sha256=<hex>`, the
            course's form); `verify` accepts both, hex digits in either case.
  github    header `X-Hub-Signature-256: sha256=<64 lowercase hex>`, HMAC of the raw body;
            `X-GitHub-Delivery` carries the delivery id (--id).
  standard  Standard Webhooks: `webhook-id`, `webhook-timestamp` (Unix seconds, within
            ±tolerance) and `webhook-signature: v1,<base64> [v1,<base64> …]`, HMAC of
            `{id}.{timestamp}.{body}` keyed with the base64-decoded `whsec_…` secret.
  stripe    header `Stripe-Signature: t=<Unix seconds>,v1=<hex>[,v1=<hex>…]`, HMAC of
            `{t}.{body}` keyed with the whole `whsec_…` string; timestamps older (or
            further ahead) than the tolerance are refused.

Secrets may also come from the environment (HOOKVAULT_SECRET) so they stay out of the
shell history and the process list.";

#[derive(Parser, Debug)]
#[command(name = "hookvault", version, about = "Sign, verify and send webhooks; list, show and replay archived events; reconcile missed webhooks.", after_help = SCHEMES_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the header lines a sender adds for a body (from FILE or stdin).
    #[command(after_help = SCHEMES_HELP)]
    Sign(commands::SignArgs),
    /// Verify a request's headers against a body (from FILE or stdin); exit 0 and name the
    /// key that matched, or exit 1 with the reason.
    #[command(after_help = SCHEMES_HELP)]
    Verify(commands::VerifyArgs),
    /// POST a body (from FILE or stdin), signed, to URL and print the status.
    #[command(after_help = SCHEMES_HELP)]
    Send(commands::SendArgs),
    /// The event log: what the archiver took, when, and what became of it (AWS
    /// credentials from the standard chain: profiles, SSO, environment).
    #[command(subcommand)]
    Events(ops::events::EventsCommand),
    /// Put events back on the queue: from the DLQ (--dlq) or from the event log
    /// (--since); --dry-run first.
    Replay(ops::replay::ReplayArgs),
    /// Check again, now, every prediction submitted since a time whose terminal state the
    /// archive does not hold (the ledger, predictions/*/submission.json): a check to the
    /// reconciler's queue for each (--dry-run first).
    Reconcile(ops::reconcile::ReconcileArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sign(a) => commands::sign(a),
        Command::Verify(a) => commands::verify(a),
        Command::Send(a) => commands::send(a).await,
        Command::Events(c) => ops::events::run(c).await,
        Command::Replay(a) => ops::replay::run(a).await,
        Command::Reconcile(a) => ops::reconcile::run(a).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hookvault: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Parses a scheme name for clap.
fn parse_scheme(s: &str) -> Result<Scheme, String> {
    s.parse::<Scheme>().map_err(|e| e.to_string())
}
