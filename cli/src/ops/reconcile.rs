//! `hookvault reconcile`: check again, now, every prediction the api submitted since a
//! time whose terminal state the archive does not hold (issue 23).
//!
//! It lists the ledger (`predictions/{id}/submission.json`, one per accepted submission:
//! [`SubmissionRecord`]) for the records written since `--since`, reads each prediction's
//! `state.json`, and for each one without a terminal state sends a [`Check`] to the check
//! queue with no delay. The reconciler then does what it does with any check: fetches the
//! prediction from the provider and queues it to the archiver if it is terminal, or checks
//! it again later. `--dry-run` sends nothing and says what it would send. A prediction
//! whose chain of checks is alive (`predictions/{id}/check.json`) gets one more fetch and
//! no second chain: running this again costs one provider GET per prediction.
//!
//! The ledger has no index by time: the listing covers every key under `predictions/`
//! (1,000 a request) and keeps the `submission.json` whose `LastModified` is not before
//! `--since` (it is written after the provider accepted the prediction, so never before
//! its `submitted_at`); each record's own `submitted_at` then decides.

use std::process::ExitCode;

use aws_sdk_s3::primitives::DateTime;
use clap::Args;
use futures_util::stream::{self, StreamExt};
use hookvault_core::archive;
use hookvault_core::reconcile::{Check, CheckSource};
use hookvault_core::records::SubmissionRecord;
use hookvault_core::state::StateRecord;
use serde_json::json;

use super::events::now_ms;
use super::{log, non_empty, progress, say, sdk_error, window, Aws, StackArgs};
use crate::commands::CliError;

/// Ledger records and states read at once.
const READS_IN_FLIGHT: usize = 16;

/// Who a check from this command says scheduled it: `"source":"cli"` (attempt 0, the
/// ledger's submission time, as the api's first check).
const SOURCE: CheckSource = CheckSource::Cli;

/// `hookvault reconcile`.
#[derive(Args, Debug)]
pub struct ReconcileArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// The check queue (the stack's `CheckQueueUrl` output); not needed with --dry-run.
    #[arg(long, env = "CHECK_QUEUE_URL", value_parser = non_empty)]
    check_queue_url: Option<String>,
    /// Submissions from this time: a duration back from now (90s, 30m, 2h, 7d) or an RFC
    /// 3339 time (`Z` or an offset), against the ledger's `submitted_at`.
    #[arg(long)]
    since: String,
    /// Send nothing; print what would be sent.
    #[arg(long)]
    dry_run: bool,
}

/// What a run did, counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Checks sent (or, with `--dry-run`, that would be).
    pub checked: u64,
    /// Submissions left alone: terminal in the archive, or an unreadable record.
    pub skipped: u64,
    /// Checks that could not be sent, or states that could not be read.
    pub failed: u64,
    /// Nothing was sent.
    pub dry_run: bool,
}

impl Summary {
    /// The closing line: text or JSON.
    pub fn line(&self, json: bool) -> String {
        if json {
            json!({ "summary": self }).to_string()
        } else {
            format!(
                "{}checked {}, skipped {}, failed {}",
                if self.dry_run {
                    "dry run: would have "
                } else {
                    ""
                },
                self.checked,
                self.skipped,
                self.failed
            )
        }
    }
}

/// What became of one submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A check was sent (would be, with `--dry-run`).
    Checked,
    /// Left alone.
    Skipped,
    /// Failed.
    Failed,
}

/// One submission's line: text or JSON.
fn line(json: bool, dry_run: bool, outcome: Outcome, s: &SubmissionRecord, detail: &str) -> String {
    if json {
        json!({
            "action": outcome,
            "dry_run": dry_run,
            "provider": s.provider,
            "prediction_id": s.prediction_id,
            "submitted_at": s.submitted_at,
            "detail": detail,
        })
        .to_string()
    } else {
        let verb = match (outcome, dry_run) {
            (Outcome::Checked, true) => "would check",
            (Outcome::Checked, false) => "checked",
            (Outcome::Skipped, _) => "skipped",
            (Outcome::Failed, _) => "failed",
        };
        format!(
            "{verb:<12} {:<24} {}  {detail}",
            s.prediction_id, s.submitted_at
        )
    }
}

