//! The event log: after each record, one entry for what became of it, at
//! `index/log/{YYYY-MM-DD}/{HH}/{provider}/{outcome}/{sha256}.json` (dated by the edge's
//! receipt) and `index/id/{sha256(event id)}/{provider}/{sha256}.json` (found by event
//! id), and, for a prediction webhook, `index/prediction/{sha256(prediction id)}/{provider}/{sha256}.json`
//! (every event of one prediction, for `hookvault events show <prediction id>`). Each
//! holds one [`IndexEntry`] as one JSON line. `hookvault events list` lists an
//! hour's keys and filters by provider and outcome without reading an object; Athena reads
//! `index/log/` as a JSON-lines table (`docs/operations.md`). Retention: the template's
//! `EventLogRetentionDays` lifecycle rule on `index/`.
//!
//! An unreadable message has no provider, digest or receipt time: its entry goes under
//! the provider `~rejected`, with the SHA-256 of the message body and SQS's
//! `SentTimestamp`.

use aws_lambda_events::event::sqs::SqsMessage;
use hookvault_core::archive;
use hookvault_core::records::{IndexEntry, IndexOutcome};
use sha2::{Digest, Sha256};

use crate::metrics::Facts;
use crate::outcome::{Outcome, Transient};
use crate::store::{now_rfc3339, Condition, Store};

/// The longest the archiver waits for S3 to take a `dead_lettered` entry.
pub const DEAD_LETTER_WRITE_MAX: std::time::Duration = std::time::Duration::from_secs(10);

/// The entry of one record.
pub fn entry(record: &SqsMessage, facts: &Facts, outcome: IndexOutcome, now_ms: i64) -> IndexEntry {
    let message_id = record.message_id.clone().unwrap_or_default();
    let (provider, body_sha256, received_at_ms, event_id) =
        match (&facts.provider, &facts.body_sha256) {
            (Some(p), Some(sha)) => (
                p.clone(),
                sha.clone(),
                facts.received_at_ms.unwrap_or(now_ms),
                facts.event_id.clone().unwrap_or_default(),
            ),
            _ => {
                let body = record.body.as_deref().unwrap_or_default();
                let sent = record
                    .attributes
                    .get("SentTimestamp")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(now_ms);
                (
                    archive::REJECTED_PROVIDER.to_owned(),
                    hex::encode(Sha256::digest(body.as_bytes())),
                    sent,
                    message_id.clone(),
                )
            }
        };
    IndexEntry {
        event_id,
        provider,
        received_at_ms,
        body_sha256,
        body_bytes: facts.body_bytes,
        outcome,
        prediction_id: facts.prediction_id.clone(),
        status: facts.status.clone(),
        error_id: facts.error_id.clone(),
        raw_event: facts.raw_event.clone(),
        trace_id: facts.trace_id.clone(),
        output_expires_at: facts
            .output_window
            .as_ref()
            .map(|w| w.output_expires_at.clone()),
        message_id,
        replayed: facts.replayed,
        spooled: facts.spooled,
        reconciled: facts.reconciled,
        recorded_at: now_rfc3339(),
    }
}

/// Writes the record's entry under both keys. An S3 failure is transient: the record
/// is redelivered, and everything before this is content addressed or guarded by the
/// manifest, so the redelivery only writes the entry.
pub(crate) async fn log(
    store: &Store,
    record: &SqsMessage,
    facts: &Facts,
    outcome: &Outcome,
) -> Result<(), Transient> {
    write_entry(store, record, facts, outcome.index_outcome()).await
}

/// On a record's last receive, before SQS moves it to the DLQ: a `dead_lettered`
/// entry (`error_id` `RETRIES_EXHAUSTED`), so `hookvault events list` and `events show`
/// find the event while it waits there. Best effort, for a readable envelope only (an
/// unreadable one is kept under `rejected/` and never fails): a write S3 refuses (S3
/// may be the very failure) is logged and the record fails as it would have.
///
/// It takes at most [`DEAD_LETTER_WRITE_MAX`], and nothing past `deadline` (the batch's
/// answer must still go out), and it never replaces an entry already found by event id
/// (`If-None-Match: *`): an event archived before and dead-lettered on a duplicate
/// delivery stays `archived` for `events show`.
pub(crate) async fn log_dead_lettered(
    store: &Store,
    record: &SqsMessage,
    facts: &Facts,
    deadline: Option<std::time::Instant>,
) {
    if facts.provider.is_none() || facts.body_sha256.is_none() {
        return;
    }
    let facts = Facts {
        error_id: Some(crate::metrics::RETRIES_EXHAUSTED.to_owned()),
        ..facts.clone()
    };
    let budget = deadline
        .map(|d| d.saturating_duration_since(std::time::Instant::now()))
        .unwrap_or(DEAD_LETTER_WRITE_MAX)
        .min(DEAD_LETTER_WRITE_MAX);
    let written = tokio::time::timeout(
        budget,
        write_entry(store, record, &facts, IndexOutcome::DeadLettered),
    )
    .await;
    let reason = match written {
        Ok(Ok(())) => return,
        Ok(Err(Transient(reason))) => reason,
        Err(_) => format!("no answer from S3 within {budget:?} (the invocation's deadline)"),
    };
    tracing::warn!(reason = %reason, "the event log's dead_lettered entry was not written");
}

