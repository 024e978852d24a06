//! The archiver's CloudWatch metrics, one EMF line per record (namespace
//! `METRICS_NAMESPACE`, dimension `Function=archiver`; see `hookvault_aws::metrics`):
//!
//! | metric | unit | when |
//! |---|---|---|
//! | `EventsArchived` | Count | the raw event is kept (every readable envelope) |
//! | `OutputsArchived` | Count | files stored for a new manifest |
//! | `BytesArchived` | Bytes | their bytes |
//! | `PermanentFailures` | Count | also by `ErrorId`: an output lost for good (`OUTPUT_EXPIRED`, `OUTPUT_URL_REFUSED`, …), or a record failing on its last receive before the DLQ (`RETRIES_EXHAUSTED`) |
//! | `RejectedMessages` | Count | a message kept under `rejected/` |
//! | `DownloadRetries` | Count | CDN retries made for the record |
//! | `TransientFailures` | Count | the record is left for redelivery |
//! | `OutputsExpired` | Count | an output recorded `OUTPUT_EXPIRED` (its link answered 403/404/410, or the CDN did not deliver before the output window closed) or `OUTPUT_PURGED` (the provider says so) |
//! | `ReceiptToManifest` | Milliseconds | from the edge's receipt to the manifest (not for replays) |
//!
//! The template's alarms watch `PermanentFailures`, `OutputsExpired` and
//! `RejectedMessages`; its dashboard
//! shows them all.

use hookvault_aws::metrics::Unit;
use hookvault_core::envelope::Envelope;

use crate::outcome::Outcome;

/// The error id of an output whose window closed before it was archived: a 403, 404 or
/// 410 from the CDN, or a CDN that did not deliver before `output_expires_at`.
pub const OUTPUT_EXPIRED: &str = "OUTPUT_EXPIRED";

/// The error id of a record that failed on its last receive.
pub const RETRIES_EXHAUSTED: &str = "RETRIES_EXHAUSTED";

/// What became known of one record, for its log entry and its metrics.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The envelope's provider (`None`: the message was unreadable).
    pub provider: Option<String>,
    /// The envelope's body digest.
    pub body_sha256: Option<String>,
    /// The envelope's body length.
    pub body_bytes: u64,
    /// The edge's receipt, Unix milliseconds.
    pub received_at_ms: Option<i64>,
    /// The envelope's event id.
    pub event_id: Option<String>,
    /// The trace id (the envelope's, else the message attribute's).
    pub trace_id: Option<String>,
    /// True when `hookvault replay` queued it.
    pub replayed: bool,
    /// The delivery came through the edge's spool (the drainer's `Spooled` attribute).
    pub spooled: bool,
    /// The envelope is a reconciled event (its `reconciled` member: fetched from the
    /// provider's API by the reconciler, issue 23).
    pub reconciled: bool,
    /// The raw event's `event.json` key, once kept.
    pub raw_event: Option<String>,
    /// The prediction id, if the body is a prediction.
    pub prediction_id: Option<String>,
    /// The prediction's status.
    pub status: Option<String>,
    /// The failure's error id.
    pub error_id: Option<String>,
    /// Bytes of the files of a new manifest.
    pub bytes_archived: u64,
    /// A new manifest was written.
    pub manifest_written: bool,
    /// CDN retries made for this record.
    pub download_retries: u64,
    /// It failed on its last receive.
    pub retries_exhausted: bool,
    /// The prediction's output window ([`crate::window`]), for a terminal prediction.
    pub output_window: Option<hookvault_core::records::OutputWindow>,
    /// When that window closes, Unix milliseconds.
    pub output_expires_at_ms: Option<i64>,
}

impl Facts {
    /// Takes what the envelope says.
    pub fn read_envelope(&mut self, e: &Envelope) {
        self.provider = Some(e.provider.clone());
        self.body_sha256 = Some(e.body_sha256.clone());
        self.body_bytes = e.body_bytes;
        self.received_at_ms = Some(e.received_at_ms);
        self.event_id = Some(e.event_id.clone());
        if e.trace_id.is_some() {
            self.trace_id = e.trace_id.clone();
        }
        self.replayed = e.replay.is_some();
    }
}

