//! # hookvault-reconciler
//!
//! The reconciler Lambda (issue 23). hookvault keeps what the provider announces; a
//! webhook the provider never sends would be lost without a trace, and with outputs that
//! live 5 minutes after completion, the check must come within a minute or two. The api
//! records every prediction it submits (`predictions/{id}/submission.json`) and schedules
//! a check on the check queue; this function takes each check ([`reconcile`]):
//!
//! * the archive already holds a terminal outcome: done;
//! * else `GET /v1/predictions/{id}` (the api's retry policy, the key from Secrets
//!   Manager): a terminal answer is queued for the archiver as a **reconciled event**, the
//!   normal envelope with the answer's exact bytes and the fetch as evidence instead of a
//!   signature (`hookvault_core::envelope::Reconciled`), so the archiver archives its
//!   outputs while they live, and the metric `MissedWebhooks` counts it; a running one is
//!   checked again with back-off (10 s doubling to `CHECK_MAX_INTERVAL_SECS`), until
//!   `CHECK_MAX_AGE_SECS`, then recorded `stalled` (`predictions/{id}/stalled.json`, an
//!   event-log entry with the outcome `stalled`, the metric `StalledPredictions`); a 404 is
//!   checked again for the first 5 minutes (the provider's read-after-create lag), then
//!   recorded `stalled`; a 401/403 is an error naming the secret, checked again later; a
//!   429/5xx/no answer is checked again later.
//!
//! The scheduled event runs the optional **sweep** ([`sweep`], `SWEEP_ENABLED`) over the
//! provider's list, feeding the same checks.
//!
//! A webhook arriving after its reconciled event (or the reverse) archives nothing twice:
//! the archiver's state rule (`hookvault_core::state`, `Transition::Corroborating`).
//!
//! I/O is behind [`io::Provider`], [`io::Archive`] and [`io::Queues`], with the real ones
//! in [`aws`]; the decisions are tested with fakes.
#![deny(clippy::all)]
#![warn(missing_docs)]

pub mod aws;
pub mod config;
pub mod io;
pub mod reconcile;
pub mod sweep;
pub mod trigger;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

pub use config::ReconcilerConfig;
pub use reconcile::{Outcome, Reconciler};
pub use trigger::Trigger;

impl<P: io::Provider, A: io::Archive, Q: io::Queues> Reconciler<P, A, Q> {
    /// Checks each record of `event`, one after another; the records whose check failed
    /// on S3 or SQS are reported for another delivery, and so are those not started by
    /// `deadline` (the invocation's, less a margin): a Lambda timeout would deliver the
    /// whole batch again, checks already rescheduled included, and start a second chain
    /// of checks for them.
    pub async fn handle_batch(
        &self,
        event: &SqsEvent,
        deadline: Option<std::time::Instant>,
    ) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            let message_id = record.message_id.clone().unwrap_or_default();
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                tracing::warn!(message_id = %message_id, "no time left in this invocation; SQS delivers the check again");
                response.add_failure(message_id);
                continue;
            }
            let body = record.body.as_deref().unwrap_or_default();
            if let Err(e) = self.handle_message(body, &message_id).await {
                tracing::error!(message_id = %message_id, error = %e, "the check failed; SQS delivers it again");
                response.add_failure(message_id);
            }
        }
        response
    }
}
