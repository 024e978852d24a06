//! One SQS batch in, one `SqsBatchResponse` out.
//!
//! Each record is handled in this order (the crate documentation has the whole picture):
//!
//! 1. [`Envelope::from_json`]: an unreadable message goes to `rejected/`.
//! 2. The body: inline, or the claim check read from S3 and checked
//!    ([`raw_event::claim_checked_body`]); a claim check that can never be read goes to
//!    `rejected/`, an S3 failure is transient.
//! 3. The raw event, for every envelope ([`raw_event::keep`]).
//! 4. [`WebhookEvent::parse`]: a body that is not a prediction, or whose id is not a safe
//!    folder name, is [`Outcome::EventKept`]: its bytes are archived, nothing else.
//! 5. The prediction's state ([`crate::state`], `hookvault_core::state`): a non-terminal
//!    event older than the state held is [`Outcome::Ignored`]; a terminal event that
//!    contradicts the first terminal state is [`Outcome::Conflicting`], and one of its
//!    status that came the other way (signed after reconciled, or the reverse: issue 23)
//!    is [`Outcome::Corroborated`]; nothing more is done for any of them.
//! 6. By status: `succeeded` → `output.json`, every file of `output`, the manifest last;
//!    `failed` / `cancelled` → `failure.json`; other statuses → nothing more.
//! 7. The event log: one entry for what became of it ([`crate::event_log`]).
//!
//! Every log line of a record carries its `message_id` and `trace_id` (a span around the
//! record); each record ends with one CloudWatch EMF line of its metrics
//! ([`crate::metrics`]).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::stream::{self, StreamExt};
use hookvault_core::archive;
use hookvault_core::envelope::{Body, Envelope, Reconciled};
use hookvault_core::event::{raw_output, Prediction, PredictionStatus, WebhookEvent};
use hookvault_core::output::{self, Source};
use hookvault_core::records::{
    FailureRecord, Manifest, OutputRecord, OutputWindow, RejectedRecord, Windowed,
};
use hookvault_core::state::{Origin, Transition};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::config::ArchiverConfig;
use crate::data_uri;
use crate::download::{redact, Downloader};
use crate::event_log;
use crate::metrics::{self, Facts};
use crate::notify::{self, Publisher};
use crate::raw_event::{self, BodyError};
use crate::state::{self, Incoming};
use crate::store::{is_header_safe, now_rfc3339, Condition, Store, StoreError};
use crate::upload::{self, Target, UploadError};
use crate::visibility::{self, Visibility};
use crate::window::WindowConfig;

pub use crate::outcome::{Outcome, Transient, OUTPUT_PURGED};

/// Whose failure a `failure.json` records.
#[derive(Debug, Clone)]
enum Failure {
    /// The provider reports the prediction failed or cancelled.
    Provider,
    /// Ours: an output (its index and pointer, when one) can never be archived.
    Ours { output: Option<(usize, String)> },
}

/// The time kept before the Lambda's deadline: the `deadline` [`Archiver::handle`] is
/// given is the Lambda's less this (`main.rs`), so retries stop early enough to answer.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// The longest the archiver waits for SQS to take a record's new visibility. It may use
/// this much of [`DEADLINE_MARGIN`] past the retries' deadline, and still leaves the rest
/// of the margin to answer.
pub const VISIBILITY_CHANGE_MAX: Duration = Duration::from_secs(2);

/// The archiver, built once per Lambda instance.
#[derive(Debug, Clone)]
pub struct Archiver {
    store: Store,
    cfg: Arc<ArchiverConfig>,
    downloader: Downloader,
    emf: hookvault_aws::metrics::Emf,
    max_receive_count: Option<u32>,
    window: WindowConfig,
    visibility: Option<Arc<dyn Visibility>>,
    notifier: Option<Notifier>,
}

/// Where the archiver tells the app ([`crate::notify`]).
#[derive(Debug, Clone)]
struct Notifier {
    publisher: Arc<dyn Publisher>,
    bus: String,
    source: String,
}

/// What the records of one event share.
#[derive(Debug, Clone, Copy)]
struct Event<'a> {
    /// The envelope's event id.
    id: &'a str,
    /// The key of the raw event's `event.json`.
    raw_event: &'a str,
    /// The body's bytes, as verified.
    body: &'a [u8],
    /// The envelope's trace id.
    trace_id: Option<&'a str>,
    /// `hookvault replay --force`: archive again even if the manifest exists.
    force: bool,
    /// The prediction's output window, written beside the manifest or the failure.
    window: Option<&'a OutputWindow>,
    /// When retries of this record's downloads stop: the Lambda's deadline or the
    /// record's retry budget, whichever comes first.
    retry_stop: Option<Instant>,
    /// When the output window closes.
    closes: Option<Instant>,
}

