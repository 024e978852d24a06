//! # hookvault-drainer
//!
//! The drainer Lambda (issue 24, item 2). When SQS does not take a verified webhook's
//! envelope, the edge writes it to the spool, `spool/{provider}/{body_sha256}` in
//! `SPOOL_BUCKET` (create-only), and answers 202 (docs/edge.md, "The spool"). The drainer
//! brings each spooled envelope to the queue, so it reaches the archive as every other
//! event does:
//!
//! * **Triggers** ([`trigger`]): the spool's object-created events (EventBridge's "Object
//!   Created" as the template wires them, or an S3 notification), and a schedule (the
//!   template's `rate(1 minute)`) that lists `spool/` and drains every key: the backstop
//!   when an event was lost or its run failed.
//! * **Per object** ([`drain`]): `GetObject` (at most `SPOOL_MAX_BYTES`), the bytes must
//!   parse as an envelope, `SendMessage` exactly as the edge would ([`message`]: the same
//!   body, attributes and FIFO ids), and `DeleteObject` only after SQS accepted it. A failed
//!   send leaves the object for the next run; an object that is not a readable envelope is
//!   left in place with an error log and the metric `SpoolUnreadable`, never deleted.
//! * **Metrics**: `SpooledEvents` (one per event queued from the spool, with its event id and
//!   trace id; the template alarms on any), `SpoolUnreadable`.
//! * **Repeats are safe**: a send whose delete failed is sent again by the next run, and
//!   the archiver treats the second delivery as it treats any redelivery (content-addressed
//!   raw events, the state rule).
//!
//! I/O is behind [`store::Spool`] and [`store::Queue`], with the AWS SDK's
//! [`store::S3Spool`] and [`store::SqsQueue`]; the logic is tested with fakes.
#![deny(clippy::all)]
#![warn(missing_docs)]

pub mod config;
pub mod drain;
pub mod message;
pub mod store;
pub mod trigger;

pub use config::DrainerConfig;
pub use drain::{DrainError, Drainer, Outcome, Summary};
pub use trigger::Trigger;
