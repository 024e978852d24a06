//! # hookvault-edge
//!
//! The Cloudflare Worker the provider talks to. It verifies the webhook's signature in
//! constant time against the key ring (current, pending and previous secrets), refuses
//! everything else with a precise status, and forwards each valid event to SQS with a
//! SigV4-signed `SendMessage`, answering 202 only once SQS has accepted it (retried within
//! the request's budget) or, when SQS has not, once the spool bucket has the envelope
//! (`spool/`, create-only, for a drainer to queue). Once a
//! signature verifies, the body is queued byte for byte whatever it is (the envelope
//! carries it as base64); a body too large for one message is first written to S3 with a
//! SigV4 `PutObject` (the claim check, [`s3`]) and the envelope points at it.
//!
//! The request logic is plain Rust, tested natively: [`route`], [`handler`], [`sqs`],
//! [`s3`], [`config`], [`trace`] and [`log`] do no I/O, and the request flow ([`flow`]:
//! verify, claim check, `SendMessage`, retries within the request's budget, the spool) is generic
//! over its I/O ([`io::Io`]), so the native tests run it with a fake runtime and a virtual
//! clock. The Worker glue (`worker_entry`, wasm32 only) is the runtime's side of that
//! interface: the request, WebCrypto, `fetch` with a timeout, timers, the log line.
//!
//! | route | answer |
//! |---|---|
//! | `POST /webhooks/{provider}` | 202 `{"status":"queued","event_id","message_id"}` once queued, `{"status":"spooled","event_id"}` once spooled; before verification 400/401/404/413, after it only 503 (S3 did not take a claim-checked body, or neither SQS nor the spool took the envelope); every answer carries the request's trace in `traceresponse` ([`trace`]) |
//! | `POST /_hookvault/probe[/{provider}]` | 204 if the signature verifies (nothing queued), with the matching key in `x-hookvault-key` |
//! | `GET /healthz` | 200 `{"ok":true}` |
//! | other paths / methods | 404 / 405 |
#![deny(clippy::all)]
#![warn(missing_docs)]

pub mod config;
pub mod flow;
pub mod handler;
pub mod io;
pub mod json_string;
pub mod log;
pub mod route;
pub mod s3;
pub mod sigv4;
pub mod sqs;
pub mod trace;

#[cfg(target_arch = "wasm32")]
mod one_call;
#[cfg(target_arch = "wasm32")]
mod webcrypto;
#[cfg(target_arch = "wasm32")]
mod worker_entry;

#[cfg(all(target_arch = "wasm32", feature = "test-hooks"))]
mod test_hooks;
