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
    /// One entry per output, in the webhook's order.
    pub outputs: Vec<OutputRecord>,
}

/// One archived output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// Its position in `output`.
    pub index: usize,
    /// The CDN URL it came from, without its query string (which carries the CDN's
    /// signature).
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
    /// The queue envelope's event id.
    pub event_id: String,
    /// When it was recorded, RFC 3339.
    pub recorded_at: String,
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