/// A file of `output`, owned (futures that borrow their arguments defeat the `Send`
/// inference lambda_runtime needs).
#[derive(Debug, Clone)]
struct FileJob {
    index: usize,
    pointer: String,
    source: OwnedSource,
}

#[derive(Debug, Clone)]
enum OwnedSource {
    Url(String),
    DataUri(String),
}

impl Archiver {
    /// An archiver writing to `cfg.bucket` through `s3`.
    pub fn new(s3: aws_sdk_s3::Client, cfg: ArchiverConfig) -> Result<Self, reqwest::Error> {
        let downloader = Downloader::new(&cfg)?;
        Ok(Archiver {
            store: Store::new(s3, &cfg.bucket),
            cfg: Arc::new(cfg),
            downloader,
            emf: hookvault_aws::metrics::Emf::from_env("archiver"),
            max_receive_count: None,
            window: WindowConfig::default(),
            visibility: None,
            notifier: None,
        })
    }

    /// The queue's `maxReceiveCount` (the template passes it as `MAX_RECEIVE_COUNT`): a
    /// record that fails transiently on its last receive is logged at error level and
    /// counted as a permanent failure (`RETRIES_EXHAUSTED`), because SQS moves it to the
    /// DLQ next.
    pub fn with_max_receive_count(mut self, n: Option<u32>) -> Self {
        self.max_receive_count = n;
        self
    }

    /// Replaces the downloader (tests shorten its back-off).
    pub fn with_downloader(mut self, d: Downloader) -> Self {
        self.downloader = d;
        self
    }

    /// The output window's settings (`OUTPUT_RETENTION_SECS`, `DOWNLOAD_RETRY_BUDGET_MS`;
    /// [`WindowConfig::from_env`]); without it, [`WindowConfig::default`].
    pub fn with_window(mut self, w: WindowConfig) -> Self {
        self.window = w;
        self
    }

    /// Sets the visibility of each record reported in `batchItemFailures` first
    /// ([`crate::visibility`]), so it comes back in seconds; without it, the queue's
    /// visibility timeout applies.
    pub fn with_visibility(mut self, v: Arc<dyn Visibility>) -> Self {
        self.visibility = Some(v);
        self
    }

    /// Publishes one EventBridge event per prediction outcome on `bus`, with `source`
    /// ([`crate::notify`]); without it, no events.
    pub fn with_notifier(mut self, publisher: Arc<dyn Publisher>, bus: &str, source: &str) -> Self {
        self.notifier = Some(Notifier {
            publisher,
            bus: bus.to_owned(),
            source: source.to_owned(),
        });
        self
    }

