//! One structured JSON log line per request. It carries what an operator needs (status,
//! provider, scheme, key slot, event id, trace id, latency) and never a secret or a
//! signature.
//!
//! The line's level is the console method it is written with ([`RequestLog::level`]):
//! Workers Logs records `console.error` lines at level `error` and `console.log` lines at
//! level `log` (<https://developers.cloudflare.com/workers/observability/logs/workers-logs/>),
//! so a query or alert on errors finds exactly the answers of the edge's own making.

use serde::Serialize;

/// The level of a log line: which console method writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `console.log`.
    Info,
    /// `console.error`.
    Error,
}

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
    /// The request's trace id ([`crate::trace`]), on the webhook route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
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
    /// `SendMessage` attempts made, when more than one (retried within the request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqs_attempts: Option<u32>,
    /// Claim-check `PutObject` attempts made, when more than one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_attempts: Option<u32>,
    /// The spool key, when SQS did not take the envelope and the spool did (answered 202).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spooled: Option<String>,
    /// Spool `PutObject` attempts made, when more than one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spool_attempts: Option<u32>,
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

    /// The level to write the line at, from the status answered: [`Level::Error`] for a
    /// 5xx, which is always of the edge's own making (SQS or S3 did not take the event, a
    /// var, secret or binding is missing or invalid, an internal error); [`Level::Info`]
    /// for everything else, including every 4xx (the sender's fault: a bad signature, a
    /// body too large, an unknown provider). A 202 whose event went to the spool is
    /// [`Level::Error`] too: SQS did not take it, and an operator should know.
    pub fn level(&self) -> Level {
        if self.status >= 500 || self.spooled.is_some() {
            Level::Error
        } else {
            Level::Info
        }
    }

    /// The line as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_of_the_edges_own_making_are_errors() {
        let mut log = RequestLog::new("POST", "/webhooks/skytells");
        for (status, level) in [
            (202, Level::Info),
            (204, Level::Info),
            (400, Level::Info),
            (401, Level::Info),
            (404, Level::Info),
            (413, Level::Info),
            (500, Level::Error),
            (503, Level::Error),
        ] {
            log.status = status;
            assert_eq!(log.level(), level, "{status}");
        }
        log.status = 202;
        log.spooled = Some("spool/skytells/00".into());
        assert_eq!(log.level(), Level::Error, "spooled: SQS did not take it");
    }

    #[test]
    fn the_trace_id_is_in_the_line_when_there_is_one() {
        let mut log = RequestLog::new("POST", "/webhooks/skytells");
        assert!(!log.to_json().contains("trace_id"));
        log.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
        let line: serde_json::Value = serde_json::from_str(&log.to_json()).unwrap_or_default();
        assert_eq!(line["msg"], "request");
        assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    }
}
