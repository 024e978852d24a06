//! What the archiver writes beside the outputs, and the api function reads: the archive's
//! record formats.

use serde::{Deserialize, Serialize};

/// `predictions/{id}/manifest.json`: written last; its presence means "archived".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The prediction's id.
    pub id: String,
    /// Always `succeeded`.
    pub status: String,
    /// The model, if the webhook named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The queue envelope's event id.
    pub event_id: String,
    /// When the archive completed, RFC 3339.
    pub archived_at: String,
    /// One entry per file found in `output` (URLs and `data:` URIs), in document order.
    pub outputs: Vec<OutputRecord>,
    /// The key of `output.json`: the `output` value verbatim (text, numbers, objects).
    /// Absent in manifests written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_key: Option<String>,
    /// The key of the raw event's evidence (`events/…/event.json`), whose body sits beside
    /// it. Absent in manifests written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_event: Option<String>,
    /// The trace id of the event that was archived ([`crate::trace`]), if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// One archived output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// Its number among the files of `output` (the `{index}` of its key).
    pub index: usize,
    /// Its place in `output`, a JSON Pointer (RFC 6901): `/0`, `/image`, `` for a bare
    /// string. Empty in manifests written before it existed (then `output` was a list and
    /// `index` its place).
    #[serde(default)]
    pub pointer: String,
    /// The CDN URL it came from, without its query string (which carries the CDN's
    /// signature); for a `data:` URI, `data:` and its media type only.
    pub source_url: String,
    /// The S3 key.
    pub key: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// The content type stored.
    pub content_type: String,
}

/// `predictions/{id}/failure.json`: a failed or cancelled prediction, or outputs that
/// could not be archived for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// The prediction's id.
    pub id: String,
    /// The prediction's status as sent (`failed`, `cancelled`, or `succeeded` when the
    /// outputs were lost).
    pub status: String,
    /// The provider's `error_id`, the inference error's code, or ours
    /// (`OUTPUT_EXPIRED`, `OUTPUT_URL_REFUSED`, `OUTPUT_TOO_LARGE`, …).
    pub error_id: Option<String>,
    /// The provider's message, or ours.
    pub error_message: Option<String>,
    /// The output that failed, for output failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_index: Option<usize>,
    /// Its place in `output` (JSON Pointer), for output failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_pointer: Option<String>,
    /// The key of the raw event's evidence (`events/…/event.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_event: Option<String>,
    /// The queue envelope's event id.
    pub event_id: String,
    /// When it was recorded, RFC 3339.
    pub recorded_at: String,
    /// The trace id of the event ([`crate::trace`]), if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// When a prediction's outputs leave the provider's CDN, as the archiver reckons it
/// (issue 22): the prediction's `completed_at` (else the edge's receipt of the event)
/// plus the provider's output retention (Skytells: 300 s, "Skytells does not retain
/// output data more than 5 minutes after a prediction is completed",
/// <https://learn.skytells.ai/docs/api/v1/webhooks>). Written beside the fields of the
/// manifest and of `failure.json` ([`Windowed`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputWindow {
    /// The deadline, RFC 3339 UTC (second precision).
    pub output_expires_at: String,
    /// The retention that was applied, seconds.
    pub output_retention_secs: u64,
    /// What it was counted from: `completed_at` (the provider's) or `received_at` (the
    /// edge's receipt, when the body has no readable `completed_at`).
    pub output_window_from: String,
}

/// A record (a [`Manifest`], a [`FailureRecord`]) with its [`OutputWindow`] beside its
/// own fields, flattened: one JSON object. Records written before the window existed read
/// with `window: None`; readers of the bare record ignore the extra fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Windowed<T> {
    /// The record.
    #[serde(flatten)]
    pub record: T,
    /// Its output window, when the archiver knew it.
    #[serde(flatten)]
    pub window: Option<OutputWindow>,
}

