//! `hookvault replay`: events back onto the queue, from the DLQ or from the event log.
//!
//! * `--dlq`: every message of the DLQ (or those of `--event-id`) is sent to the queue as
//!   it is (body and message attributes), and deleted from the DLQ only once the queue
//!   has accepted it. A message not replayed stays in the DLQ.
//! * `--since … [--until …] [filters]`: the events of the event log, rebuilt from their
//!   raw event (`events/…/event.json` and `body`) into an envelope marked `replay`, and
//!   queued. Only `failed` events are replayed; settled ones (`archived`,
//!   `prediction_failed`, `kept`, `ignored`) are skipped, since the archiver would come to
//!   the same result, unless `--force`, which asks the archiver to archive them again.
//!   `dead_lettered` ones are skipped too (their message is in the DLQ, for `--dlq`),
//!   unless asked for with `--status dead_lettered` or `--force`.
//!
//! `--dry-run` changes nothing and says what would be done. Every run ends with a summary
//! (replayed, skipped, failed); the exit code is 1 when something failed.

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;

use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};
use clap::Args;
use hookvault_core::archive;
use hookvault_core::envelope::{needs_claim_check, Body, Envelope, Replay, S3Object};
use hookvault_core::records::{EventRecord, IndexEntry, IndexOutcome};

use super::events::{entries, now_ms, parse_status, StatusFilter, WindowArgs};
use super::{log, progress, report, sdk_error, Action, Aws, QueueArgs, StackArgs, Summary};
use crate::commands::CliError;

/// SQS's largest message, bytes (1 MiB since August 2025:
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html>).
/// A replayed body whose envelope would not fit goes by claim check, as at the edge.
pub const SQS_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// How long a DLQ message received by `replay --dlq` stays invisible to others, seconds.
const DLQ_VISIBILITY_SECS: i32 = 300;

/// `hookvault replay`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["dlq", "since"])))]
pub struct ReplayArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    queue: QueueArgs,
    /// Move messages from the dead-letter queue back to the queue.
    #[arg(long, conflicts_with = "since")]
    dlq: bool,
    /// The DLQ (the stack's `DlqUrl` output).
    #[arg(long, env = "HOOKVAULT_DLQ_URL")]
    dlq_url: Option<String>,
    /// Only this event id (repeat for several), with --dlq or --since.
    #[arg(long = "event-id")]
    event_ids: Vec<String>,
    /// Replay the event log's events from this time (see `events list`).
    #[arg(long)]
    since: Option<String>,
    /// End of the window (default: now).
    #[arg(long, requires = "since")]
    until: Option<String>,
    /// Only this provider.
    #[arg(long, requires = "since")]
    provider: Option<String>,
    /// Only events in this state (repeat for several): archived, failed,
    /// dead_lettered, prediction_failed, kept, ignored, conflicting, corroborating,
    /// rejected, stalled, or reconciled (fetched by the reconciler, any state).
    #[arg(long = "status", requires = "since", value_parser = parse_status)]
    status: Vec<StatusFilter>,
    /// Only this prediction id.
    #[arg(long, requires = "since")]
    prediction: Option<String>,
    /// Replay settled events too (archived, prediction_failed, kept, ignored): the archiver
    /// archives or records them again.
    #[arg(long, requires = "since")]
    force: bool,
    /// Change nothing; print what would be done.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `replay`.
