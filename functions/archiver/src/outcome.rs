//! What became of one record: [`Outcome`] when it is done (acknowledged), [`Transient`]
//! when SQS must deliver it again. The handler decides them; the event log and the
//! metrics read them. This module imports nothing else of the crate but [`crate::store`]'s
//! error, which is transient.

use hookvault_core::records::IndexOutcome;

use crate::store::StoreError;

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `output.json`, every file of `output` and the manifest written.
    Archived {
        /// How many files (URLs and `data:` URIs) were stored; 0 for text-only output.
        outputs: usize,
    },
    /// The manifest already existed: a duplicate or a redelivery.
    AlreadyArchived,
    /// `failure.json` written for a prediction the provider reports failed or cancelled.
    FailureRecorded {
        /// The provider's error id (empty if it gave none).
        error_id: String,
    },
    /// `failure.json` written because an output can never be archived (an expired link,
    /// a refused URL, too large, incomplete, an undecodable `data:` URI): a permanent
    /// failure of ours, counted in the `PermanentFailures` metric. A replay after a fix
    /// may archive it.
    OutputsLost {
        /// Our error id (`OUTPUT_EXPIRED`, `OUTPUT_URL_REFUSED`, …).
        error_id: String,
    },
    /// A status with nothing to archive beyond the raw event (`queued`, `starting`,
    /// `processing`, unknown), or one older than the prediction's state (`started` after
    /// `succeeded`).
    Ignored,
    /// A terminal event that contradicts the prediction's first terminal state (`failed`
    /// after `succeeded`, a second, different `succeeded` body): its raw event is kept and
    /// flagged, nothing else is written.
    Conflicting {
        /// The terminal status the prediction holds.
        held: String,
    },
    /// A terminal event of the status the prediction holds, reached the other way (a
    /// signed webhook after the reconciler's fetched event, or the reverse: issue 23): its
    /// raw event is kept and logged, nothing is archived again and the app is not told
    /// again. A signed one became the state's evidence.
    Corroborated {
        /// The terminal status the prediction holds.
        held: String,
    },
    /// The raw event was kept and there is nothing else to do: the body is not a
    /// prediction webhook (a form-encoded GitHub delivery, other JSON, bytes that are not
    /// UTF-8), or its prediction id is not a safe folder name.
    EventKept,
    /// Unreadable, or its claim-checked body cannot be read: kept under `rejected/`.
    Rejected,
}

impl Outcome {
    /// Its name in log lines (`archived`, `already_archived`, `failure_recorded`,
    /// `outputs_lost`, `ignored`, `conflicting`, `corroborated`, `event_kept`, `rejected`): a plain string a Logs
    /// Insights filter can match.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Archived { .. } => "archived",
            Outcome::AlreadyArchived => "already_archived",
            Outcome::FailureRecorded { .. } => "failure_recorded",
            Outcome::OutputsLost { .. } => "outputs_lost",
            Outcome::Ignored => "ignored",
            Outcome::Conflicting { .. } => "conflicting",
            Outcome::Corroborated { .. } => "corroborated",
            Outcome::EventKept => "event_kept",
            Outcome::Rejected => "rejected",
        }
    }

    /// The error id of a recorded failure (the provider's, or ours for lost outputs).
    pub fn error_id(&self) -> Option<&str> {
        match self {
            Outcome::FailureRecorded { error_id } | Outcome::OutputsLost { error_id } => {
                Some(error_id).filter(|e| !e.is_empty()).map(String::as_str)
            }
            _ => None,
        }
    }

    /// Files stored for a new manifest.
    pub fn outputs(&self) -> Option<usize> {
        match self {
            Outcome::Archived { outputs } => Some(*outputs),
            _ => None,
        }
    }

    /// The event log's name for it.
    pub fn index_outcome(&self) -> IndexOutcome {
        match self {
            Outcome::Archived { .. } | Outcome::AlreadyArchived => IndexOutcome::Archived,
            Outcome::FailureRecorded { .. } => IndexOutcome::PredictionFailed,
            Outcome::OutputsLost { .. } => IndexOutcome::Failed,
            Outcome::Ignored => IndexOutcome::Ignored,
            Outcome::Conflicting { .. } => IndexOutcome::Conflicting,
            Outcome::Corroborated { .. } => IndexOutcome::Corroborating,
            Outcome::EventKept => IndexOutcome::Kept,
            Outcome::Rejected => IndexOutcome::Rejected,
        }
    }
}

/// The error id of a succeeded prediction whose record says its outputs are already
/// purged (`"data_removed": true`, the provider's API reference) and names no file.
pub const OUTPUT_PURGED: &str = "OUTPUT_PURGED";

/// A failure worth a redelivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Transient(pub String);

impl From<StoreError> for Transient {
    fn from(e: StoreError) -> Self {
        Transient(e.to_string())
    }
}
