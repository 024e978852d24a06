//! # hookvault-localstack
//!
//! Starts hookvault's local stack from the tools folder, for the demo (`hookvault-dev`)
//! and the end-to-end tests (`tests/it`): moto server for SQS, S3 and Secrets Manager
//! (with `RotateSecret` running a local rotation Lambda), the edge Worker in the real
//! workerd runtime (also behind a stand-in Cloudflare secrets API), the Lambdas under
//! `cargo lambda watch`, the SQS poller, and the stand-in provider. Every process is
//! killed when its handle is dropped.
//!
//! Nothing here installs anything: `scripts/test.sh` and `scripts/demo.sh` install the
//! tools and build the edge first; a missing piece is reported with that hint.
#![deny(clippy::all)]
#![warn(missing_docs)]

pub mod api;
pub mod archiver_bench;
pub mod claim_check_bench;
pub mod cloudflare;
pub mod drill;
pub mod edge_bench;
pub mod fault_proxy;
pub mod lambda;
pub mod latency_bench;
pub mod live;
pub mod moto;
pub mod operator;
pub mod paths;
pub mod poller;
pub mod process;
pub mod provider;
pub mod rotation;
pub mod s3;
pub mod soak;
pub mod sqs;
pub mod sqs_sink;
pub mod stack;
pub mod start_bench;
pub mod workerd;

/// Why the stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A tool or build output is missing.
    #[error("{what} not found at {path}: run scripts/test.sh (or scripts/demo.sh), which installs the tools and builds the edge")]
    Missing {
        /// What is missing.
        what: &'static str,
        /// Where it was looked for.
        path: String,
    },
    /// A process did not start or did not become ready.
    #[error("{0}")]
    Start(String),
    /// File system trouble.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
