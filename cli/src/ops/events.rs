//! `hookvault events list` and `hookvault events show`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use hookvault_core::archive;
use hookvault_core::records::{EventRecord, FailureRecord, IndexEntry, IndexOutcome, Manifest};
use hookvault_core::{KeyRing, VerifyOptions};
use serde_json::{json, Value};

use super::log::{self, Filter};
use super::{progress, window, Aws, StackArgs};
use crate::commands::CliError;

/// `hookvault events …`.
#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// List the events the archiver took in a window, newest last, from the event log.
    List(ListArgs),
    /// Show one event, or every event of one prediction in the order received: its log
    /// entries, its evidence, what the archive holds for it, the state the prediction
    /// holds, and (with --secret) its signature verified again from the stored bytes.
    Show(ShowArgs),
}

/// Filters shared by `events list` and `replay --since`.
#[derive(Args, Debug, Clone)]
pub struct WindowArgs {
    /// Start: a duration back from now (90s, 30m, 2h, 7d) or an RFC 3339 time (`Z` or an offset).
    #[arg(long)]
    pub since: String,
    /// End (default: now), in the same forms.
    #[arg(long)]
    pub until: Option<String>,
    /// Only this provider (the edge's route name).
    #[arg(long)]
    pub provider: Option<String>,
    /// Only events in this state: archived, failed, dead_lettered, prediction_failed,
    /// kept, ignored, conflicting, corroborating, rejected, stalled; or `reconciled`:
    /// events the reconciler fetched from the provider because their webhook never came,
    /// whatever their state. Repeat for several (any of them).
    #[arg(long = "status", value_parser = parse_status)]
    pub status: Vec<StatusFilter>,
    /// Only this prediction id.
    #[arg(long)]
    pub prediction: Option<String>,
    /// Only this event id (repeat for several).
    #[arg(long = "event-id")]
    pub event_ids: Vec<String>,
}

impl WindowArgs {
    /// The window (Unix milliseconds, checked) and the filters.
    pub fn resolve(&self, now_ms: i64) -> Result<Filter, CliError> {
        let since = window::parse_time(&self.since, now_ms)
            .map_err(|e| CliError::Usage(format!("--since {e}")))?;
        let until = match &self.until {
            Some(u) => window::parse_time(u, now_ms)
                .map_err(|e| CliError::Usage(format!("--until {e}")))?,
            None => now_ms,
        };
        if since > now_ms {
            return Err(CliError::Usage(format!(
                "--since {:?} is in the future",
                self.since
            )));
        }
        if until < since {
            return Err(CliError::Usage("--until is before --since".into()));
        }
        Ok(Filter {
            since_ms: since,
            until_ms: until,
            event_ids: self.event_ids.clone(),
            provider: self.provider.clone(),
            outcomes: self
                .status
                .iter()
                .filter_map(|s| match s {
                    StatusFilter::Outcome(o) => Some(*o),
                    StatusFilter::Reconciled => None,
                })
                .collect(),
            reconciled: self.status.contains(&StatusFilter::Reconciled),
            prediction: self.prediction.clone(),
        })
    }
}

/// A `--status` value: an event state, or `reconciled`, the mark of an event the
/// reconciler fetched from the provider's API (issue 23), in any state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Events whose deciding entry has this outcome.
    Outcome(IndexOutcome),
    /// Events whose entry says `"reconciled": true`.
    Reconciled,
}

/// The `--status` word for reconciled events.
pub const RECONCILED: &str = "reconciled";

/// A `--status` value for clap: an event state or `reconciled`.
pub fn parse_status(s: &str) -> Result<StatusFilter, String> {
    if s == RECONCILED {
        return Ok(StatusFilter::Reconciled);
    }
    IndexOutcome::parse(s)
        .map(StatusFilter::Outcome)
        .ok_or_else(|| {
            format!(
                "{s:?} is not one of {}, {RECONCILED}",
                IndexOutcome::ALL.map(IndexOutcome::as_str).join(", ")
            )
        })
}

/// `events list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    window: WindowArgs,
}

/// `events show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// An event id (as `events list` prints it), or a prediction id: every event of that
    /// prediction (`started`, `succeeded`, a contradicting `failed`, …), oldest first.
    event_id: String,
    /// The webhook secret, to verify the stored bytes again (or HOOKVAULT_SECRET).
    #[arg(long, env = "HOOKVAULT_SECRET", hide_env_values = true)]
    secret: Option<String>,
}

/// Now, Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs `events …`.
pub async fn run(cmd: EventsCommand) -> Result<ExitCode, CliError> {
    match cmd {
        EventsCommand::List(a) => list(a).await,
        EventsCommand::Show(a) => show(a).await,
    }
}

