//! # hookvault-core
//!
//! Everything hookvault's deployables share, with no I/O and no async runtime, so that it
//! builds for `wasm32-unknown-unknown` (the edge Worker) and native (the Lambdas, the CLI).
//! Time is always passed in as Unix seconds: `SystemTime::now()` panics inside a Worker.
//!
//! | module | what it holds |
//! |---|---|
//! | [`scheme`] | the four signature schemes (Skytells, GitHub, Standard Webhooks, Stripe): sign and verify, in one step or in two (`prepare`, then `Pending::offer` of MACs computed elsewhere, e.g. by WebCrypto) |
//! | [`keyring`] | several active secrets at once (current, pending, previous with a not-after time) |
//! | [`headers`] | case-insensitive header lookup over any list of name/value pairs |
//! | [`event`] | the provider's webhook payload (the Prediction object, `output` of any shape), tolerant of unknown fields, a BOM and surrounding whitespace |
//! | [`envelope`] | the versioned message the edge puts on the queue: the signed bytes exactly (inline or by claim check) and the evidence |
//! | [`output`] | the files in a prediction's `output`, whatever its shape |
//! | [`provider_error`] | both provider error formats mapped to one error type |
//! | [`retry`] | exponential back-off with jitter, `Retry-After` in both forms |
//! | [`state`] | one truth per prediction: the first terminal state wins, non-terminal states only move forward, a status reached both signed and reconciled is one |
//! | [`reconcile`] | the check message, its back-off and the provider's list page: finding predictions whose webhook never came (issue 23) |
//! | [`archive`] | the S3 key layout, safe against hostile ids and URLs |
//! | [`url_guard`] | the SSRF guard every download goes through |
//! | [`trace`] | the trace id one event carries from the edge to the archive (W3C Trace Context) |
//! | [`time`] | calendar arithmetic on Unix seconds (RFC 3339, date and hour labels) |
#![deny(clippy::all)]
#![warn(missing_docs)]

pub mod archive;
pub mod corpus;
pub mod envelope;
pub mod event;
pub mod headers;
pub mod keyring;
pub mod output;
pub mod provider_error;
pub mod reconcile;
pub mod records;
pub mod retry;
pub mod scheme;
pub mod state;
pub mod time;
pub mod trace;
pub mod url_guard;

mod ct;

pub use headers::Headers;
pub use keyring::{Key, KeyRing, KeySlot};
pub use scheme::{Pending, Scheme, Verified, VerifyError, VerifyOptions};
