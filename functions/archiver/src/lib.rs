//! # hookvault-archiver
//!
//! The archiver Lambda: for each SQS record (the edge's envelope),
//!
//! * `succeeded`: every output URL goes through the core's URL guard and is streamed from
//!   the HTTP response into S3 at `predictions/{id}/{index}{ext}` (multipart, parts of a
//!   bounded size, a small fixed number in flight, SHA-256 and size computed on the way,
//!   content type kept); then `predictions/{id}/manifest.json` is written **last**. A
//!   manifest that already exists means done: duplicates archive exactly once.
//! * `failed` / `cancelled`: `predictions/{id}/failure.json` with the provider's error.
//! * an expired link (403/404/410) or a refused URL: `failure.json`, not retried forever.
//! * an unreadable message: kept under `rejected/` and acknowledged.
//! * anything transient (CDN 5xx after retries, S3 down): the record is reported in
//!   `batchItemFailures`, so SQS redelivers only it (and the DLQ takes it after N tries).
#![deny(clippy::all)]
#![warn(missing_docs)]

pub mod config;
pub mod download;
pub mod handler;
pub mod upload;

pub use config::ArchiverConfig;
pub use handler::Archiver;
