//! The ledger of submissions and the first check (issue 23, items 1 and 2).
//!
//! Once the provider accepted a prediction, and before the caller is answered, the api:
//!
//! 1. writes `predictions/{id}/submission.json` ([`SubmissionRecord`]: provider,
//!    prediction id, model, submitted at, the caller as the first 16 hex digits of its key's
//!    SHA-256, the idempotency scope) create-only (`If-None-Match: *`), beside the
//!    archive. A 412 means it is there already (a replay of the same prediction).
//! 2. sends a [`Check`] to `CHECK_QUEUE_URL` with `DelaySeconds` = `CHECK_FIRST_DELAY_SECS`,
//!    so the reconciler looks at the prediction even if its webhook never comes.
//!
//! Neither failure turns the answer into an error: the prediction exists at the provider,
//! and a 5xx would make the caller submit it again (a second prediction). A failed write
//! or send is an error log line with the prediction id and the EMF metric
//! `LedgerWriteFailures` or `CheckScheduleFailures` (namespace `METRICS_NAMESPACE`,
//! `Function=api`), and the reconciler's sweep (`SWEEP_ENABLED`) is the backstop. A
//! prediction id that is not a safe key ([`archive::check_id`]) is logged and neither
//! recorded nor checked.

use std::future::Future;

use hookvault_aws::metrics::{Emf, Unit};
use hookvault_core::archive;
use hookvault_core::reconcile::{Check, CheckSource};
use hookvault_core::records::SubmissionRecord;

use crate::auth::Caller;
use crate::idempotency::store::{Condition, Put, RecordStore};

/// Who submitted a prediction, as the ledger records it.
#[derive(Debug, Clone, Copy)]
pub struct Submitter<'a> {
    /// The caller.
    pub caller: &'a Caller,
    /// The idempotency scope ([`crate::idempotency::Scope::key_sha256`]) when the caller
    /// sent an `Idempotency-Key`.
    pub idempotency_scope: Option<&'a str>,
}

/// What became of the ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Written now.
    Written,
    /// It was there already (the same prediction submitted and recorded before).
    AlreadyThere,
    /// Not written: the id is not a safe key, or S3 failed (the reason).
    Failed(String),
}

/// The check queue: SQS's `SendMessage` with a delay.
pub trait CheckQueue: Send + Sync {
    /// Sends `body` to be delivered after `delay_secs` (0 to 900).
    fn send(
        &self,
        body: String,
        delay_secs: u64,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// The check queue through the SDK.
#[derive(Debug, Clone)]
pub struct SqsCheckQueue {
    /// The client.
    pub client: aws_sdk_sqs::Client,
    /// `CHECK_QUEUE_URL`.
    pub queue_url: String,
}

impl CheckQueue for SqsCheckQueue {
    async fn send(&self, body: String, delay_secs: u64) -> Result<(), String> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(i32::try_from(delay_secs).unwrap_or(900))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| hookvault_aws::sdk_error::short(&e))
    }
}

/// The first 16 hex digits of the caller's key SHA-256: enough to tell callers apart in
/// the ledger, not the key.
pub fn caller_label(caller: &Caller) -> String {
    caller.key_sha256.chars().take(16).collect()
}

/// The ledger entry of prediction `prediction_id` of `model`, submitted at Unix seconds
/// `now_secs` by `who` to `provider`.
pub fn submission(
    provider: &str,
    prediction_id: &str,
    model: &str,
    now_secs: i64,
    who: &Submitter<'_>,
) -> SubmissionRecord {
    SubmissionRecord {
        provider: provider.to_owned(),
        prediction_id: prediction_id.to_owned(),
        model: model.to_owned(),
        submitted_at: hookvault_core::time::rfc3339(now_secs),
        caller: caller_label(who.caller),
        idempotency_scope: who.idempotency_scope.map(str::to_owned),
    }
}

/// Writes `record` create-only at `predictions/{id}/submission.json` in `store`.
pub async fn record(store: &impl RecordStore, record: &SubmissionRecord) -> Recorded {
    let key = match archive::submission_key(&record.prediction_id) {
        Ok(k) => k,
        Err(e) => return Recorded::Failed(e.to_string()),
    };
    let body = match serde_json::to_vec(record) {
        Ok(b) => b,
        Err(e) => return Recorded::Failed(e.to_string()),
    };
    match store.put(&key, body, &Condition::Absent).await {
        Ok(Put::Written(_)) => Recorded::Written,
        Ok(Put::Taken | Put::Missing) => Recorded::AlreadyThere,
        Err(e) => Recorded::Failed(e.to_string()),
    }
}

/// Sends the first check of `prediction_id` (submitted at Unix milliseconds
/// `submitted_at_ms`) to `queue` after `delay_secs`.
pub async fn schedule(
    queue: &impl CheckQueue,
    provider: &str,
    prediction_id: &str,
    submitted_at_ms: i64,
    delay_secs: u64,
) -> Result<(), String> {
    archive::check_id(prediction_id).map_err(|e| e.to_string())?;
    let check = Check::first(provider, prediction_id, submitted_at_ms, CheckSource::Api);
    queue.send(check.to_json(), delay_secs).await
}