/// `events/{provider}/{sha256}/event.json`: the evidence of one event, beside its exact
/// bytes (`body`). With the secret, `hookvault verify --now <received_at_ms / 1000>` and
/// each `signature_headers` entry as `-H` checks the body again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The envelope version the event arrived in.
    pub envelope_version: u32,
    /// The provider's name.
    pub provider: String,
    /// The scheme that verified it.
    pub scheme: crate::Scheme,
    /// The event id.
    pub event_id: String,
    /// When the edge received it, Unix milliseconds.
    pub received_at_ms: i64,
    /// The id of the key that matched.
    pub key_id: String,
    /// The slot of the key that matched.
    pub key_slot: crate::KeySlot,
    /// The scheme's headers as received (empty for envelope version 1).
    pub signature_headers: Vec<(String, String)>,
    /// The request's `Content-Type`, if sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Lowercase hex SHA-256 of the body.
    pub body_sha256: String,
    /// The body's length in bytes.
    pub body_bytes: u64,
    /// The key of the body (`events/…/body`).
    pub body_key: String,
    /// The prediction id, when the body is a prediction webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_id: Option<String>,
    /// The prediction's status, when the body is a prediction webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// SQS's message id of the delivery that archived it.
    pub message_id: String,
    /// When it was archived, RFC 3339.
    pub archived_at: String,
    /// The trace id the edge gave the request ([`crate::trace`]), if the envelope had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// For an event the reconciler fetched from the provider's API instead of receiving
    /// it signed (issue 23): where and when it was fetched ([`crate::envelope::Reconciled`]).
    /// Absent for signed events; `scheme`, `key_id` and `key_slot` then verify nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled: Option<crate::envelope::Reconciled>,
}

/// `rejected/{message id}.json`: a queue message the archiver could not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRecord {
    /// SQS's message id.
    pub message_id: String,
    /// Why it was rejected.
    pub reason: String,
    /// The message body, verbatim.
    pub body: String,
    /// When, RFC 3339.
    pub rejected_at: String,
}

/// What the archiver made of one event, as the event log records it
/// ([`crate::archive::index_log_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexOutcome {
    /// An unreadable queue message, kept under `rejected/`.
    Rejected,
    /// The archiver failed it on every receive (the queue's `maxReceiveCount`), and SQS
    /// moves it to the DLQ next (`error_id` `RETRIES_EXHAUSTED`). Written only when S3
    /// takes the entry (S3 may be the very failure). `hookvault replay --dlq` brings it
    /// back once the cause is fixed.
    DeadLettered,
    /// Outputs that could not be archived for good (`failure.json` with one of our error
    /// ids: `OUTPUT_EXPIRED`, `OUTPUT_URL_REFUSED`, …). A replay after a fix may archive it.
    Failed,
    /// A status with nothing to archive beyond the raw event (`starting`, `processing`),
    /// or one older than the state the prediction holds ([`crate::state::Transition::Stale`]).
    Ignored,
    /// A terminal event that contradicts the prediction's first terminal state (`failed`
    /// after `succeeded`, a second `succeeded` body): its raw event is kept, nothing is
    /// archived ([`crate::state::Transition::Conflicting`]).
    Conflicting,
    /// A terminal event that agrees with the prediction's terminal state but reached
    /// hookvault the other way: a signed webhook after the reconciler's fetched event of
    /// the same status, or the reverse (issue 23, "one truth"). Its raw event is kept,
    /// nothing is archived again ([`crate::state::Transition::Corroborating`]); a signed
    /// one becomes the state's evidence.
    Corroborating,
    /// The reconciler followed a prediction hookvault submitted for `CHECK_MAX_AGE_SECS`
    /// and it never reached a terminal status: `predictions/{id}/stalled.json`
    /// ([`StalledRecord`]). Written by the reconciler, not the archiver.
    Stalled,
    /// The raw event is kept; the body is not a prediction webhook.
    Kept,
    /// The provider reported the prediction failed or cancelled (`failure.json` with the
    /// provider's error).
    PredictionFailed,
    /// The manifest is written (now, or by an earlier delivery).
    Archived,
}

