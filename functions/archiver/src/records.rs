//! What the archiver writes beside the outputs.

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

/// Now as RFC 3339 UTC (second precision).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rfc3339(secs)
}

/// Unix seconds as RFC 3339 UTC.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(784_111_777), "1994-11-06T08:49:37Z");
        assert_eq!(super::rfc3339(1_795_626_000), "2026-11-25T17:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