/// Records and schedules one accepted prediction, logging and counting what failed
/// (the module's documentation has why neither fails the request).
pub async fn after_submit(
    store: &impl RecordStore,
    queue: Option<&impl CheckQueue>,
    entry: &SubmissionRecord,
    submitted_at_ms: i64,
    first_delay_secs: u64,
) {
    let emf = Emf::from_env("api");
    let id = &entry.prediction_id;
    match record(store, entry).await {
        Recorded::Written => tracing::info!(prediction = %id, "submission recorded"),
        Recorded::AlreadyThere => {
            tracing::info!(prediction = %id, "submission already recorded")
        }
        Recorded::Failed(reason) => {
            tracing::error!(prediction = %id, reason = %reason, "the submission could not be recorded in the ledger; the prediction stands");
            emf.emit(&[("LedgerWriteFailures", Unit::Count, 1.0)], &[], &[]);
        }
    }
    let Some(queue) = queue else {
        return;
    };
    match schedule(
        queue,
        &entry.provider,
        id,
        submitted_at_ms,
        first_delay_secs,
    )
    .await
    {
        Ok(()) => {
            tracing::info!(prediction = %id, delay_secs = first_delay_secs, "check scheduled")
        }
        Err(reason) => {
            tracing::error!(prediction = %id, reason = %reason, "the first check could not be scheduled; the sweep is the backstop");
            emf.emit(&[("CheckScheduleFailures", Unit::Count, 1.0)], &[], &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::memory::MemoryStore;
    use std::sync::Mutex;

    #[derive(Default)]
    struct FakeQueue {
        sent: Mutex<Vec<(String, u64)>>,
        down: bool,
    }

    impl CheckQueue for FakeQueue {
        async fn send(&self, body: String, delay_secs: u64) -> Result<(), String> {
            if self.down {
                return Err("SQS: ServiceUnavailable".into());
            }
            self.sent
                .lock()
                .map_err(|e| e.to_string())?
                .push((body, delay_secs));
            Ok(())
        }
    }

    fn caller() -> Caller {
        Caller {
            key_sha256: "0123456789abcdef".repeat(4),
        }
    }

    #[tokio::test]
    async fn a_submission_is_recorded_once_with_its_caller_and_scope_and_its_check_sent() {
        let store = MemoryStore::new();
        let queue = FakeQueue::default();
        let c = caller();
        let who = Submitter {
            caller: &c,
            idempotency_scope: Some("9b1e"),
        };
        let entry = submission("skytells", "pred_1", "truefusion", 1_764_000_000, &who);
        after_submit(&store, Some(&queue), &entry, 1_764_000_000_123, 30).await;
        let stored = store
            .object("predictions/pred_1/submission.json")
            .unwrap_or_else(|| panic!("the ledger entry is written"));
        let v: serde_json::Value = serde_json::from_slice(&stored.body).unwrap_or_default();
        assert_eq!(
            v,
            serde_json::json!({"provider": "skytells", "prediction_id": "pred_1",
                "model": "truefusion", "submitted_at": "2025-11-24T16:00:00Z",
                "caller": "0123456789abcdef", "idempotency_scope": "9b1e"})
        );
        let sent = queue.sent.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1, 30);
        assert_eq!(
            Check::from_json(&sent[0].0),
            Ok(Check::first(
                "skytells",
                "pred_1",
                1_764_000_000_123,
                CheckSource::Api
            ))
        );
        // Create-only: the second write finds it and leaves it.
        assert_eq!(record(&store, &entry).await, Recorded::AlreadyThere);
        // Without an idempotency key, no scope.
        let bare = submission(
            "skytells",
            "pred_2",
            "m",
            0,
            &Submitter {
                caller: &c,
                idempotency_scope: None,
            },
        );
        let json = serde_json::to_string(&bare).unwrap_or_default();
        assert!(!json.contains("idempotency_scope"), "{json}");
    }

    #[tokio::test]
    async fn failures_are_reported_and_unsafe_ids_are_neither_recorded_nor_checked() {
        let store = MemoryStore::new();
        let queue = FakeQueue::default();
        let c = caller();
        let who = Submitter {
            caller: &c,
            idempotency_scope: None,
        };
        let entry = submission("skytells", "../x", "m", 0, &who);
        assert!(matches!(record(&store, &entry).await, Recorded::Failed(_)));
        assert!(schedule(&queue, "skytells", "../x", 0, 30).await.is_err());
        assert!(queue.sent.lock().map(|s| s.is_empty()).unwrap_or(false));
        store.set_down(true);
        let ok = submission("skytells", "pred_3", "m", 0, &who);
        assert!(matches!(record(&store, &ok).await, Recorded::Failed(_)));
        let down = FakeQueue {
            down: true,
            ..FakeQueue::default()
        };
        assert!(schedule(&down, "skytells", "pred_3", 0, 30).await.is_err());
        // Neither failure panics or propagates.
        after_submit(&store, Some(&down), &ok, 0, 30).await;
        after_submit(&store, None::<&FakeQueue>, &ok, 0, 30).await;
    }
}
