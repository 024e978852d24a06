//! The reconciler's I/O, behind three small traits so its decisions
//! ([`crate::reconcile`], [`crate::sweep`]) are tested with fakes:
//!
//! * [`Provider`]: the provider's API, `GET /v1/predictions/{id}` and the list;
//! * [`Archive`]: the archive bucket, what it knows of a prediction, and what the
//!   reconciler writes there (`stalled.json`, its event-log entry, the chain of checks
//!   `check.json`, claim checks);
//! * [`Queues`]: the events queue (reconciled envelopes) and the check queue (the next
//!   check, delayed).
//!
//! The AWS and HTTP implementations are in [`crate::aws`].

use std::future::Future;

use hookvault_core::event::PredictionStatus;
use hookvault_core::reconcile::{Check, CheckChain};
use hookvault_core::records::{IndexEntry, StalledRecord};

/// What one fetch of a prediction got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// 2xx with a prediction in it.
    Prediction {
        /// Its status.
        status: PredictionStatus,
        /// The answer's body, byte for byte.
        body: Vec<u8>,
        /// The URL fetched.
        url: String,
        /// The answer's request id (`x-request-id`, else `request-id`).
        request_id: Option<String>,
        /// When the answer was read, Unix milliseconds.
        fetched_at_ms: i64,
    },
    /// 404: the provider does not know the id.
    NotFound,
    /// 401 or 403 (after reading the key again): the key is refused.
    Unauthorized(u16),
    /// Worth another try later: 429, 5xx, no answer, or a 2xx that is not a prediction.
    Transient(String),
    /// Any other answer (a 400, …), with its status: tried again later too, and logged as
    /// an error.
    Refused(u16),
    /// An answer larger than `MAX_ANSWER_BYTES` (the cap, bytes): it would be as large
    /// every time, so it is not fetched again.
    TooLarge(u64),
}

/// One page of the provider's list.
pub type ListAnswer = Result<hookvault_core::reconcile::ListPage, String>;

/// The provider's API.
pub trait Provider: Send + Sync {
    /// `GET /v1/predictions/{id}`.
    fn get(&self, id: &str) -> impl Future<Output = Fetched> + Send;
    /// `GET /v1/predictions?page=&per_page=&from=&to=` (`from`/`to` as
    /// `YYYY-MM-DDTHH:MM:SSZ`); `Err` with a reason when there is no readable page.
    fn list(
        &self,
        page: u32,
        per_page: u32,
        from: &str,
        to: &str,
    ) -> impl Future<Output = ListAnswer> + Send;
}

/// An S3 call failed (the check is tried again: its message is reported failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op} failed: {reason}")]
pub struct IoError {
    /// The operation (`S3 GetObject (state)`, `SQS SendMessage (check)`, …).
    pub op: &'static str,
    /// The SDK's error, short.
    pub reason: String,
}

/// The archive bucket, as the reconciler sees it.
pub trait Archive: Send + Sync {
    /// True when the archive holds a terminal outcome for prediction `id`: a terminal
    /// `state.json`, a manifest or a `failure.json` (the archiver's own "done").
    fn terminal_known(&self, id: &str) -> impl Future<Output = Result<bool, IoError>> + Send;
    /// Writes `body` at `raw/{sha256}` (a claim check: too large for one message).
    fn put_claim_check(
        &self,
        key: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(), IoError>> + Send;
    /// Writes `stalled.json` create-only and, when it was created, the event log's
    /// `entry` under its log, id and prediction keys: true then; false when a
    /// `stalled.json` was there already (left as it is, no entry written).
    fn write_stalled(
        &self,
        record: &StalledRecord,
        entry: &IndexEntry,
    ) -> impl Future<Output = Result<bool, IoError>> + Send;
    /// The prediction's chain of checks (`predictions/{id}/check.json`) and its ETag;
    /// `None` when there is none (an unreadable one reads as none: the create-only write
    /// that follows then fails, and the check stops).
    fn read_chain(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<(CheckChain, String)>, IoError>> + Send;
    /// Writes the chain conditionally: create-only when `etag` is `None`
    /// (`If-None-Match: *`), else only over that ETag (`If-Match`). False when the
    /// condition did not hold (another check wrote it first).
    fn write_chain(
        &self,
        id: &str,
        chain: &CheckChain,
        etag: Option<&str>,
    ) -> impl Future<Output = Result<bool, IoError>> + Send;
}

/// The two queues.
pub trait Queues: Send + Sync {
    /// Sends a reconciled envelope (`body`, its event id's FIFO group and dedup ids when
    /// the queue is FIFO) to the events queue.
    fn send_event(
        &self,
        body: String,
        fifo: Option<(String, String)>,
    ) -> impl Future<Output = Result<(), IoError>> + Send;
    /// Sends `check` to the check queue, delivered after `delay_secs` (0 to 900).
    fn send_check(
        &self,
        check: &Check,
        delay_secs: u64,
    ) -> impl Future<Output = Result<(), IoError>> + Send;
}
