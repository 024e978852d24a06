//! One check of one prediction ([`Reconciler::check`]):
//!
//! 1. The archive already holds a terminal outcome (a terminal `state.json`, a manifest,
//!    a `failure.json`): the webhook came; done ([`Outcome::AlreadyKnown`]).
//! 2. `GET /v1/predictions/{id}` ([`Provider::get`]), with the api's retry policy and the
//!    key from Secrets Manager (read again once on a 401):
//!    * **terminal** (`succeeded`, `failed`, `cancelled`): the answer's bytes go to the
//!      events queue as a reconciled envelope ([`Envelope::reconciled`]; a body too large
//!      for one message is claim-checked to `raw/{sha256}` first, as the edge does), and
//!      the archiver archives it as it does a webhook, outputs included, while they still
//!      live. The metric `MissedWebhooks` counts it ([`Outcome::Injected`]).
//!    * **not terminal**: checked again later ([`Outcome::Rescheduled`]).
//!    * **404**: the provider does not know it (metric `ReconcileNotFound`). Just after
//!      its creation that may be the provider's read-after-create lag: for
//!      [`NOT_FOUND_GRACE_SECS`] after `submitted_at_ms` it is checked again with the usual
//!      back-off; after that it is recorded **stalled** as below, its `last_error` saying
//!      the provider answers 404 ([`NOT_FOUND_ERROR`]), so it is seen and alarmed.
//!    * **401/403**: an error log naming the secret (never the key), checked again later:
//!      the key may be mid-rotation (metric `ReconcileUnauthorized`).
//!    * **429, 5xx, no answer, an unreadable 2xx, another 4xx**: checked again later.
//!    * **an answer larger than `MAX_ANSWER_BYTES`** (64 MiB by default, the archiver's
//!      largest event): it would be as large each time, so it is not fetched again: the
//!      prediction is recorded **stalled** at once, its `last_error` saying so.
//! 3. "Later" is the same check with `attempt + 1`, sent to the check queue with
//!    `DelaySeconds` = [`next_delay_secs`]: `min(CHECK_MAX_INTERVAL_SECS, 10·2^attempt)`,
//!    10, 20, 40, 60, 60, … s. Once that next check would come more than
//!    `CHECK_MAX_AGE_SECS` after the submission, the prediction is recorded **stalled**
//!    instead: `predictions/{id}/stalled.json` ([`StalledRecord`]), an event-log entry with
//!    the outcome `stalled` (`reconciled: true`), and the metric `StalledPredictions`
//!    ([`Outcome::Stalled`]), once per prediction: `stalled.json` is written create-only,
//!    and a prediction that has one already gets no second entry or metric.
//! 4. **One chain of checks per prediction.** Before it sends the next check, a check
//!    advances the prediction's chain record `predictions/{id}/check.json`
//!    ([`CheckChain`]: the next attempt, when it is due, the writer's message id) with an
//!    S3 conditional write from the value it read (`If-None-Match: *` for the first,
//!    `If-Match` its ETag after; [`ChainTurn`]). A check the chain does not expect (the
//!    same attempt delivered twice, a check from `hookvault reconcile` or the sweep
//!    while the chain lives) makes its one GET, and queues the prediction if it is
//!    terminal, but schedules nothing ([`Outcome::Followed`]); so does the loser of two
//!    racing writes. The same message received again after its write (its send failed)
//!    sends the next check again; two copies of one attempt meet at the next step, where
//!    one advances the chain and the other stops. A first check finding a chain whose next
//!    check is over `CHAIN_STALE_SECS` (10 min) late takes it over.
//!
//! An S3 or SQS failure is an error: the batch reports the message failed, and SQS
//! delivers it again after its visibility timeout. A check that is not a check message is
//! logged and dropped.

use hookvault_aws::metrics::{Emf, Unit};
use hookvault_core::archive;
use hookvault_core::envelope::{needs_claim_check, Envelope, Fetch, S3Object};
use hookvault_core::reconcile::{next_delay_secs, ChainTurn, Check, CheckChain};
use hookvault_core::records::{IndexEntry, IndexOutcome, StalledRecord};
use sha2::{Digest, Sha256};

use crate::config::ReconcilerConfig;
use crate::io::{Archive, Fetched, IoError, Provider, Queues};

/// The message size the reconciler assumes for the events queue: SQS's default and the
/// smallest a hookvault queue has, 256 KiB. A provider answer whose envelope would not fit
/// goes by claim check (answers are a few KiB; the fetch reads at most `MAX_ANSWER_BYTES`).
pub const EVENTS_QUEUE_MAX_MESSAGE: usize = 256 * 1024;

