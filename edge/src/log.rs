//! One structured JSON log line per request. It carries what an operator needs (status,
//! provider, scheme, key slot, event id, latency) and never a secret or a signature.

use serde::Serialize;

/// The fields of one request's log line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestLog {
    /// Always `request`.
    pub msg: &'static str,
    /// HTTP method.
    pub method: String,
    /// Path (no query string: it is not used and could carry anything).
    pub path: String,
    /// Status answered.
    pub status: u16,
    /// The error code, when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// The refusal's reason, when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Provider name from the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Scheme used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<&'static str>,
    /// Id of the key that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Slot of the key that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_slot: Option<&'static str>,
    /// The body's length in bytes, once verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_bytes: Option<usize>,
    /// The S3 key of the claim-checked body, when it went by claim check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_check: Option<String>,
    /// The WASM linear memory's size after a claim check, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasm_memory_bytes: Option<u64>,
    /// The event id queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// SQS's message id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqs_message_id: Option<String>,
    /// Milliseconds from receipt to answer.
    pub latency_ms: u64,
}

impl RequestLog {
    /// A line for `method` and `path`.
    pub fn new(method: &str, path: &str) -> Self {
        RequestLog {
            msg: "request",
            method: method.to_owned(),
            path: path.to_owned(),
            ..Default::default()
        }
    }

    /// The line as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
