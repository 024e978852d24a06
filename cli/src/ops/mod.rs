//! The operator commands: `hookvault events list|show`, `hookvault replay` and
//! `hookvault reconcile`, on the stack's archive bucket and queues, with the standard AWS
//! credential chain.

/// `println!` that ends the program quietly (exit 0) when stdout is closed, as when the
/// output is piped into `head`, instead of panicking.
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::ops::out(&format!($($t)*))
    };
}

pub mod events;
pub mod log;
pub mod reconcile;
pub mod replay;
pub mod window;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::commands::CliError;

/// Where the stack is. Each has an environment variable, so a shell set up once (see
/// `docs/operations.md`, which reads them from the stack's outputs) needs no flags.
#[derive(Args, Debug, Clone)]
pub struct StackArgs {
    /// The archive bucket (the stack's `ArchiveBucket` output).
    #[arg(long, env = "HOOKVAULT_BUCKET", value_parser = non_empty)]
    pub bucket: String,
    /// Print JSON lines instead of text: one per event (`reconcile`: one per prediction);
    /// `replay` and `reconcile` end with a summary line.
    #[arg(long)]
    pub json: bool,
}

/// The queues, for replays.
#[derive(Args, Debug, Clone)]
pub struct QueueArgs {
    /// The events queue (the stack's `QueueUrl` output).
    #[arg(long, env = "HOOKVAULT_QUEUE_URL", value_parser = non_empty)]
    pub queue_url: String,
}

/// A bucket or queue URL: an empty one (`HOOKVAULT_DLQ_URL=` in a shell) is a usage error
/// that says so, not a call that fails with "NonExistentQueue".
pub fn non_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("empty: set it to the stack's output (see docs/operations.md)".into())
    } else {
        Ok(s.to_owned())
    }
}

/// SDK clients from the standard chain: `AWS_PROFILE`, SSO, environment variables,
/// `credential_process`, the instance or container role; the region likewise;
/// `AWS_ENDPOINT_URL` when set (the local stack), then S3 with path-style addresses.
pub struct Aws {
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
}

impl Aws {
    /// Loads the configuration as the AWS CLI would.
    pub async fn load() -> Aws {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let local = std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(local)
                .build(),
        );
        Aws {
            s3,
            sqs: aws_sdk_sqs::Client::new(&config),
        }
    }
}

/// An SDK error, short: the service's code and message when it answered (`NoSuchBucket:
/// The specified bucket does not exist`), else what stopped the request (no
/// credentials, no region, no connection) with a hint. Never a credential.
pub fn sdk_error<E, R>(what: &str, e: aws_sdk_s3::error::SdkError<E, R>) -> CliError
where
    E: std::error::Error + aws_sdk_s3::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::ProvideErrorMetadata as _;
    let short = hookvault_aws::sdk_error::short(&e);
    if e.code().is_some() {
        return CliError::Failed(format!("{what}: {short}"));
    }
    let full = aws_sdk_s3::error::DisplayErrorContext(&e).to_string();
    let hint = if full.contains("region") {
        " (set AWS_REGION, or a region in your AWS profile)"
    } else if full.contains("credentials") {
        " (no AWS credentials: set AWS_PROFILE, run `aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    } else {
        ""
    };
    CliError::Failed(format!("{what}: {short}{hint}"))
}

/// A progress bar on stderr for `len` steps (a spinner when `None`), hidden with `--json`
/// or when stderr is not a terminal.
pub fn progress(len: Option<u64>, json: bool, what: &str) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    if json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    } else {
        bar.set_draw_target(ProgressDrawTarget::stderr());
    }
    let template = if len.is_some() {
        "{msg} [{bar:30}] {pos}/{len} ({eta})"
    } else {
        "{spinner} {msg} {pos}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Writes one line to stdout; a closed stdout (`| head`) ends the program with exit 0.
pub fn out(line: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}").is_err() {
        std::process::exit(0);
    }
}

/// Prints a line above the progress bar (or as is without one).
pub fn say(bar: &ProgressBar, line: &str) {
    if bar.is_hidden() {
        out(line);
    } else {
        bar.println(line);
    }
}

/// What a replay did, counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Queued again (or, with `--dry-run`, would be).
    pub replayed: u64,
    /// Left alone (already archived, filtered out, not replayable).
    pub skipped: u64,
    /// Could not be replayed (an S3 or SQS error); they stay where they were.
    pub failed: u64,
    /// Nothing was changed.
    pub dry_run: bool,
}

impl Summary {
    /// Counts one result.
    pub fn add(&mut self, action: Action) {
        match action {
            Action::Replayed => self.replayed += 1,
            Action::Skipped => self.skipped += 1,
            Action::Failed => self.failed += 1,
        }
    }

    /// The closing line: text or JSON.
    pub fn line(&self, json: bool) -> String {
        if json {
            serde_json::json!({ "summary": self }).to_string()
        } else {
            format!(
                "{}replayed {}, skipped {}, failed {}",
                if self.dry_run {
                    "dry run: would have "
                } else {
                    ""
                },
                self.replayed,
                self.skipped,
                self.failed
            )
        }
    }
}

/// What became of one event or message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Queued again.
    Replayed,
    /// Left alone.
    Skipped,
    /// Failed.
    Failed,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Replayed => "replayed",
            Action::Skipped => "skipped",
            Action::Failed => "failed",
        }
    }
}

/// Counts `action` in `summary` and prints its line above `bar`.
pub fn report(
    bar: &ProgressBar,
    summary: &mut Summary,
    json: bool,
    action: Action,
    id: &str,
    detail: &str,
) {
    summary.add(action);
    say(bar, &result_line(json, action, summary.dry_run, id, detail));
}

/// One result line: `replayed  EVENT_ID  detail`, or its JSON.
pub fn result_line(json: bool, action: Action, dry_run: bool, id: &str, detail: &str) -> String {
    if json {
        serde_json::json!({
            "action": action,
            "dry_run": dry_run,
            "event_id": id,
            "detail": detail,
        })
        .to_string()
    } else {
        let verb = match (action, dry_run) {
            (Action::Replayed, true) => "would replay",
            (a, _) => a.as_str(),
        };
        format!("{verb:<13} {id}  {detail}")
    }
}