impl IndexOutcome {
    /// Every outcome, in the order of their ranks (the derived `Ord`): when one event has
    /// several entries (a failure, then a replay that archived it), the last one here wins.
    pub const ALL: [IndexOutcome; 10] = [
        IndexOutcome::Rejected,
        IndexOutcome::DeadLettered,
        IndexOutcome::Failed,
        IndexOutcome::Ignored,
        IndexOutcome::Conflicting,
        IndexOutcome::Corroborating,
        IndexOutcome::Stalled,
        IndexOutcome::Kept,
        IndexOutcome::PredictionFailed,
        IndexOutcome::Archived,
    ];

    /// Its name in keys, JSON and the CLI's `--status`.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexOutcome::Rejected => "rejected",
            IndexOutcome::DeadLettered => "dead_lettered",
            IndexOutcome::Failed => "failed",
            IndexOutcome::Ignored => "ignored",
            IndexOutcome::Conflicting => "conflicting",
            IndexOutcome::Corroborating => "corroborating",
            IndexOutcome::Stalled => "stalled",
            IndexOutcome::Kept => "kept",
            IndexOutcome::PredictionFailed => "prediction_failed",
            IndexOutcome::Archived => "archived",
        }
    }

    /// The outcome named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl std::fmt::Display for IndexOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the event log: `index/log/{date}/{hour}/{provider}/{outcome}/{sha256}.json`
/// (and the same entry under `index/id/…`, found by event id). One JSON object on one
/// line, so the log is also a JSON-lines table for Athena or S3 Select
/// (`docs/operations.md` has the DDL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The envelope's event id.
    pub event_id: String,
    /// The provider's name.
    pub provider: String,
    /// When the edge received it, Unix milliseconds (the log's date and hour come from it).
    pub received_at_ms: i64,
    /// Lowercase hex SHA-256 of the body: with `provider`, the raw event's folder.
    pub body_sha256: String,
    /// The body's length in bytes.
    pub body_bytes: u64,
    /// What the archiver made of it.
    pub outcome: IndexOutcome,
    /// The prediction id, when the body is a prediction webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_id: Option<String>,
    /// The prediction's status as sent, when the body is a prediction webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The error id of a failure (ours or the provider's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
    /// The key of the raw event's `event.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_event: Option<String>,
    /// The trace id ([`crate::trace`]), if the envelope had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// When the prediction's outputs leave the provider's CDN ([`OutputWindow`]), RFC
    /// 3339, for a prediction webhook whose window the archiver reckoned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_expires_at: Option<String>,
    /// SQS's message id of the delivery that wrote this entry.
    pub message_id: String,
    /// True when that delivery was a `hookvault replay`.
    #[serde(default)]
    pub replayed: bool,
    /// True when the event came through the edge's spool (SQS refused it at the edge, and
    /// the drainer queued it: [`crate::envelope::SPOOLED_ATTRIBUTE`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spooled: bool,
    /// True when the event was not received signed but fetched from the provider's API by
    /// the reconciler (issue 23: a webhook that never came;
    /// [`crate::envelope::Reconciled`]), and on the reconciler's own `stalled` entries.
    /// `hookvault events list --status reconciled` reads this field.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reconciled: bool,
    /// When this entry was written, RFC 3339.
    pub recorded_at: String,
}