async fn write_entry(
    store: &Store,
    record: &SqsMessage,
    facts: &Facts,
    outcome: IndexOutcome,
) -> Result<(), Transient> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let e = entry(record, facts, outcome, now_ms);
    let mut line = serde_json::to_vec(&e).map_err(|err| Transient(err.to_string()))?;
    line.push(b'\n');
    let log_key = archive::index_log_key(e.received_at_ms, &e.provider, e.outcome, &e.body_sha256);
    let id_key = archive::index_id_key(&e.event_id, &e.provider, &e.body_sha256);
    store
        .put_bytes(&log_key, line.clone(), "application/x-ndjson", "PutObject")
        .await?;
    if let Some(p) = e
        .prediction_id
        .as_deref()
        .filter(|_| outcome != IndexOutcome::DeadLettered)
    {
        let key = archive::index_prediction_key(p, &e.provider, &e.body_sha256);
        store
            .put_bytes(&key, line.clone(), "application/x-ndjson", "PutObject")
            .await?;
    }
    if outcome != IndexOutcome::DeadLettered {
        return Ok(store
            .put_bytes(&id_key, line, "application/x-ndjson", "PutObject")
            .await?);
    }
    // A dead letter never replaces what the event id already shows (a 412 or 409 is
    // not written, and that is the point).
    store
        .put_if(
            &id_key,
            line,
            "application/x-ndjson",
            Condition::Absent,
            "PutObject",
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookvault_core::records::IndexOutcome;

    #[test]
    fn an_unreadable_message_is_logged_by_its_own_digest_and_sent_time() {
        let mut record = SqsMessage::default();
        record.message_id = Some("m-1".into());
        record.body = Some("not an envelope".into());
        record
            .attributes
            .insert("SentTimestamp".into(), "1800000000000".into());
        let e = entry(
            &record,
            &Facts::default(),
            Outcome::Rejected.index_outcome(),
            5,
        );
        assert_eq!(e.provider, archive::REJECTED_PROVIDER);
        assert_eq!(e.outcome, IndexOutcome::Rejected);
        assert_eq!(e.received_at_ms, 1_800_000_000_000);
        assert_eq!(
            e.body_sha256,
            hex::encode(Sha256::digest(b"not an envelope"))
        );
        assert_eq!(e.event_id, "m-1");
        let facts = Facts {
            provider: Some("skytells".into()),
            body_sha256: Some("ab".repeat(32)),
            received_at_ms: Some(7),
            event_id: Some("skytells:p:succeeded".into()),
            prediction_id: Some("p".into()),
            replayed: true,
            ..Facts::default()
        };
        let e = entry(&record, &facts, Outcome::AlreadyArchived.index_outcome(), 5);
        assert_eq!(
            (e.provider.as_str(), e.received_at_ms, e.outcome),
            ("skytells", 7, IndexOutcome::Archived)
        );
        assert!(e.replayed);
    }

    #[test]
    fn a_reconciled_event_is_marked_and_a_corroborating_one_logged_as_such() {
        let record = SqsMessage::default();
        let facts = Facts {
            provider: Some("skytells".into()),
            body_sha256: Some("cd".repeat(32)),
            received_at_ms: Some(7),
            event_id: Some("skytells:p:succeeded:reconciled".into()),
            prediction_id: Some("p".into()),
            reconciled: true,
            ..Facts::default()
        };
        let e = entry(&record, &facts, Outcome::AlreadyArchived.index_outcome(), 5);
        assert!(e.reconciled);
        let line = serde_json::to_string(&e).unwrap_or_default();
        assert!(line.contains(r#""reconciled":true"#), "{line}");
        let signed = Facts {
            reconciled: false,
            ..facts
        };
        let e = entry(
            &record,
            &signed,
            Outcome::Corroborated {
                held: "succeeded".into(),
            }
            .index_outcome(),
            5,
        );
        assert_eq!(e.outcome, IndexOutcome::Corroborating);
        assert!(!e.reconciled);
        let line = serde_json::to_string(&e).unwrap_or_default();
        assert!(!line.contains(r#""reconciled":"#), "{line}");
    }
}