pub async fn run(a: ReplayArgs) -> Result<ExitCode, CliError> {
    // Checked here, not by clap: an empty HOOKVAULT_DLQ_URL in the environment must not
    // stop a `replay --since`, which never reads it.
    let dlq = match (a.dlq, a.dlq_url.as_deref().map(str::trim)) {
        (true, None) => {
            return Err(CliError::Usage(
                "--dlq needs --dlq-url (or HOOKVAULT_DLQ_URL): the stack's DlqUrl output".into(),
            ))
        }
        (true, Some("")) => {
            return Err(CliError::Usage(
                "--dlq-url (or HOOKVAULT_DLQ_URL) is empty: set it to the stack's DlqUrl output"
                    .into(),
            ))
        }
        (true, Some(url)) => Some(url.to_owned()),
        (false, _) => None,
    };
    let aws = Aws::load().await;
    let summary = if let Some(dlq) = dlq {
        from_dlq(&aws, &a, &dlq).await?
    } else {
        from_log(&aws, &a).await?
    };
    outln!("{}", summary.line(a.stack.json));
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn is_fifo(queue_url: &str) -> bool {
    queue_url.ends_with(".fifo")
}

/// A deduplication id for a replayed message on a FIFO queue: random (UUID v4), so SQS's
/// five-minute deduplication window never drops a replay of a message it saw recently
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html>);
/// the archiver's own idempotency makes a double replay harmless.
fn replay_dedup_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn from_log(aws: &Aws, a: &ReplayArgs) -> Result<Summary, CliError> {
    let window = WindowArgs {
        since: a.since.clone().unwrap_or_default(),
        until: a.until.clone(),
        provider: a.provider.clone(),
        status: a.status.clone(),
        prediction: a.prediction.clone(),
        event_ids: a.event_ids.clone(),
    };
    let json = a.stack.json;
    let entries = entries(aws, &a.stack.bucket, &window, json).await?;
    let mut summary = Summary {
        dry_run: a.dry_run,
        ..Summary::default()
    };
    let bar = progress(Some(entries.len() as u64), json, "replaying");
    let at_ms = now_ms();
    for entry in &entries {
        let (action, detail) = match replay_entry(aws, a, entry, at_ms).await {
            Ok(r) => r,
            Err(e) => (Action::Failed, e.to_string()),
        };
        report(&bar, &mut summary, json, action, &entry.event_id, &detail);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(summary)
}

async fn replay_entry(
    aws: &Aws,
    a: &ReplayArgs,
    entry: &IndexEntry,
    at_ms: i64,
) -> Result<(Action, String), CliError> {
    let bucket = &a.stack.bucket;
    match entry.outcome {
        // Settled: a replay would find the same result and change nothing but the
        // log (and, for a failure, count it again), so only --force replays them.
        IndexOutcome::Archived if !a.force => {
            return Ok((
                Action::Skipped,
                "already archived (the manifest exists); --force archives it again".into(),
            ))
        }
        IndexOutcome::PredictionFailed if !a.force => return Ok((
            Action::Skipped,
            "settled: the provider's failure is recorded (failure.json); --force records it again"
                .into(),
        )),
        IndexOutcome::Kept
        | IndexOutcome::Ignored
        | IndexOutcome::Conflicting
        | IndexOutcome::Corroborating
            if !a.force =>
        {
            return Ok((
                Action::Skipped,
                format!(
                    "settled ({}): nothing more to archive; --force replays it",
                    entry.outcome.as_str()
                ),
            ))
        }
        // Its message is still in the DLQ: replaying it from the log too would process it
        // twice (and, if the cause is not fixed, dead-letter a second copy). Only asked
        // for by name, or with --force.
        IndexOutcome::DeadLettered
            if !a.force
                && !a
                    .status
                    .contains(&StatusFilter::Outcome(IndexOutcome::DeadLettered)) =>
        {
            return Ok((
                Action::Skipped,
                "its message is in the DLQ: `hookvault replay --dlq` moves it back (--status dead_lettered replays it from its raw event instead)".into(),
            ))
        }
        IndexOutcome::Rejected => {
            return Ok((
                Action::Skipped,
                "an unreadable message: nothing to rebuild (see rejected/)".into(),
            ))
        }
        // The reconciler's mark on a prediction that never became terminal: no event.
        IndexOutcome::Stalled => {
            return Ok((
                Action::Skipped,
                "a stalled prediction, not an event: `hookvault reconcile` checks it again"
                    .into(),
            ))
        }
        _ => {}
    }
    let Some(record_key) = &entry.raw_event else {
        let why = if entry.outcome == IndexOutcome::DeadLettered {
            "no raw event recorded: the message itself is in the DLQ (hookvault replay --dlq)"
        } else {
            "no raw event recorded"
        };
        return Ok((Action::Skipped, why.into()));
    };
    let record: EventRecord = match log::get(aws, bucket, record_key).await? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| CliError::Failed(format!("{record_key}: not an event record: {e}")))?,
        None => return Ok((Action::Failed, format!("{record_key} is gone"))),
    };
    let inline = !needs_claim_check(
        usize::try_from(record.body_bytes).unwrap_or(usize::MAX),
        SQS_MAX_MESSAGE_BYTES,
    );
    let detail = format!(
        "{} bytes {}{}",
        record.body_bytes,
        if inline { "inline" } else { "by claim check" },
        if a.force { ", --force" } else { "" }
    );
    if a.dry_run {
        return Ok((Action::Replayed, detail));
    }
    let body = if inline {
        match log::get(aws, bucket, &record.body_key).await? {
            Some(bytes) => Body::Inline(bytes),
            None => return Ok((Action::Failed, format!("{} is gone", record.body_key))),
        }
    } else {
        // The archiver reads claim checks only at raw/{sha256} of its own bucket.
        let key = archive::claim_check_key(&record.body_sha256);
        aws.s3
            .copy_object()
            .bucket(bucket)
            .key(&key)
            .copy_source(format!("{bucket}/{}", record.body_key))
            .send()
            .await
            .map_err(|e| sdk_error(&format!("copying {} to {key}", record.body_key), e))?;
        Body::S3(S3Object {
            bucket: bucket.clone(),
            key,
        })
    };
    let envelope = Envelope::from_record(
        &record,
        body,
        Replay {
            at_ms,
            force: a.force,
        },
    );
    let mut send = aws
        .sqs
        .send_message()
        .queue_url(&a.queue.queue_url)
        // A reconciled event (issue 23) goes back with its evidence, as the reconciler
        // sent it: without it the archiver would take it for a signed one.
        .message_body(match &record.reconciled {
            Some(evidence) => envelope.to_json_reconciled(evidence),
            None => envelope.to_json(),
        });
    if let Some(t) = &envelope.trace_id {
        send = send.message_attributes(hookvault_core::trace::SQS_ATTRIBUTE, string_attribute(t)?);
    }
    if is_fifo(&a.queue.queue_url) {
        send = send
            .message_group_id(envelope.group_id())
            .message_deduplication_id(replay_dedup_id());
    }
    send.send().await.map_err(|e| sdk_error("SendMessage", e))?;
    Ok((Action::Replayed, detail))
}

