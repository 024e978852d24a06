//! # hookvault-archiver
//!
//! The archiver Lambda. Its rule: once a signature verified at the edge, the event is
//! kept byte for byte, whatever its bytes, shape or size. For each SQS record (the edge's
//! envelope, `hookvault-core`'s `Envelope`, version 2 or 1):
//!
//! 1. **The envelope** is read; an unreadable message (not an envelope, an unknown
//!    version, an inline body that does not match its SHA-256) is kept under
//!    `rejected/{message id}.json` with the reason and acknowledged.
//! 2. **The body** is inline, or a claim check: the edge wrote a body too large for SQS to
//!    `raw/{sha256}` first, and the archiver reads it back ([`raw_event`]), at most the
//!    envelope's `body_bytes` and never more than `EVENT_MAX_BYTES`, and checks its length
//!    and SHA-256. No such object, or other bytes: `rejected/` with the precise reason
//!    and an error log (it can never succeed); another S3 error: transient.
//! 3. **The raw event**, for every envelope, whatever the body is:
//!    `events/{provider}/{sha256}/body` (the exact bytes, content type the request's or
//!    `application/octet-stream`), then `events/{provider}/{sha256}/event.json` (the
//!    evidence: scheme, key, signature headers, digest; written last). Content
//!    addressed: a redelivery finds `event.json` and writes nothing.
//! 4. **The body is read as a prediction.** A body that is not one (a form-encoded GitHub
//!    delivery, other JSON, bytes that are not UTF-8), or whose id is not a safe folder
//!    name, is done: [`outcome::Outcome::EventKept`].
//! 5. **By status**:
//!    * `succeeded`: unless `predictions/{id}/manifest.json` exists (a duplicate or a
//!      redelivery: nothing more is done), `predictions/{id}/output.json` gets the
//!      `output` value verbatim, whatever its shape (a URL, lists, objects, nested lists,
//!      text, numbers); then every file in it, found by `hookvault_core::output::files`
//!      with its JSON Pointer: URLs go through the core's URL guard and are streamed from
//!      the HTTP response into S3 at `predictions/{id}/{index}{ext}` ([`download`],
//!      [`upload`]: multipart, parts of a bounded size, a small fixed number in flight,
//!      SHA-256 and size computed on the way, content type kept; only whole files: a 204
//!      or 206 is refused); `data:` URIs are decoded within `DOWNLOAD_MAX_BYTES`
//!      ([`data_uri`]) and stored with their media type. Then the manifest **last**, with
//!      `output_key` and `raw_event`. An output with no file (text only) is archived
//!      with an empty `outputs` list.
//!    * `failed` / `cancelled`: `predictions/{id}/failure.json` with the provider's error
//!      and `raw_event`.
//!    * an output that can never be stored (an expired link, a refused URL, too large,
//!      incomplete, an undecodable `data:` URI): `failure.json` with its index and
//!      pointer, not retried forever.
//!    * other statuses: nothing more.
//!
//! Anything transient (CDN 5xx after retries, a cut-off download, S3 down) reports the
//! record in `batchItemFailures`, so SQS redelivers only it (and the DLQ takes it after N
//! tries).
//!
//! Modules, imports pointing one way: [`handler`] (the steps) uses [`raw_event`],
//! `state`, [`event_log`], [`metrics`], [`download`], [`upload`] and [`data_uri`]; they
//! use [`outcome`] (what became of a record) and [`store`] (every S3 call, one error
//! mapping), which use nothing else of the crate but each other's error type.
#![deny(clippy::all)]
#![warn(missing_docs)]

pub mod config;
pub mod data_uri;
pub mod download;
pub mod event_log;
pub mod handler;
pub mod metrics;
pub mod notify;
pub mod outcome;
pub mod raw_event;
mod state;
pub mod store;
pub mod upload;
pub mod visibility;
pub mod window;

pub use config::ArchiverConfig;
pub use handler::Archiver;