/// How long after its submission a 404 is taken for the provider's read-after-create lag
/// and checked again with the usual back-off (10, 20, 40, 60, … s: about eight checks):
/// 5 minutes. A prediction still unknown after that is recorded stalled.
pub const NOT_FOUND_GRACE_SECS: u64 = 300;

/// The `last_error` of a check that got a 404 (and of a prediction stalled on it).
pub const NOT_FOUND_ERROR: &str =
    "HTTP 404: the provider answers that it does not know this prediction";

/// What one check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The archive has a terminal outcome already: nothing to do.
    AlreadyKnown,
    /// A terminal prediction the archive lacked was queued as a reconciled event.
    Injected {
        /// Its status.
        status: String,
        /// The envelope's event id.
        event_id: String,
    },
    /// Checked again after `delay_secs`.
    Rescheduled {
        /// The next check's delay.
        delay_secs: u64,
        /// Why: the status seen, or what was got instead.
        why: String,
    },
    /// Not terminal, but another check follows it (the chain expects another attempt, or
    /// won the write): nothing scheduled.
    Followed {
        /// What this check saw: the status, or what it got instead.
        why: String,
    },
    /// Followed for `CHECK_MAX_AGE_SECS` without a terminal status, or unknown to the
    /// provider (404) [`NOT_FOUND_GRACE_SECS`] after its submission: recorded stalled.
    Stalled,
}

/// One check being made: the check, now (Unix ms), and its message's id.
struct At<'a> {
    check: &'a Check,
    now_ms: i64,
    message_id: &'a str,
}