/// `predictions/{id}/submission.json` ([`crate::archive::submission_key`]): the ledger of
/// submissions (issue 23, item 1). The api writes it create-only (`If-None-Match: *`) once
/// the provider accepted a prediction and before it answers the caller, so every
/// prediction hookvault submitted is on record beside its archive even if its webhook
/// never comes.
///
/// ```json
/// {"provider":"skytells","prediction_id":"pred_abc","model":"truefusion",
///  "submitted_at":"2026-12-06T03:00:00Z","caller":"3f2a9c0d1e8b7a65",
///  "idempotency_scope":"9b1e…"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionRecord {
    /// The provider's name, as the edge's route names it (`skytells`): the `provider` of
    /// the prediction's webhook envelopes.
    pub provider: String,
    /// The provider's prediction id.
    pub prediction_id: String,
    /// The model the caller asked for.
    pub model: String,
    /// When the provider accepted it (the api's clock), RFC 3339 UTC.
    pub submitted_at: String,
    /// Who submitted it: the first 16 hex digits of the SHA-256 of the caller's bearer key
    /// (never the key).
    pub caller: String,
    /// With the caller's `Idempotency-Key`: the key's scope hash, the name of its
    /// `idempotency/{scope}.json` record (never the key). Absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_scope: Option<String>,
}

/// `predictions/{id}/stalled.json` ([`crate::archive::stalled_key`]): the reconciler
/// followed a prediction for `CHECK_MAX_AGE_SECS` and never saw it terminal (issue 23,
/// item 2). Written create-only; the event log has an entry with the outcome
/// [`IndexOutcome::Stalled`] beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StalledRecord {
    /// The provider's name.
    pub provider: String,
    /// The prediction id.
    pub prediction_id: String,
    /// When it was submitted (or first seen by a sweep), Unix milliseconds.
    pub submitted_at_ms: i64,
    /// The status the provider last answered (`starting`, `processing`, …); absent when
    /// no check got an answer (401s, 5xx, the network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<String>,
    /// What the last check got instead of a status, when it got none (`HTTP 503`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Checks made, the last included.
    pub checks: u32,
    /// When the reconciler gave up, RFC 3339 UTC.
    pub stalled_at: String,
}

#[cfg(test)]
mod index_tests {
    use super::*;

    #[test]
    fn outcomes_round_trip_by_name_and_rank_archived_last() {
        for o in IndexOutcome::ALL {
            assert_eq!(IndexOutcome::parse(o.as_str()), Some(o));
            assert_eq!(
                serde_json::to_string(&o).ok(),
                Some(format!("\"{}\"", o.as_str()))
            );
        }
        assert_eq!(IndexOutcome::parse("nope"), None);
        assert_eq!(
            IndexOutcome::ALL.iter().max(),
            Some(&IndexOutcome::Archived)
        );
        assert!(IndexOutcome::Failed < IndexOutcome::Archived);
        // A replay's result outranks the dead letter that preceded it.
        assert!(IndexOutcome::DeadLettered < IndexOutcome::Failed);
        // ALL lists them in rank order.
        assert!(IndexOutcome::ALL.windows(2).all(|w| w[0] < w[1]));
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            id: "p".into(),
            status: "succeeded".into(),
            model: None,
            event_id: "e".into(),
            archived_at: "2026-12-06T00:00:00Z".into(),
            outputs: vec![],
            output_key: None,
            raw_event: None,
            trace_id: None,
        }
    }

    #[test]
    fn the_window_sits_beside_the_record_and_is_optional() {
        let w = Windowed {
            record: manifest(),
            window: Some(OutputWindow {
                output_expires_at: "2026-12-06T00:05:00Z".into(),
                output_retention_secs: 300,
                output_window_from: "completed_at".into(),
            }),
        };
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["output_expires_at"], "2026-12-06T00:05:00Z");
        assert_eq!(json["id"], "p");
        // A reader of the bare manifest still reads it; an old manifest has no window.
        let bare: Manifest = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(bare, manifest());
        assert_eq!(
            serde_json::from_value::<Windowed<Manifest>>(json).unwrap(),
            w
        );
        let old = serde_json::to_value(manifest()).unwrap();
        let read: Windowed<Manifest> = serde_json::from_value(old).unwrap();
        assert_eq!(read.window, None);
    }
}