/// The metrics of one record: (name, unit, value), and the permanent failure's error id.
pub fn of(
    outcome: Option<&Outcome>,
    facts: &Facts,
    now_ms: i64,
) -> (Vec<(&'static str, Unit, f64)>, Option<String>) {
    let one = |b: bool| if b { 1.0 } else { 0.0 };
    let outputs = match outcome {
        Some(Outcome::Archived { outputs }) => *outputs as f64,
        _ => 0.0,
    };
    let mut metrics = vec![
        (
            "EventsArchived",
            Unit::Count,
            one(facts.raw_event.is_some()),
        ),
        ("OutputsArchived", Unit::Count, outputs),
        ("BytesArchived", Unit::Bytes, facts.bytes_archived as f64),
        (
            "RejectedMessages",
            Unit::Count,
            one(matches!(outcome, Some(Outcome::Rejected))),
        ),
        (
            "DownloadRetries",
            Unit::Count,
            facts.download_retries as f64,
        ),
        ("TransientFailures", Unit::Count, one(outcome.is_none())),
        (
            "OutputsExpired",
            Unit::Count,
            one(matches!(outcome, Some(Outcome::OutputsLost { error_id })
                if error_id == OUTPUT_EXPIRED || error_id == crate::outcome::OUTPUT_PURGED)),
        ),
    ];
    if facts.manifest_written && !facts.replayed {
        if let Some(at) = facts.received_at_ms {
            metrics.push((
                "ReceiptToManifest",
                Unit::Milliseconds,
                now_ms.saturating_sub(at).max(0) as f64,
            ));
        }
    }
    let permanent = match outcome {
        Some(Outcome::OutputsLost { error_id }) => Some(error_id.clone()),
        None if facts.retries_exhausted => Some(RETRIES_EXHAUSTED.to_owned()),
        _ => None,
    };
    (metrics, permanent)
}

/// Prints the record's EMF lines through `emf`: its counts, and a `PermanentFailures`
/// line by `ErrorId` when it had one.
pub(crate) fn emit(emf: &hookvault_aws::metrics::Emf, outcome: Option<&Outcome>, facts: &Facts) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let (metrics, permanent) = of(outcome, facts, now_ms);
    let mut props = Vec::new();
    if let Some(t) = &facts.trace_id {
        props.push(("trace_id", t.as_str()));
    }
    if let Some(e) = &facts.event_id {
        props.push(("event_id", e.as_str()));
    }
    emf.emit(&metrics, &[], &props);
    if let Some(error_id) = permanent {
        emf.emit(
            &[("PermanentFailures", Unit::Count, 1.0)],
            &[("ErrorId", error_id.as_str())],
            &props,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(m: &[(&'static str, Unit, f64)], name: &str) -> f64 {
        m.iter().find(|x| x.0 == name).map_or(-1.0, |x| x.2)
    }

    #[test]
    fn outcomes_map_to_their_metrics() {
        let facts = Facts {
            raw_event: Some("events/p/x/event.json".into()),
            received_at_ms: Some(1_000),
            manifest_written: true,
            bytes_archived: 42,
            download_retries: 2,
            ..Facts::default()
        };
        let (m, p) = of(Some(&Outcome::Archived { outputs: 3 }), &facts, 4_000);
        assert_eq!(value(&m, "OutputsArchived"), 3.0);
        assert_eq!(value(&m, "BytesArchived"), 42.0);
        assert_eq!(value(&m, "EventsArchived"), 1.0);
        assert_eq!(value(&m, "DownloadRetries"), 2.0);
        assert_eq!(value(&m, "ReceiptToManifest"), 3_000.0);
        assert_eq!(p, None);
        let replayed = Facts {
            replayed: true,
            ..facts.clone()
        };
        assert_eq!(
            value(
                &of(Some(&Outcome::Archived { outputs: 1 }), &replayed, 4_000).0,
                "ReceiptToManifest"
            ),
            -1.0
        );
        let expired = Outcome::OutputsLost {
            error_id: OUTPUT_EXPIRED.into(),
        };
        let (em, ep) = of(Some(&expired), &Facts::default(), 0);
        assert_eq!(value(&em, "OutputsExpired"), 1.0);
        assert_eq!(ep.as_deref(), Some(OUTPUT_EXPIRED));
        assert_eq!(value(&m, "OutputsExpired"), 0.0);
        let lost = Outcome::OutputsLost {
            error_id: "OUTPUT_URL_REFUSED".into(),
        };
        assert_eq!(
            of(Some(&lost), &facts, 0).1.as_deref(),
            Some("OUTPUT_URL_REFUSED")
        );
        // A provider's failure is not ours.
        let provider = Outcome::FailureRecorded {
            error_id: "INSUFFICIENT_CREDITS".into(),
        };
        assert_eq!(of(Some(&provider), &facts, 0).1, None);
        let (m, _) = of(Some(&Outcome::Rejected), &Facts::default(), 0);
        assert_eq!(value(&m, "RejectedMessages"), 1.0);
        assert_eq!(value(&m, "EventsArchived"), 0.0);
        let last = Facts {
            retries_exhausted: true,
            ..Facts::default()
        };
        let (m, p) = of(None, &last, 0);
        assert_eq!(value(&m, "TransientFailures"), 1.0);
        assert_eq!(p.as_deref(), Some(RETRIES_EXHAUSTED));
        assert_eq!(of(None, &Facts::default(), 0).1, None);
    }
}