/// What the last fetch saw: a status, or what it got instead.
#[derive(Clone, Copy)]
enum Last<'a> {
    Status(&'a str),
    Error(&'a str),
}

/// The reconciler: the provider, the archive, the queues, the settings, the metrics.
#[derive(Debug)]
pub struct Reconciler<P, A, Q> {
    pub(crate) provider: P,
    pub(crate) archive: A,
    pub(crate) queues: Q,
    pub(crate) cfg: ReconcilerConfig,
    pub(crate) emf: Emf,
}

/// Now, Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl<P: Provider, A: Archive, Q: Queues> Reconciler<P, A, Q> {
    /// A reconciler over `provider`, `archive` and `queues` with `cfg`; metrics under
    /// `Function=reconciler` in `METRICS_NAMESPACE`.
    pub fn new(provider: P, archive: A, queues: Q, cfg: ReconcilerConfig) -> Self {
        Reconciler {
            provider,
            archive,
            queues,
            cfg,
            emf: Emf::from_env("reconciler"),
        }
    }

    /// The queues, for tests.
    pub fn queues(&self) -> &Q {
        &self.queues
    }

    /// The archive, for tests.
    pub fn archive(&self) -> &A {
        &self.archive
    }

    /// Makes one check at `now_ms` (the module's documentation has the steps);
    /// `message_id` is the check message's, for the `stalled` log entry.
    pub async fn check(
        &self,
        check: &Check,
        message_id: &str,
        now_ms: i64,
    ) -> Result<Outcome, IoError> {
        let id = check.prediction_id.as_str();
        let at = At {
            check,
            now_ms,
            message_id,
        };
        if self.archive.terminal_known(id).await? {
            tracing::info!(prediction = %id, attempt = check.attempt, "the archive holds its terminal outcome; nothing to reconcile");
            return Ok(Outcome::AlreadyKnown);
        }
        match self.provider.get(id).await {
            Fetched::Prediction {
                status,
                body,
                url,
                request_id,
                fetched_at_ms,
            } if status.is_terminal() => {
                let fetch = Fetch {
                    provider: &check.provider,
                    prediction_id: id,
                    status: status.as_str(),
                    url: &url,
                    fetched_at_ms,
                    request_id: request_id.as_deref(),
                };
                self.inject(check, &fetch, body).await
            }
            Fetched::Prediction { status, .. } => {
                self.later(&at, Last::Status(status.as_str())).await
            }
            Fetched::NotFound => {
                self.emf
                    .emit(&[("ReconcileNotFound", Unit::Count, 1.0)], &[], &[]);
                let grace_ms = (NOT_FOUND_GRACE_SECS as i64).saturating_mul(1000);
                if now_ms < check.submitted_at_ms.saturating_add(grace_ms) {
                    tracing::warn!(prediction = %id, source = ?check.source, attempt = check.attempt, "the provider does not know this prediction (404) yet; it may be its read-after-create lag: checking later");
                    self.later(&at, Last::Error(NOT_FOUND_ERROR)).await
                } else {
                    tracing::error!(prediction = %id, source = ?check.source, attempt = check.attempt, "the provider still does not know this prediction (404) NOT_FOUND_GRACE_SECS after its submission; recording it stalled");
                    self.stalled(&at, Last::Error(NOT_FOUND_ERROR)).await
                }
            }
            Fetched::Unauthorized(status) => {
                tracing::error!(prediction = %id, status, secret = %self.cfg.api_key_secret_id, "the provider refused the API key from this secret (read again once); checking later, it may be mid-rotation");
                self.emf
                    .emit(&[("ReconcileUnauthorized", Unit::Count, 1.0)], &[], &[]);
                self.later(&at, Last::Error(&format!("HTTP {status}")))
                    .await
            }
            Fetched::Refused(status) => {
                tracing::error!(prediction = %id, status, "the provider refused the fetch; checking later");
                self.later(&at, Last::Error(&format!("HTTP {status}")))
                    .await
            }
            Fetched::TooLarge(max) => {
                let error = format!("the provider's answer is larger than MAX_ANSWER_BYTES ({max} bytes): not fetched again");
                tracing::error!(prediction = %id, max_answer_bytes = max, "the provider's answer is larger than MAX_ANSWER_BYTES; recording the prediction stalled rather than fetching it again");
                self.stalled(&at, Last::Error(&error)).await
            }
            Fetched::Transient(reason) => {
                tracing::warn!(prediction = %id, reason = %reason, "no answer from the provider this time; checking later");
                self.later(&at, Last::Error(&reason)).await
            }
        }
    }

    /// Queues the fetched terminal prediction as a reconciled envelope.
    async fn inject(
        &self,
        check: &Check,
        fetch: &Fetch<'_>,
        body: Vec<u8>,
    ) -> Result<Outcome, IoError> {
        let claim_check =
            needs_claim_check(body.len(), EVENTS_QUEUE_MAX_MESSAGE).then(|| S3Object {
                bucket: self.cfg.bucket.clone(),
                key: archive::claim_check_key(&hex::encode(Sha256::digest(&body))),
            });
        let (envelope, evidence) = Envelope::reconciled(fetch, &body, claim_check.clone());
        // The body goes to S3 before the envelope that names it goes to the queue; moved
        // there, not copied (an answer may be up to MAX_ANSWER_BYTES).
        if let Some(object) = &claim_check {
            self.archive.put_claim_check(&object.key, body).await?;
        }
        let fifo = self
            .cfg
            .is_fifo()
            .then(|| (envelope.group_id(), envelope.dedup_id()));
        self.queues
            .send_event(envelope.to_json_reconciled(&evidence), fifo)
            .await?;
        tracing::warn!(prediction = %fetch.prediction_id, status = fetch.status, event_id = %envelope.event_id, attempt = check.attempt, source = ?check.source, request_id = ?fetch.request_id, "a terminal prediction the archive did not have: its webhook is missing; queued as a reconciled event");
        self.emf.emit(
            &[("MissedWebhooks", Unit::Count, 1.0)],
            &[],
            &[
                ("prediction_id", fetch.prediction_id),
                ("event_id", &envelope.event_id),
            ],
        );
        Ok(Outcome::Injected {
            status: fetch.status.to_owned(),
            event_id: envelope.event_id,
        })
    }

    /// The check after `at`'s, or `stalled` once it would come past the maximum age.
    async fn later(&self, at: &At<'_>, last: Last<'_>) -> Result<Outcome, IoError> {
        let (check, now_ms) = (at.check, at.now_ms);
        let delay_secs = next_delay_secs(check.attempt, self.cfg.max_interval_secs);
        let next_at_ms = now_ms.saturating_add((delay_secs as i64).saturating_mul(1000));
        let deadline_ms = check
            .submitted_at_ms
            .saturating_add((self.cfg.max_age_secs as i64).saturating_mul(1000));
        if next_at_ms > deadline_ms {
            return self.stalled(at, last).await;
        }
        let why = match last {
            Last::Status(s) | Last::Error(s) => s.to_owned(),
        };
        if !self.claim_chain(at, next_at_ms).await? {
            return Ok(Outcome::Followed { why });
        }
        self.queues.send_check(&check.next(), delay_secs).await?;
        tracing::info!(prediction = %check.prediction_id, attempt = check.attempt + 1, delay_secs, why = %why, "checking again later");
        Ok(Outcome::Rescheduled { delay_secs, why })
    }

    /// True when `at`'s check may send the next one, due at `next_at_ms`: it advanced the
    /// prediction's chain from the value it read (or wrote it itself already).
    async fn claim_chain(&self, at: &At<'_>, next_at_ms: i64) -> Result<bool, IoError> {
        let check = at.check;
        let id = check.prediction_id.as_str();
        let read = self.archive.read_chain(id).await?;
        let (chain, etag) = match &read {
            Some((c, e)) => (Some(c), Some(e.as_str())),
            None => (None, None),
        };
        let turn = ChainTurn::of(check.attempt, at.message_id, chain, at.now_ms);
        let next = CheckChain {
            next_attempt: check.attempt.saturating_add(1),
            due_at_ms: next_at_ms,
            message_id: at.message_id.to_owned(),
        };
        let written = match turn {
            ChainTurn::Resend => {
                tracing::warn!(prediction = %id, attempt = check.attempt, "this check advanced the chain already (received again): sending its next check again");
                return Ok(true);
            }
            ChainTurn::Stop => {
                tracing::info!(prediction = %id, attempt = check.attempt, source = ?check.source, expected = ?chain.map(|c| c.next_attempt), "another check follows this prediction: nothing scheduled");
                return Ok(false);
            }
            ChainTurn::Start => self.archive.write_chain(id, &next, None).await?,
            ChainTurn::Advance | ChainTurn::TakeOver => {
                if turn == ChainTurn::TakeOver {
                    tracing::warn!(prediction = %id, due_at_ms = ?chain.map(|c| c.due_at_ms), "the chain's next check is long overdue: this first check takes it over");
                }
                self.archive.write_chain(id, &next, etag).await?
            }
        };
        if !written {
            tracing::info!(prediction = %id, attempt = check.attempt, "another check wrote the chain first: nothing scheduled");
        }
        Ok(written)
    }

    /// Records `at`'s prediction as stalled.
    async fn stalled(&self, at: &At<'_>, last: Last<'_>) -> Result<Outcome, IoError> {
        let check = at.check;
        let (status, error) = match last {
            Last::Status(s) => (Some(s), None),
            Last::Error(e) => (None, Some(e)),
        };
        let record = StalledRecord {
            provider: check.provider.clone(),
            prediction_id: check.prediction_id.clone(),
            submitted_at_ms: check.submitted_at_ms,
            last_status: status.map(str::to_owned),
            last_error: error.map(str::to_owned),
            checks: check.attempt.saturating_add(1),
            stalled_at: hookvault_core::time::rfc3339(at.now_ms.div_euclid(1000)),
        };
        let entry = stalled_entry(&record, at.now_ms, at.message_id);
        if !self.archive.write_stalled(&record, &entry).await? {
            tracing::info!(prediction = %check.prediction_id, "recorded stalled already (stalled.json is there): not again");
            return Ok(Outcome::Stalled);
        }
        tracing::error!(prediction = %check.prediction_id, checks = record.checks, last_status = ?record.last_status, last_error = ?record.last_error, "no terminal status within CHECK_MAX_AGE_SECS; recorded stalled");
        self.emf.emit(
            &[("StalledPredictions", Unit::Count, 1.0)],
            &[],
            &[("prediction_id", &check.prediction_id)],
        );
        Ok(Outcome::Stalled)
    }

    /// Handles one check message body (`message_id` SQS's): a message that is not a
    /// check is logged and dropped (`Ok(None)`).
    pub async fn handle_message(
        &self,
        body: &str,
        message_id: &str,
    ) -> Result<Option<Outcome>, IoError> {
        let check = match Check::from_json(body) {
            Ok(c) => c,
            Err(e) => {
                let head: String = body.chars().take(200).collect();
                tracing::error!(message_id, reason = %e, body = %head, "not a check message; dropped");
                return Ok(None);
            }
        };
        self.check(&check, message_id, now_ms()).await.map(Some)
    }
}

/// The event log's entry of a stalled prediction: outcome `stalled`, dated now, the
/// digest of its `stalled.json` as its "body", `reconciled: true`, event id
/// `{provider}:{id}:stalled`.
pub fn stalled_entry(record: &StalledRecord, now_ms: i64, message_id: &str) -> IndexEntry {
    let bytes = serde_json::to_vec(record).unwrap_or_default();
    IndexEntry {
        event_id: format!("{}:{}:stalled", record.provider, record.prediction_id),
        provider: record.provider.clone(),
        received_at_ms: now_ms,
        body_sha256: hex::encode(Sha256::digest(&bytes)),
        body_bytes: bytes.len() as u64,
        outcome: IndexOutcome::Stalled,
        prediction_id: Some(record.prediction_id.clone()),
        status: Some(
            record
                .last_status
                .clone()
                .unwrap_or_else(|| "stalled".to_owned()),
        ),
        error_id: Some("STALLED".to_owned()),
        raw_event: None,
        trace_id: None,
        output_expires_at: None,
        message_id: message_id.to_owned(),
        replayed: false,
        spooled: false,
        reconciled: true,
        recorded_at: record.stalled_at.clone(),
    }
}

#[cfg(test)]
mod tests;