fn string_attribute(v: &str) -> Result<MessageAttributeValue, CliError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .map_err(|e| CliError::Failed(e.to_string()))
}

/// The event id of a queue message, if it is an envelope.
fn event_id_of(body: &str) -> Option<String> {
    Envelope::from_json(body).ok().map(|e| e.event_id)
}

async fn from_dlq(aws: &Aws, a: &ReplayArgs, dlq: &str) -> Result<Summary, CliError> {
    let json = a.stack.json;
    let mut summary = Summary {
        dry_run: a.dry_run,
        ..Summary::default()
    };
    let wanted: HashSet<&str> = a.event_ids.iter().map(String::as_str).collect();
    if is_fifo(dlq) && (a.dry_run || !wanted.is_empty()) {
        // SQS hands out a FIFO group's next messages only once the ones in flight are
        // deleted: held messages block the rest of their group for this run.
        eprintln!(
            "note: the DLQ is FIFO: a dry run or an --event-id filter sees at most 10 messages \
             of each message group (those held back block the rest of their group); \
             a real run without --event-id moves them all"
        );
    }
    let bar = progress(None, json, "replaying the DLQ");
    // Messages left in the DLQ (filtered out, dry run, failed): made visible again at the end.
    let mut held: HashMap<String, String> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut empty_receives = 0;
    while empty_receives < 2 {
        let resp = aws
            .sqs
            .receive_message()
            .queue_url(dlq)
            .max_number_of_messages(10)
            .visibility_timeout(DLQ_VISIBILITY_SECS)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
            .await
            .map_err(|e| sdk_error("ReceiveMessage (DLQ)", e))?;
        let messages: Vec<_> = resp
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.message_id().is_some_and(|id| seen.insert(id.to_owned())))
            .collect();
        if messages.is_empty() {
            empty_receives += 1;
            continue;
        }
        empty_receives = 0;
        for m in messages {
            let body = m.body().unwrap_or_default().to_owned();
            let receipt = m.receipt_handle().unwrap_or_default().to_owned();
            let message_id = m.message_id().unwrap_or_default().to_owned();
            let event_id = event_id_of(&body);
            let label = event_id
                .clone()
                .unwrap_or_else(|| format!("message {message_id}"));
            bar.inc(1);
            if !wanted.is_empty() && !event_id.as_deref().is_some_and(|id| wanted.contains(id)) {
                held.insert(message_id, receipt);
                report(
                    &bar,
                    &mut summary,
                    json,
                    Action::Skipped,
                    &label,
                    "not one of --event-id",
                );
                continue;
            }
            if a.dry_run {
                held.insert(message_id, receipt);
                let detail = format!("{} bytes", body.len());
                report(&bar, &mut summary, json, Action::Replayed, &label, &detail);
                continue;
            }
            let mut send = aws
                .sqs
                .send_message()
                .queue_url(&a.queue.queue_url)
                .message_body(&body);
            for (name, value) in m.message_attributes().into_iter().flatten() {
                send = send.message_attributes(name, value.clone());
            }
            if is_fifo(&a.queue.queue_url) {
                let group = m
                    .attributes()
                    .and_then(|at| at.get(&MessageSystemAttributeName::MessageGroupId).cloned())
                    .or_else(|| Envelope::from_json(&body).ok().map(|e| e.group_id()))
                    .unwrap_or_else(|| message_id.clone());
                send = send
                    .message_group_id(group)
                    .message_deduplication_id(replay_dedup_id());
            }
            match send.send().await {
                Ok(_) => {
                    // Deleted only now that the queue has it.
                    let deleted = aws
                        .sqs
                        .delete_message()
                        .queue_url(dlq)
                        .receipt_handle(&receipt)
                        .send()
                        .await;
                    let detail = match deleted {
                        Ok(_) => "moved to the queue".to_owned(),
                        Err(e) => format!(
                            "queued, but not deleted from the DLQ ({}); it will be replayed twice, which the archiver absorbs",
                            hookvault_aws::sdk_error::short(&e)
                        ),
                    };
                    report(&bar, &mut summary, json, Action::Replayed, &label, &detail);
                }
                Err(e) => {
                    held.insert(message_id, receipt);
                    let detail = format!(
                        "the queue refused it ({}); it stays in the DLQ",
                        hookvault_aws::sdk_error::short(&e)
                    );
                    report(&bar, &mut summary, json, Action::Failed, &label, &detail);
                }
            }
        }
    }
    bar.finish_and_clear();
    for receipt in held.values() {
        // Best effort: otherwise they come back by themselves after the visibility timeout.
        let _ = aws
            .sqs
            .change_message_visibility()
            .queue_url(dlq)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await;
    }
    Ok(summary)
}
