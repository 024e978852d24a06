//! Draining the spool: each object read, checked, sent, and deleted only once SQS took it.
//!
//! For one key ([`Drainer::drain_key`]):
//!
//! 1. `GetObject`, at most `SPOOL_MAX_BYTES`. Gone: another invocation drained it
//!    ([`Outcome::Gone`], nothing to do).
//! 2. The bytes must be UTF-8 and parse as an [`Envelope`] ([`Envelope::from_json`], which
//!    also checks an inline body against its length and SHA-256). If not, the object is **left where it is**
//!    ([`Outcome::Unreadable`]): an error log with the key and the reason, the metric
//!    `SpoolUnreadable`, and the run fails (so the function's `Errors` metric shows it);
//!    the next sweep reports it again until an operator has looked at it
//!    (docs/operations.md). Nothing is deleted unread, and nothing is moved: the drainer
//!    has no write access outside `spool/`.
//! 3. `SendMessage` exactly as the edge would ([`crate::message`]). Refused or unreachable:
//!    the object stays for the next run ([`Outcome::Failed`]; the run fails).
//! 4. `DeleteObject`, only now ([`Outcome::Queued`]; the metric `SpooledEvents` and an info
//!    line with the event id). A delete that fails leaves the object: the next run sends
//!    it again. That repeat is safe: the archiver keys an event by its body's digest
//!    (`events/{provider}/{sha256}/`, a redelivery finds `event.json` and writes nothing)
//!    and a prediction's state and manifest follow the state rule (a second delivery of
//!    the same event is a no-op), as for any SQS redelivery; on a FIFO queue the
//!    deduplication id (provider and body digest) makes a repeat within 5 minutes one
//!    message.
//!
//! A sweep ([`Drainer::sweep`]) lists `spool/` page by page and drains each key in turn,
//! until the invocation's deadline; what is left waits for the next run.

use std::time::Instant;

use hookvault_aws::metrics::{Emf, Unit};
use hookvault_core::envelope::Envelope;

use crate::config::{DrainerConfig, SPOOL_PREFIX};
use crate::message::Message;
use crate::store::{Fetched, Queue, Spool, StoreError};
use crate::trigger::Trigger;

/// What became of one spool object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// SQS took it and the object is deleted.
    Queued {
        /// The envelope's event id.
        event_id: String,
        /// SQS's message id.
        message_id: String,
    },
    /// No such object any more.
    Gone,
    /// Not an envelope (or over the size cap): left in place, reported.
    Unreadable(String),
    /// Not drained this time (S3 or SQS failed): left in place for the next run.
    Failed(String),
}

/// What one invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// The event ids queued (and their objects deleted).
    pub queued: Vec<String>,
    /// Keys found gone.
    pub gone: usize,
    /// `(key, reason)` of the objects that are not envelopes, left in place.
    pub unreadable: Vec<(String, String)>,
    /// `(key, reason)` of the objects not drained this time, left in place.
    pub failed: Vec<(String, String)>,
    /// True when a sweep stopped at the deadline with keys left.
    pub stopped_at_deadline: bool,
}

/// Why an invocation reports failure (after draining all it could).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrainError {
    /// The spool could not be listed.
    #[error("listing the spool failed: {0}")]
    List(#[from] StoreError),
    /// Some objects were left in the spool.
    #[error("{failed} spool object(s) not drained and {unreadable} unreadable, left in place (first: {first})")]
    Incomplete {
        /// Objects whose send or delete failed.
        failed: usize,
        /// Objects that are not envelopes.
        unreadable: usize,
        /// The first such key and its reason.
        first: String,
    },
}

/// The drainer: the spool, the queue, the settings and the metrics' destination.
#[derive(Debug)]
pub struct Drainer<S, Q> {
    spool: S,
    queue: Q,
    cfg: DrainerConfig,
    emf: Emf,
}

impl<S: Spool, Q: Queue> Drainer<S, Q> {
    /// A drainer of `spool` into `queue` with `cfg`; metrics under `Function=drainer` in
    /// `METRICS_NAMESPACE`.
    pub fn new(spool: S, queue: Q, cfg: DrainerConfig) -> Self {
        Drainer {
            spool,
            queue,
            cfg,
            emf: Emf::from_env("drainer"),
        }
    }

    /// The spool, for tests.
    pub fn spool(&self) -> &S {
        &self.spool
    }

