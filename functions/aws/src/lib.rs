//! # hookvault-aws
//!
//! What every hookvault Lambda needs from AWS, in one place:
//!
//! * [`env`]: required and optional settings from the environment, with precise errors;
//! * [`credentials`]: the credentials Lambda puts in the environment (no `aws-config`,
//!   whose default chain pulls in STS/SSO clients a Lambda never uses);
//! * [`clients`]: SDK clients that honour `AWS_ENDPOINT_URL` (the local stack: moto);
//! * [`logging`]: JSON tracing to stdout, as CloudWatch expects;
//! * `secrets` (feature `secretsmanager`): a Secrets Manager cache with a TTL;
//! * `http` (feature `http`): API calls with the core's retry policy and a body cap.
#![deny(clippy::all)]
#![warn(missing_docs)]

pub mod clients;
pub mod credentials;
pub mod env;
#[cfg(feature = "http")]
pub mod http;
pub mod logging;
#[cfg(feature = "secretsmanager")]
pub mod secrets;

pub use env::EnvError;

/// A number in [0, 1) for a back-off's jitter (not for secrets: it comes from the
/// standard library's per-process hash keys).
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let h = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (h >> 11) as f64 / (1u64 << 53) as f64
}