/// The entries of a window, read with a progress bar.
pub async fn entries(
    aws: &Aws,
    bucket: &str,
    window: &WindowArgs,
    json: bool,
) -> Result<Vec<IndexEntry>, CliError> {
    let filter = window.resolve(now_ms())?;
    let listed = log::list_keys(aws, bucket, &filter).await?;
    let bar = progress(Some(listed.len() as u64), json, "reading the event log");
    let entries = log::read_entries(aws, bucket, &listed, &filter, || bar.inc(1)).await;
    bar.finish_and_clear();
    entries
}

async fn list(a: ListArgs) -> Result<ExitCode, CliError> {
    let aws = Aws::load().await;
    let entries = entries(&aws, &a.stack.bucket, &a.window, a.stack.json).await?;
    if !a.stack.json {
        outln!(
            "{:<24} {:<10} {:<17} {:<40} {:<20} ERROR",
            "RECEIVED",
            "PROVIDER",
            "STATE",
            "EVENT",
            "PREDICTION"
        );
    }
    for e in &entries {
        if a.stack.json {
            outln!("{}", serde_json::to_string(e).unwrap_or_default());
        } else {
            outln!(
                "{:<24} {:<10} {:<17} {:<40} {:<20} {}",
                hookvault_core::time::rfc3339(e.received_at_ms.div_euclid(1000)),
                e.provider,
                state_label(e),
                e.event_id,
                e.prediction_id.as_deref().unwrap_or("-"),
                e.error_id.as_deref().unwrap_or("")
            );
        }
    }
    if !a.stack.json {
        eprintln!("{} event(s)", entries.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// An entry's state as `events list` prints it: its outcome, with `+reconciled` for an
/// event fetched from the provider's API (`archived+reconciled`); a `stalled` entry is
/// the reconciler's own and says so alone.
pub fn state_label(e: &IndexEntry) -> String {
    if e.reconciled && e.outcome != IndexOutcome::Stalled {
        format!("{}+{RECONCILED}", e.outcome.as_str())
    } else {
        e.outcome.as_str().to_owned()
    }
}

async fn show(a: ShowArgs) -> Result<ExitCode, CliError> {
    let aws = Aws::load().await;
    let bucket = &a.stack.bucket;
    let mut entries = log::by_event_id(&aws, bucket, &a.event_id).await?;
    if entries.is_empty() {
        entries = log::by_prediction(&aws, bucket, &a.event_id).await?;
    }
    if entries.is_empty() {
        return Err(CliError::Failed(format!(
            "no event or prediction {:?} in the event log of s3://{bucket}: the archiver has not finished it \
             (still in the queue, or in the DLQ after MaxReceiveCount failures: \
             `hookvault replay --dlq --dry-run --event-id {}` finds it there), or it is older \
             than EventLogRetentionDays",
            a.event_id, a.event_id
        )));
    }
    let mut refused = false;
    for entry in entries {
        let shown = describe(&aws, bucket, &entry, a.secret.as_deref()).await?;
        refused |= shown["signature"]["verified"] == Value::Bool(false);
        if a.stack.json {
            outln!("{shown}");
        } else {
            print_text(&shown);
        }
    }
    Ok(if refused {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Everything known of one entry, as JSON: `entry`, `event` (the evidence), `archive`
/// (`manifest` or `failure`), `state` (the prediction's `state.json`: the status it
/// holds and the event that set it), `signature` (with a secret).
async fn describe(
    aws: &Aws,
    bucket: &str,
    entry: &IndexEntry,
    secret: Option<&str>,
) -> Result<Value, CliError> {
    let mut out = json!({ "entry": entry });
    let record: Option<EventRecord> = match &entry.raw_event {
        Some(key) => match log::get(aws, bucket, key).await? {
            Some(bytes) => serde_json::from_slice(&bytes).ok(),
            None => None,
        },
        None => None,
    };
    if let Some(p) = entry
        .prediction_id
        .as_deref()
        .filter(|p| archive::check_id(p).is_ok())
    {
        let manifest_key = archive::manifest_key(p).map_err(|e| CliError::Failed(e.to_string()))?;
        let failure_key = archive::failure_key(p).map_err(|e| CliError::Failed(e.to_string()))?;
        let state_key = archive::state_key(p).map_err(|e| CliError::Failed(e.to_string()))?;
        if let Some(bytes) = log::get(aws, bucket, &state_key).await? {
            out["state"] = serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null);
        }
        if let Some(bytes) = log::get(aws, bucket, &manifest_key).await? {
            let m: Option<Manifest> = serde_json::from_slice(&bytes).ok();
            out["archive"] =
                json!({ "manifest": manifest_key, "outputs": m.map(|m| m.outputs.len()) });
        } else if let Some(bytes) = log::get(aws, bucket, &failure_key).await? {
            let f: Option<FailureRecord> = serde_json::from_slice(&bytes).ok();
            out["archive"] = json!({ "failure": failure_key, "error_id": f.as_ref().and_then(|f| f.error_id.clone()), "error_message": f.and_then(|f| f.error_message) });
        } else {
            out["archive"] = json!({ "state": "nothing under predictions/ for it" });
        }
        if entry.outcome == IndexOutcome::Stalled {
            let stalled_key =
                archive::stalled_key(p).map_err(|e| CliError::Failed(e.to_string()))?;
            if let Some(bytes) = log::get(aws, bucket, &stalled_key).await? {
                out["stalled"] = serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null);
            }
        }
    }
    if let Some(r) = &record {
        out["event"] = serde_json::to_value(r).unwrap_or(Value::Null);
        if let Some(fetched) = &r.reconciled {
            // Fetched from the provider's API (issue 23): no signature was ever checked,
            // so there is none to check again; the evidence is where and when.
            out["signature"] = json!({
                "verified": Value::Null,
                "reason": format!(
                    "reconciled: fetched from {} at {}, not received signed",
                    fetched.url,
                    hookvault_core::time::rfc3339(fetched.fetched_at_ms.div_euclid(1000))
                ),
            });
        } else if let Some(secret) = secret {
            out["signature"] = verify(aws, bucket, r, secret).await?;
        }
    } else if entry.outcome != IndexOutcome::Stalled {
        // (A stalled entry is the reconciler's note on a prediction, not an event.)
        if entry.outcome != IndexOutcome::Rejected {
            out["event"] = json!({ "missing": entry.raw_event });
        }
        if secret.is_some() {
            // Asked to verify and cannot: say so, and exit 1.
            out["signature"] = json!({ "verified": false, "reason": "no stored evidence (event.json) to verify against" });
        }
    }
    Ok(out)
}

/// The stored bytes verified against the stored signature headers, at the time the edge
/// received them.
async fn verify(aws: &Aws, bucket: &str, r: &EventRecord, secret: &str) -> Result<Value, CliError> {
    let ring =
        KeyRing::single(r.scheme, secret).map_err(|e| CliError::Usage(format!("--secret: {e}")))?;
    let Some(body) = log::get(aws, bucket, &r.body_key).await? else {
        return Ok(
            json!({ "verified": false, "reason": format!("the body {} is gone", r.body_key) }),
        );
    };
    let opts = VerifyOptions {
        now: r.received_at_ms.div_euclid(1000),
        tolerance: hookvault_core::scheme::DEFAULT_TOLERANCE_SECS,
    };
    Ok(
        match r.scheme.verify(&ring, &r.signature_headers, &body, &opts) {
            Ok(_) => {
                json!({ "verified": true, "scheme": r.scheme.name(), "body_bytes": body.len() })
            }
            Err(e) => json!({ "verified": false, "reason": e.to_string() }),
        },
    )
}

fn print_text(v: &Value) {
    let e = &v["entry"];
    let s = |x: &Value| {
        x.as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| x.to_string())
    };
    outln!("event      {}", s(&e["event_id"]));
    outln!("provider   {}", s(&e["provider"]));
    outln!("state      {}", s(&e["outcome"]));
    if let Some(r) = e["received_at_ms"].as_i64() {
        outln!(
            "received   {}",
            hookvault_core::time::rfc3339(r.div_euclid(1000))
        );
    }
    for (label, field) in [
        ("prediction", "prediction_id"),
        ("status", "status"),
        ("error", "error_id"),
        ("trace id", "trace_id"),
        ("spooled", "spooled"),
        ("reconciled", "reconciled"),
        ("raw event", "raw_event"),
    ] {
        if !e[field].is_null() {
            outln!("{label:<10} {}", s(&e[field]));
        }
    }
    outln!(
        "body       {} bytes, sha256 {}",
        s(&e["body_bytes"]),
        s(&e["body_sha256"])
    );
    if let Some(ev) = v.get("event").filter(|x| x.get("scheme").is_some()) {
        outln!(
            "scheme     {} (key {}, slot {})",
            s(&ev["scheme"]),
            s(&ev["key_id"]),
            s(&ev["key_slot"])
        );
        if let Some(h) = ev["signature_headers"].as_array() {
            for pair in h {
                outln!("header     {}: {}", s(&pair[0]), s(&pair[1]));
            }
        }
    }
    if let Some(a) = v.get("archive") {
        outln!("archive    {a}");
    }
    if let Some(st) = v.get("stalled").filter(|x| x.is_object()) {
        outln!(
            "stalled    {} checks, last status {}, last error {}, at {}",
            s(&st["checks"]),
            s(&st["last_status"]),
            s(&st["last_error"]),
            s(&st["stalled_at"])
        );
    }
    if let Some(st) = v.get("state").filter(|x| x.is_object()) {
        outln!(
            "holds      {} (set by {})",
            s(&st["status"]),
            s(&st["event_id"])
        );
    }
    if let Some(sig) = v.get("signature") {
        if sig["verified"] == Value::Bool(true) {
            outln!("signature  verified again from the stored bytes");
        } else if sig["verified"].is_null() {
            outln!("signature  none: {}", s(&sig["reason"]));
        } else {
            outln!("signature  REFUSED: {}", s(&sig["reason"]));
        }
    }
    outln!("");
}