    /// Handles a batch; every record that may succeed later is in `batch_item_failures`.
    /// Each record runs in a span carrying its `message_id` and `trace_id` (the SQS
    /// attribute `TraceId`, else the envelope's), and ends with its metrics line.
    pub async fn handle(&self, event: SqsEvent, deadline: Option<Instant>) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let trace_id = hookvault_core::trace::checked(
                record
                    .message_attributes
                    .get(hookvault_core::trace::SQS_ATTRIBUTE)
                    .and_then(|a| a.string_value.clone()),
            );
            let span = tracing::info_span!(
                "record",
                message_id = %id,
                trace_id = trace_id.as_deref().unwrap_or_default(),
                event_id = tracing::field::Empty,
            );
            let retries_before = self.downloader.retries();
            // Boxed: the record's future is deep (downloads, multipart uploads), and the
            // batch's would otherwise hold it inline.
            let (result, mut facts) = Box::pin(self.process_with_facts(&record, deadline))
                .instrument(span.clone())
                .await;
            facts.download_retries = self.downloader.retries().saturating_sub(retries_before);
            if facts.trace_id.is_none() {
                facts.trace_id = trace_id;
            }
            let last_receive = self
                .max_receive_count
                .is_some_and(|max| receive_count(&record) >= max);
            if result.is_err() && last_receive {
                event_log::log_dead_lettered(&self.store, &record, &facts, deadline)
                    .instrument(span.clone())
                    .await;
            }
            let mut comes_back_in = None;
            if result.is_err() {
                let until_expiry = facts.output_expires_at_ms.map(|at| {
                    Duration::from_millis(u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0))
                });
                let wait = visibility::retry_in(receive_count(&record), until_expiry);
                comes_back_in = self
                    .set_visibility(&record, wait, deadline)
                    .instrument(span.clone())
                    .await;
            }
            let _in_span = span.enter();
            match &result {
                Ok(outcome) => tracing::info!(
                    outcome = outcome.name(),
                    error_id = outcome.error_id(),
                    outputs = outcome.outputs(),
                    "record done"
                ),
                Err(Transient(reason)) => {
                    let receives = receive_count(&record);
                    if last_receive {
                        facts.retries_exhausted = true;
                        tracing::error!(reason = %reason, receives, "record failed on its last receive; SQS moves it to the DLQ next (hookvault replay --dlq brings it back)");
                    } else {
                        tracing::warn!(reason = %reason, receives, comes_back_in_s = comes_back_in.map(|d| d.as_secs()), "record failed; SQS will redeliver it");
                    }
                    response.add_failure(id);
                }
            }
            metrics::emit(&self.emf, result.as_ref().ok(), &facts);
        }
        response
    }

    /// Makes `record` visible again in `wait` ([`crate::visibility`]), before it is
    /// reported in `batchItemFailures`; returns `wait` when SQS took it. Without a
    /// visibility client, a receipt handle or a queue ARN, or when the change fails or
    /// takes longer than [`VISIBILITY_CHANGE_MAX`] (or runs past `deadline` plus that), it
    /// is logged
    /// and the queue's visibility timeout applies.
    async fn set_visibility(
        &self,
        record: &SqsMessage,
        wait: Duration,
        deadline: Option<Instant>,
    ) -> Option<Duration> {
        let v = self.visibility.as_ref()?;
        let handle = record.receipt_handle.as_deref()?;
        let Some(url) = record
            .event_source_arn
            .as_deref()
            .and_then(visibility::queue_url)
        else {
            tracing::warn!(
                arn = record.event_source_arn.as_deref(),
                "no SQS queue ARN on the record; the queue's visibility timeout applies"
            );
            return None;
        };
        // SQS's range: 0 to 43 200 s.
        let secs = i32::try_from(wait.as_secs().min(43_200)).unwrap_or(43_200);
        // Retries stop at `deadline`, which is DEADLINE_MARGIN before the Lambda's: the
        // change may take up to VISIBILITY_CHANGE_MAX of that margin.
        let budget = deadline
            .map(|d| (d + VISIBILITY_CHANGE_MAX).saturating_duration_since(Instant::now()))
            .unwrap_or(VISIBILITY_CHANGE_MAX)
            .min(VISIBILITY_CHANGE_MAX);
        match tokio::time::timeout(budget, v.change(&url, handle, secs)).await {
            Ok(Ok(())) => Some(wait),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the record's visibility was not changed; the queue's visibility timeout applies");
                None
            }
            Err(_) => {
                tracing::warn!(
                    budget_ms = budget.as_millis() as u64,
                    "ChangeMessageVisibility took too long; the queue's visibility timeout applies"
                );
                None
            }
        }
    }

    /// Tells the app what became of the prediction ([`crate::notify`]): one event for an
    /// archived prediction (a new manifest, or one a redelivery found) and one for an
    /// output lost for good, each once: not when its marker
    /// (`predictions/{id}/notified/{archived|failed}.json`) exists, which is written after
    /// `PutEvents` took it. The event's detail is read from the manifest or
    /// `failure.json`. Errors (transient): S3, or the bus refusing the event.
    async fn notify(&self, outcome: &Outcome, facts: &Facts) -> Result<(), Transient> {
        let Some(n) = &self.notifier else {
            return Ok(());
        };
        let (kind, detail_type) = match outcome {
            Outcome::Archived { .. } | Outcome::AlreadyArchived => ("archived", notify::ARCHIVED),
            Outcome::OutputsLost { .. } => ("failed", notify::ARCHIVE_FAILED),
            _ => return Ok(()),
        };
        let (Some(provider), Some(id)) = (&facts.provider, &facts.prediction_id) else {
            return Ok(());
        };
        let manifest_key = archive::manifest_key(id).map_err(|e| Transient(e.to_string()))?;
        let dir = manifest_key.trim_end_matches("manifest.json");
        let marker = format!("{dir}notified/{kind}.json");
        if self.store.exists(&marker).await? {
            tracing::info!(prediction = %id, detail_type, "the app was told already");
            return Ok(());
        }
        let notification_id = notify::notification_id(provider, id, detail_type);
        let read = |key: String| async move {
            let bytes = self
                .store
                .get_small(&key, 4 * 1024 * 1024, "GetObject (notify)")
                .await?
                .and_then(|o| o.bytes)
                .ok_or_else(|| Transient(format!("{key} is missing or over 4 MiB")))?;
            Ok::<_, Transient>((key, bytes))
        };
        let detail = if kind == "archived" {
            let (key, bytes) = read(manifest_key.clone()).await?;
            let m: Windowed<Manifest> =
                serde_json::from_slice(&bytes).map_err(|e| Transient(format!("{key}: {e}")))?;
            notify::archived_detail(&notification_id, provider, self.store.bucket(), &key, &m)
        } else {
            let key = archive::failure_key(id).map_err(|e| Transient(e.to_string()))?;
            let (key, bytes) = read(key).await?;
            let f: Windowed<FailureRecord> =
                serde_json::from_slice(&bytes).map_err(|e| Transient(format!("{key}: {e}")))?;
            notify::failed_detail(&notification_id, provider, self.store.bucket(), &key, &f)
        };
        notify::put_all(
            n.publisher.as_ref(),
            &n.bus,
            &n.source,
            vec![notify::Notice {
                detail_type,
                detail,
            }],
        )
        .await
        .map_err(|e| Transient(e.to_string()))?;
        let stamp = serde_json::to_vec(&serde_json::json!({
            "detail_type": detail_type,
            "notification_id": notification_id,
            "bus": n.bus,
            "published_at": now_rfc3339(),
        }))
        .map_err(|e| Transient(e.to_string()))?;
        self.store
            .put_if(
                &marker,
                stamp,
                "application/json",
                Condition::Absent,
                "PutObject (notified)",
            )
            .await?;
        tracing::info!(prediction = %id, detail_type, bus = %n.bus, "the app was told");
        Ok(())
    }

    /// Handles one record (the steps are in the module's documentation).
    pub async fn process(
        &self,
        record: &SqsMessage,
        deadline: Option<Instant>,
    ) -> Result<Outcome, Transient> {
        self.process_with_facts(record, deadline).await.0
    }

    /// [`Archiver::process`], with what the metrics need to know.
    async fn process_with_facts(
        &self,
        record: &SqsMessage,
        deadline: Option<Instant>,
    ) -> (Result<Outcome, Transient>, Facts) {
        let mut facts = Facts::default();
        let result = self.process_record(record, deadline, &mut facts).await;
        let result = match result {
            Ok(outcome) => match self.notify(&outcome, &facts).await {
                Ok(()) => event_log::log(&self.store, record, &facts, &outcome)
                    .await
                    .map(|()| outcome),
                Err(t) => Err(t),
            },
            Err(t) => Err(t),
        };
        (result, facts)
    }

    async fn process_record(
        &self,
        record: &SqsMessage,
        deadline: Option<Instant>,
        facts: &mut Facts,
    ) -> Result<Outcome, Transient> {
        let message_id = record.message_id.clone().unwrap_or_default();
        let text = record.body.as_deref().unwrap_or_default();
        let envelope = match Envelope::from_json(text) {
            Ok(e) => e,
            Err(e) => return self.reject(&message_id, text, &e.to_string()).await,
        };
        facts.read_envelope(&envelope);
        let reconciled = Reconciled::from_message(text, &envelope.body_sha256);
        facts.reconciled = reconciled.is_some();
        facts.spooled = record
            .message_attributes
            .contains_key(hookvault_core::envelope::SPOOLED_ATTRIBUTE);
        tracing::Span::current().record("event_id", envelope.event_id.as_str());
        if let Some(t) = &envelope.trace_id {
            tracing::Span::current().record("trace_id", t.as_str());
        }
        let body: Cow<'_, [u8]> = match &envelope.body {
            Body::Inline(bytes) => Cow::Borrowed(bytes),
            Body::S3(object) => match raw_event::claim_checked_body(
                &self.store,
                self.cfg.max_event_bytes,
                &envelope,
                object,
            )
            .await
            {
                Ok(bytes) => Cow::Owned(bytes),
                Err(BodyError::Unusable(reason)) => {
                    return self.reject(&message_id, text, &reason).await
                }
                Err(BodyError::Transient(t)) => return Err(t),
            },
        };
        // The raw event first, before the whole body is parsed: nothing the parse does (a
        // body too large or too deep to hold as a value) can lose the signed bytes.
        let head = hookvault_core::event::prediction_head(&body);
        let raw_event = raw_event::keep(
            &self.store,
            &envelope,
            &body,
            head.as_ref(),
            &message_id,
            reconciled.as_ref(),
        )
        .await?;
        facts.raw_event = Some(raw_event.clone());
        if let Some(h) = &head {
            facts.prediction_id = Some(h.id.clone());
            facts.status = Some(h.status.as_str().to_owned());
        }
        let p = match WebhookEvent::parse(&body) {
            Ok(e) => e.prediction,
            Err(e) => {
                tracing::info!(raw_event = %raw_event, reason = %e, "not a prediction webhook; the raw event is kept, nothing else to do");
                return Ok(Outcome::EventKept);
            }
        };
        facts.prediction_id = Some(p.id.clone());
        facts.status = Some(p.status.as_str().to_owned());
        if let Err(e) = archive::check_id(&p.id) {
            tracing::error!(raw_event = %raw_event, id = %p.id.escape_debug().to_string().chars().take(200).collect::<String>(), reason = %e, "prediction id is not a safe folder name; only the raw event is kept");
            return Ok(Outcome::EventKept);
        }
        // The output window (crate::window): from completion (else receipt) plus the
        // provider's retention; the deadline of a terminal prediction's outputs.
        let window = p.status.is_terminal().then(|| {
            self.window.window(
                &envelope.provider,
                p.completed_at(),
                envelope.received_at_ms,
            )
        });
        if let Some((w, at_ms)) = &window {
            facts.output_window = Some(w.clone());
            facts.output_expires_at_ms = Some(*at_ms);
        }
        let closes = window.as_ref().map(|(_, at_ms)| instant_at(*at_ms));
        let budget_end = Instant::now() + self.window.retry_budget;
        let ev = Event {
            id: &envelope.event_id,
            raw_event: &raw_event,
            body: &body,
            trace_id: envelope.trace_id.as_deref(),
            force: envelope.replay.is_some_and(|r| r.force),
            window: window.as_ref().map(|(w, _)| w),
            retry_stop: Some(deadline.map_or(budget_end, |d| d.min(budget_end))),
            closes,
        };
        // The state rule (hookvault_core::state), for every event, replays included:
        // `replay --force` redoes the work of the event that holds the state (archive
        // again even if the manifest exists), never that of a stale or contradicting one.
        let transition = state::settle(
            &self.store,
            &p,
            Incoming {
                event_id: &envelope.event_id,
                body_sha256: &envelope.body_sha256,
                raw_event: &raw_event,
                origin: if reconciled.is_some() {
                    Origin::Reconciled
                } else {
                    Origin::Signed
                },
            },
        )
        .await?;
        match transition {
            Transition::Advance | Transition::Same => {}
            Transition::Stale { held } => {
                tracing::info!(prediction = %p.id, status = p.status.as_str(), held = %held, raw_event = %raw_event, "older than the prediction's state; the raw event is kept, nothing else to do");
                return Ok(Outcome::Ignored);
            }
            Transition::Conflicting { held, held_by } => {
                tracing::warn!(prediction = %p.id, status = p.status.as_str(), held = %held, held_by = %held_by, raw_event = %raw_event, "contradicts the prediction's first terminal state; the raw event is kept and flagged, nothing archived");
                return Ok(Outcome::Conflicting { held });
            }
            Transition::Corroborating {
                held,
                held_by,
                prefer,
            } => {
                tracing::info!(prediction = %p.id, status = p.status.as_str(), held_by = %held_by, reconciled = facts.reconciled, evidence_replaced = prefer, raw_event = %raw_event, "the prediction's terminal state reached the other way (signed and reconciled); the raw event is kept, nothing archived again");
                return Ok(Outcome::Corroborated { held });
            }
        }
        let outcome = match p.status {
            PredictionStatus::Succeeded => self.archive(&p, ev, facts).await,
            PredictionStatus::Failed | PredictionStatus::Cancelled => {
                let error = p.provider_error();
                tracing::info!(prediction = %p.id, status = p.status.as_str(), error_id = error.error_id.as_deref(), "prediction did not succeed; recording it");
                self.record_failure(&p, ev, error.error_id, error.message, Failure::Provider)
                    .await
            }
            _ => {
                tracing::info!(prediction = %p.id, status = p.status.as_str(), "nothing to archive for this status beyond the raw event");
                Ok(Outcome::Ignored)
            }
        }?;
        // A reconciled event's work is done: a signed event that came meanwhile becomes the
        // state's evidence (crate::state, "evidence.json").
        if reconciled.is_some() && p.status.is_terminal() {
            state::adopt_waiting_evidence(&self.store, &p).await?;
        }
        if let Outcome::FailureRecorded { error_id } | Outcome::OutputsLost { error_id } = &outcome
        {
            facts.error_id = Some(error_id.clone()).filter(|e| !e.is_empty());
        }
        Ok(outcome)
    }

    async fn reject(
        &self,
        message_id: &str,
        body: &str,
        reason: &str,
    ) -> Result<Outcome, Transient> {
        tracing::error!(
            message_id,
            reason,
            "unreadable queue message; kept under rejected/ and acknowledged"
        );
        let record = RejectedRecord {
            message_id: message_id.to_owned(),
            reason: reason.to_owned(),
            body: body.to_owned(),
            rejected_at: now_rfc3339(),
        };
        self.store
            .put_json(&archive::rejected_key(message_id), &record)
            .await?;
        Ok(Outcome::Rejected)
    }

    async fn record_failure(
        &self,
        p: &Prediction,
        ev: Event<'_>,
        error_id: Option<String>,
        error_message: Option<String>,
        whose: Failure,
    ) -> Result<Outcome, Transient> {
        let key = archive::failure_key(&p.id).map_err(|e| Transient(e.to_string()))?;
        let (output_index, output_pointer) = match &whose {
            Failure::Ours {
                output: Some((index, pointer)),
            } => (Some(*index), Some(pointer.clone())),
            Failure::Ours { output: None } | Failure::Provider => (None, None),
        };
        let record = FailureRecord {
            id: p.id.clone(),
            status: p.status.as_str().to_owned(),
            error_id: error_id.clone(),
            error_message,
            output_index,
            output_pointer,
            raw_event: Some(ev.raw_event.to_owned()),
            event_id: ev.id.to_owned(),
            recorded_at: now_rfc3339(),
            trace_id: ev.trace_id.map(str::to_owned),
        };
        let record = Windowed {
            record,
            window: ev.window.cloned(),
        };
        self.store.put_json(&key, &record).await?;
        let error_id = error_id.unwrap_or_default();
        Ok(match whose {
            Failure::Ours { .. } => Outcome::OutputsLost { error_id },
            Failure::Provider => Outcome::FailureRecorded { error_id },
        })
    }

    /// A succeeded prediction: `output.json`, every file, the manifest last.
    async fn archive(
        &self,
        p: &Prediction,
        ev: Event<'_>,
        facts: &mut Facts,
    ) -> Result<Outcome, Transient> {
        let manifest_key = archive::manifest_key(&p.id).map_err(|e| Transient(e.to_string()))?;
        if ev.force {
            tracing::info!(prediction = %p.id, "replayed with --force: archiving again whether or not the manifest exists");
        } else if self.store.exists(&manifest_key).await? {
            tracing::info!(prediction = %p.id, "already archived (manifest exists); skipping");
            return Ok(Outcome::AlreadyArchived);
        }
        // The output value verbatim: as the body spells it, else as parsed.
        let output_key = archive::output_value_key(&p.id).map_err(|e| Transient(e.to_string()))?;
        let value = match raw_output(ev.body) {
            Some(raw) => raw.as_bytes().to_vec(),
            None => serde_json::to_vec(&p.output).map_err(|e| Transient(e.to_string()))?,
        };
        self.store
            .put_bytes(&output_key, value, "application/json", "PutObject")
            .await?;
        let jobs: Vec<FileJob> = output::files(&p.output)
            .into_iter()
            .enumerate()
            .map(|(index, f)| FileJob {
                index,
                pointer: f.pointer,
                source: match f.source {
                    Source::Url(u) => OwnedSource::Url(u.to_owned()),
                    Source::DataUri(d) => OwnedSource::DataUri(d.to_owned()),
                },
            })
            .collect();
        if jobs.is_empty() && p.data_removed() {
            tracing::error!(prediction = %p.id, "the provider reports the outputs purged (data_removed: true) and the body names no file");
            return self
                .record_failure(
                    p,
                    ev,
                    Some(OUTPUT_PURGED.to_owned()),
                    Some("the provider purged this prediction's outputs (data_removed: true) before they were archived".to_owned()),
                    Failure::Ours { output: None },
                )
                .await;
        }
        let jobs = jobs.into_iter().map(|job| async move {
            self.archive_file(p, &job, ev.retry_stop, ev.closes)
                .await
                .map_err(|e| (job.index, job.pointer.clone(), e))
        });
        let results: Vec<Result<OutputRecord, (usize, String, UploadError)>> = stream::iter(jobs)
            .buffered(self.cfg.outputs_in_flight)
            .collect()
            .await;
        let mut outputs = Vec::with_capacity(results.len());
        let mut permanent = None;
        for r in results {
            match r {
                Ok(o) => outputs.push(o),
                Err((index, pointer, e)) if e.is_transient() => {
                    return Err(Transient(format!("output {index} ({pointer:?}): {e}")));
                }
                Err((index, pointer, e)) => {
                    tracing::error!(prediction = %p.id, output = index, pointer = %pointer, error = %e, "output cannot be archived");
                    permanent.get_or_insert((index, pointer, e));
                }
            }
        }
        if let Some((index, pointer, e)) = permanent {
            return self
                .record_failure(
                    p,
                    ev,
                    Some(e.error_id().to_owned()),
                    Some(e.to_string()),
                    Failure::Ours {
                        output: Some((index, pointer)),
                    },
                )
                .await;
        }
        let count = outputs.len();
        facts.bytes_archived = outputs.iter().map(|o| o.bytes).sum();
        let manifest = Manifest {
            id: p.id.clone(),
            status: "succeeded".to_owned(),
            model: p.model_name(),
            event_id: ev.id.to_owned(),
            archived_at: now_rfc3339(),
            outputs,
            output_key: Some(output_key),
            raw_event: Some(ev.raw_event.to_owned()),
            trace_id: ev.trace_id.map(str::to_owned),
        };
        // Last: the manifest is the commit point.
        let manifest = Windowed {
            record: manifest,
            window: ev.window.cloned(),
        };
        self.store.put_json(&manifest_key, &manifest).await?;
        facts.manifest_written = true;
        tracing::info!(prediction = %p.id, outputs = count, "archived");
        Ok(Outcome::Archived { outputs: count })
    }

    async fn archive_file(
        &self,
        p: &Prediction,
        job: &FileJob,
        retry_stop: Option<Instant>,
        closes: Option<Instant>,
    ) -> Result<OutputRecord, UploadError> {
        let key_error =
            |e: archive::LayoutError| UploadError::S3(StoreError::other("key", e.to_string()));
        let record = match &job.source {
            OwnedSource::Url(url) => {
                let key = archive::output_key(&p.id, job.index, url).map_err(key_error)?;
                let download = self.downloader.open_within(url, retry_stop, closes).await?;
                let content_type = download
                    .content_type
                    .clone()
                    .filter(|c| is_header_safe(c))
                    .unwrap_or_else(|| "application/octet-stream".to_owned());
                let target = Target {
                    store: &self.store,
                    key: &key,
                    content_type: &content_type,
                    part_bytes: self.cfg.part_bytes,
                    parts_in_flight: self.cfg.parts_in_flight,
                    max_bytes: self.downloader.max_bytes(),
                };
                let stored = upload::store(download, &target).await?;
                OutputRecord {
                    index: job.index,
                    pointer: job.pointer.clone(),
                    source_url: redact(url).to_owned(),
                    key,
                    bytes: stored.bytes,
                    sha256: stored.sha256,
                    content_type,
                }
            }
            OwnedSource::DataUri(uri) => {
                let decoded = data_uri::decode(uri, self.cfg.max_output_bytes)?;
                let ext = output::extension_for_media_type(&decoded.essence);
                let key =
                    archive::output_key_with_extension(&p.id, job.index, ext).map_err(key_error)?;
                let bytes = decoded.bytes.len() as u64;
                let sha256 = hex::encode(Sha256::digest(&decoded.bytes));
                self.store
                    .put_bytes(&key, decoded.bytes, &decoded.content_type, "PutObject")
                    .await
                    .map_err(UploadError::S3)?;
                OutputRecord {
                    index: job.index,
                    pointer: job.pointer.clone(),
                    source_url: format!("data:{}", decoded.essence),
                    key,
                    bytes,
                    sha256,
                    content_type: decoded.content_type,
                }
            }
        };
        tracing::info!(prediction = %p.id, output = job.index, pointer = %job.pointer, key = %record.key, bytes = record.bytes, "output stored");
        Ok(record)
    }
}