/// Runs `reconcile`.
pub async fn run(a: ReconcileArgs) -> Result<ExitCode, CliError> {
    let now = now_ms();
    let since_ms =
        window::parse_time(&a.since, now).map_err(|e| CliError::Usage(format!("--since {e}")))?;
    if since_ms > now {
        return Err(CliError::Usage(format!(
            "--since {:?} is in the future",
            a.since
        )));
    }
    let queue = match (a.dry_run, a.check_queue_url.as_deref()) {
        (_, Some(q)) => Some(q.to_owned()),
        (true, None) => None,
        (false, None) => {
            return Err(CliError::Usage(
                "reconcile needs --check-queue-url (or CHECK_QUEUE_URL): the stack's CheckQueueUrl output (or --dry-run)"
                    .into(),
            ))
        }
    };
    let aws = Aws::load().await;
    let bucket = &a.stack.bucket;
    let json = a.stack.json;

    let keys = ledger_keys(&aws, bucket, since_ms).await?;
    let bar = progress(Some(keys.len() as u64), json, "reading the ledger");
    let read: Vec<Result<Option<SubmissionRecord>, CliError>> =
        stream::iter(keys.iter().map(|key| {
            let aws = &aws;
            let bar = &bar;
            async move {
                let r = read_submission(aws, bucket, key).await;
                bar.inc(1);
                r
            }
        }))
        .buffered(READS_IN_FLIGHT)
        .collect()
        .await;
    bar.finish_and_clear();
    let mut submissions = Vec::new();
    for r in read {
        if let Some(s) = r? {
            match window::parse_time(&s.submitted_at, now) {
                Ok(at) if at >= since_ms => submissions.push((at, s)),
                _ => {}
            }
        }
    }
    submissions.sort_by(|x, y| (x.0, &x.1.prediction_id).cmp(&(y.0, &y.1.prediction_id)));

    let mut summary = Summary {
        dry_run: a.dry_run,
        ..Summary::default()
    };
    let bar = progress(Some(submissions.len() as u64), json, "checking");
    for (at_ms, s) in &submissions {
        let (outcome, detail) = match reconcile_one(&aws, bucket, queue.as_deref(), *at_ms, s).await
        {
            Ok(r) => r,
            Err(e) => (Outcome::Failed, e.to_string()),
        };
        match outcome {
            Outcome::Checked => summary.checked += 1,
            Outcome::Skipped => summary.skipped += 1,
            Outcome::Failed => summary.failed += 1,
        }
        say(&bar, &line(json, a.dry_run, outcome, s, &detail));
        bar.inc(1);
    }
    bar.finish_and_clear();
    outln!("{}", summary.line(json));
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One submission: skipped when its terminal state is archived, else a check sent.
async fn reconcile_one(
    aws: &Aws,
    bucket: &str,
    queue: Option<&str>,
    submitted_at_ms: i64,
    s: &SubmissionRecord,
) -> Result<(Outcome, String), CliError> {
    let state_key =
        archive::state_key(&s.prediction_id).map_err(|e| CliError::Failed(e.to_string()))?;
    let state: Option<StateRecord> = match log::get(aws, bucket, &state_key).await? {
        Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
            CliError::Failed(format!(
                "s3://{bucket}/{state_key}: not a state record: {e}"
            ))
        })?),
        None => None,
    };
    if let Some(st) = state.as_ref().filter(|st| st.terminal) {
        return Ok((
            Outcome::Skipped,
            format!("terminal: {} (set by {})", st.status, st.event_id),
        ));
    }
    let why = match &state {
        Some(st) => format!("holds {}", st.status),
        None => "nothing archived".to_owned(),
    };
    let check = Check::first(&s.provider, &s.prediction_id, submitted_at_ms, SOURCE);
    let Some(queue) = queue else {
        return Ok((Outcome::Checked, format!("{why}: a check, no delay")));
    };
    aws.sqs
        .send_message()
        .queue_url(queue)
        .message_body(check.to_json())
        .delay_seconds(0)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("sending a check to {queue}"), e))?;
    Ok((Outcome::Checked, format!("{why}: check sent")))
}

/// The keys of the ledger's records written since `since_ms` (S3's `LastModified`).
async fn ledger_keys(aws: &Aws, bucket: &str, since_ms: i64) -> Result<Vec<String>, CliError> {
    let since = DateTime::from_millis(since_ms);
    let mut keys = Vec::new();
    let mut pages = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(archive::PREDICTIONS_PREFIX)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            sdk_error(
                &format!("listing s3://{bucket}/{}", archive::PREDICTIONS_PREFIX),
                e,
            )
        })?;
        keys.extend(page.contents().iter().filter_map(|o| {
            let key = o.key()?;
            let recent = o.last_modified().is_none_or(|t| *t >= since);
            (recent && key.ends_with("/submission.json")).then(|| key.to_owned())
        }));
    }
    Ok(keys)
}

/// A ledger record; `None` when it is gone or does not read as one (skipped: the ledger
/// is the api's, and one bad record must not stop the others).
async fn read_submission(
    aws: &Aws,
    bucket: &str,
    key: &str,
) -> Result<Option<SubmissionRecord>, CliError> {
    let Some(bytes) = log::get(aws, bucket, key).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<SubmissionRecord>(&bytes)
        .ok()
        .filter(|s| archive::submission_key(&s.prediction_id).ok().as_deref() == Some(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission() -> SubmissionRecord {
        SubmissionRecord {
            provider: "skytells".into(),
            prediction_id: "pred_1".into(),
            model: "m".into(),
            submitted_at: "2026-12-06T03:00:00Z".into(),
            caller: "0123456789abcdef".into(),
            idempotency_scope: None,
        }
    }

    #[test]
    fn the_summary_says_what_was_or_would_be_done() {
        let s = Summary {
            checked: 2,
            skipped: 1,
            failed: 0,
            dry_run: true,
        };
        assert_eq!(
            s.line(false),
            "dry run: would have checked 2, skipped 1, failed 0"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&s.line(true)).unwrap(),
            json!({"summary": {"checked": 2, "skipped": 1, "failed": 0, "dry_run": true}})
        );
    }

    #[test]
    fn each_line_names_the_prediction_and_what_happened() {
        let text = line(
            false,
            true,
            Outcome::Checked,
            &submission(),
            "nothing archived",
        );
        assert!(text.starts_with("would check  pred_1"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&line(
            true,
            false,
            Outcome::Skipped,
            &submission(),
            "terminal",
        ))
        .unwrap();
        assert_eq!(v["action"], "skipped");
        assert_eq!(v["prediction_id"], "pred_1");
        assert_eq!(v["dry_run"], false);
    }
}