    /// Drains what `trigger` names until `deadline`. `Err` when anything was left in the
    /// spool (the summary is logged first), so Lambda counts an error and retries an
    /// asynchronous invocation.
    pub async fn handle(
        &self,
        trigger: Trigger,
        deadline: Option<Instant>,
    ) -> Result<Summary, DrainError> {
        let summary = match trigger {
            Trigger::Keys(keys) => {
                let mut summary = Summary::default();
                for key in keys {
                    let outcome = self.drain_key(&key).await;
                    record(&mut summary, key, outcome);
                }
                summary
            }
            Trigger::Sweep => self.sweep(deadline).await?,
        };
        tracing::info!(
            queued = summary.queued.len(),
            gone = summary.gone,
            unreadable = summary.unreadable.len(),
            failed = summary.failed.len(),
            stopped_at_deadline = summary.stopped_at_deadline,
            "spool drained"
        );
        let first = summary.failed.first().or(summary.unreadable.first());
        match first {
            None => Ok(summary),
            Some((key, reason)) => Err(DrainError::Incomplete {
                failed: summary.failed.len(),
                unreadable: summary.unreadable.len(),
                first: format!("{key}: {reason}"),
            }),
        }
    }

    /// Every key under `spool/`, drained in turn, until `deadline`. Errors: a listing
    /// that fails (what was drained before it stays drained).
    pub async fn sweep(&self, deadline: Option<Instant>) -> Result<Summary, DrainError> {
        let mut summary = Summary::default();
        let mut token = None;
        loop {
            let page = self.spool.list(SPOOL_PREFIX, token).await?;
            for key in page.keys {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    summary.stopped_at_deadline = true;
                    return Ok(summary);
                }
                let outcome = self.drain_key(&key).await;
                record(&mut summary, key, outcome);
            }
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(summary),
            }
        }
    }

    /// Drains one spool object (the steps in the module's docs).
    pub async fn drain_key(&self, key: &str) -> Outcome {
        let bytes = match self.spool.get(key, self.cfg.max_object_bytes).await {
            Ok(Fetched::Object(bytes)) => bytes,
            Ok(Fetched::Missing) => return Outcome::Gone,
            Ok(Fetched::TooLarge(n)) => {
                return self.unreadable(
                    key,
                    format!(
                        "{n} bytes, over SPOOL_MAX_BYTES ({})",
                        self.cfg.max_object_bytes
                    ),
                )
            }
            Err(e) => return failed(key, &e),
        };
        let json = match String::from_utf8(bytes) {
            Ok(json) => json,
            Err(_) => return self.unreadable(key, "not UTF-8".into()),
        };
        let envelope = match Envelope::from_json(&json) {
            Ok(envelope) => envelope,
            Err(e) => return self.unreadable(key, e.to_string()),
        };
        let message = Message::new(json, &envelope, self.cfg.is_fifo(), key);
        let message_id = match self.queue.send(&message).await {
            Ok(id) => id,
            Err(e) => return failed(key, &e),
        };
        // Only now: SQS has the message.
        if let Err(e) = self.spool.delete(key).await {
            tracing::error!(
                key,
                event_id = %message.event_id,
                message_id,
                error = %e,
                "queued, but the spool object could not be deleted: the next run sends it again (the archiver keeps one copy)"
            );
            return Outcome::Failed(format!("queued as {message_id}, not deleted: {e}"));
        }
        tracing::info!(
            key,
            event_id = %message.event_id,
            trace_id = message.trace_id.as_deref().unwrap_or(""),
            message_id,
            "spooled event queued"
        );
        self.emf.emit(
            &[("SpooledEvents", Unit::Count, 1.0)],
            &[],
            &[
                ("event_id", &message.event_id),
                ("trace_id", message.trace_id.as_deref().unwrap_or("")),
            ],
        );
        Outcome::Queued {
            event_id: message.event_id,
            message_id,
        }
    }

    fn unreadable(&self, key: &str, reason: String) -> Outcome {
        tracing::error!(
            key,
            reason,
            "a spool object is not a readable envelope: left in place for an operator"
        );
        self.emf.emit(
            &[("SpoolUnreadable", Unit::Count, 1.0)],
            &[],
            &[("key", key)],
        );
        Outcome::Unreadable(reason)
    }
}

fn failed(key: &str, e: &StoreError) -> Outcome {
    tracing::warn!(key, error = %e, "not drained: left for the next run");
    Outcome::Failed(e.to_string())
}

fn record(summary: &mut Summary, key: String, outcome: Outcome) {
    match outcome {
        Outcome::Queued { event_id, .. } => summary.queued.push(event_id),
        Outcome::Gone => summary.gone += 1,
        Outcome::Unreadable(reason) => summary.unreadable.push((key, reason)),
        Outcome::Failed(reason) => summary.failed.push((key, reason)),
    }
}

#[cfg(test)]
mod tests;