/// Now, Unix milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The `Instant` of `at_ms` (Unix milliseconds); now when it is past.
fn instant_at(at_ms: i64) -> Instant {
    let left = u64::try_from(at_ms.saturating_sub(now_ms())).unwrap_or(0);
    let now = Instant::now();
    // A retention of centuries would overflow an Instant: a year is as good as never.
    now.checked_add(Duration::from_millis(left))
        .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400))
}

/// SQS's `ApproximateReceiveCount` of a record (1 on the first delivery; 0 if absent).
fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The batch future must be `Send` for lambda_runtime; this fails to compile if not.
#[allow(dead_code)]
fn assert_send(
    a: &Archiver,
    e: SqsEvent,
) -> impl std::future::Future<Output = SqsBatchResponse> + Send + '_ {
    a.handle(e, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::visibility::Recorded;

    /// An archiver whose S3 is a closed port: every record fails transiently, at once.
    fn unreachable() -> Archiver {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:1")
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "a", "b", None, None, "test",
            ))
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .force_path_style(true)
            .build();
        let cfg = ArchiverConfig {
            bucket: "b".into(),
            guard: hookvault_core::url_guard::UrlGuard::new(["cdn.example"]),
            max_output_bytes: 1,
            max_event_bytes: 1,
            connect_timeout_ms: 100,
            read_timeout_ms: 100,
            part_bytes: crate::config::MIN_PART_BYTES,
            parts_in_flight: 1,
            outputs_in_flight: 1,
        };
        Archiver::new(aws_sdk_s3::Client::from_conf(conf), cfg).unwrap()
    }

    fn record(id: &str, receives: u32) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = Some(id.into());
        r.receipt_handle = Some(format!("rh-{id}"));
        r.body = Some("not an envelope".into());
        r.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:hv-events".into());
        r.attributes
            .insert("ApproximateReceiveCount".into(), receives.to_string());
        r
    }

    #[tokio::test]
    async fn a_failed_record_is_made_visible_in_seconds_before_it_is_reported() {
        let fake = Arc::new(Recorded::default());
        let a = unreachable().with_visibility(fake.clone());
        let mut event = SqsEvent::default();
        event.records = vec![record("m1", 1), record("m3", 3)];
        let out = a.handle(event, None).await;
        let failed: Vec<_> = out
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert_eq!(failed, ["m1", "m3"]);
        let url = "https://sqs.us-east-1.amazonaws.com/123456789012/hv-events";
        assert_eq!(
            *fake.changes.lock().unwrap(),
            [
                (url.to_owned(), "rh-m1".to_owned(), 1),
                (url.to_owned(), "rh-m3".to_owned(), 4)
            ]
        );
    }

    #[tokio::test]
    async fn the_visibility_is_set_even_when_the_retries_used_all_their_time() {
        let fake = Arc::new(Recorded {
            delay: Duration::from_millis(200),
            ..Recorded::default()
        });
        let a = unreachable().with_visibility(fake.clone());
        let mut event = SqsEvent::default();
        event.records = vec![record("m1", 2)];
        // The retries' deadline is now: the change still has its part of the margin.
        let out = a.handle(event, Some(Instant::now())).await;
        assert_eq!(out.batch_item_failures.len(), 1);
        assert_eq!(fake.changes.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_visibility_change_that_fails_still_reports_the_record() {
        let fake = Arc::new(Recorded {
            fail_with: Some("AccessDenied".into()),
            ..Recorded::default()
        });
        let a = unreachable().with_visibility(fake.clone());
        let mut no_arn = record("m2", 2);
        no_arn.event_source_arn = None;
        let mut event = SqsEvent::default();
        event.records = vec![record("m1", 1), no_arn];
        let out = a.handle(event, None).await;
        assert_eq!(out.batch_item_failures.len(), 2);
        // Tried for the first; the second had no queue ARN to derive the URL from.
        assert_eq!(fake.changes.lock().unwrap().len(), 1);
    }
}
