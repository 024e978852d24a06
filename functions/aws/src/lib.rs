//! # hookvault-aws
//!
//! What every hookvault Lambda needs from AWS, in one place:
//!
//! * [`env`]: required and optional settings from the environment, with precise errors;
//! * [`credentials`]: the credentials Lambda puts in the environment (no `aws-config`,
//!   whose default chain pulls in STS/SSO clients a Lambda never uses);
//! * [`clients`]: SDK clients that honour `AWS_ENDPOINT_URL` (the local stack: moto);
//! * [`logging`]: JSON tracing to stdout, as CloudWatch expects;
//! * `secrets` (feature `secretsmanager`): a Secrets Manager cache with a TTL.
#![deny(clippy::all)]
#![warn(missing_docs)]

pub mod clients;
pub mod credentials;
pub mod env;
pub mod logging;
#[cfg(feature = "secretsmanager")]
pub mod secrets;

pub use env::EnvError;
