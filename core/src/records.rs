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
