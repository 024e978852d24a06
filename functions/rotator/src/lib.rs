//! # hookvault-rotator
//!
//! Secrets Manager rotation for hookvault's two kinds of managed secret, chosen by the
//! `kind` field of the secret's JSON value ([`managed`]):
//!
//! * a **webhook signing secret**: the edge must accept the new secret before the
//!   provider signs with it, and keep accepting the old one for a grace period
//!   ([`webhook`]);
//! * a **provider API key**: minted through the provider's key API, tested, promoted,
//!   and the key two generations old revoked after a grace period ([`api_key`]).
//!
//! [`rotator::Rotator`] holds Secrets Manager, the edge and the provider, and what every
//! kind's steps share; [`steps`] checks each rotation event as AWS's protocol requires and
//! dispatches it;
//! [`schedule`] handles the EventBridge schedule (start due rotations, report stuck ones,
//! revoke keys whose grace has passed). Cloudflare and the provider sit behind the small
//! traits [`edge::EdgeSecrets`] and [`provider::ProviderKeys`]; [`probe`] proves what the
//! running edge accepts.
#![deny(clippy::all)]
#![warn(missing_docs)]

pub mod api_key;
pub mod cloudflare;
pub mod config;
pub mod configuration_test;
pub mod edge;
pub mod error;
pub mod event;
pub mod general;
pub mod managed;
pub mod probe;
pub mod provider;
pub mod rotator;
pub mod schedule;
pub mod steps;
pub mod store;
pub mod webhook;

pub use config::RotatorConfig;
pub use error::RotationError;
pub use rotator::Rotator;

pub use hookvault_core::time::unix_now;

/// When the invocation must have answered (less a margin); `None` for no limit. Retries
/// and waits stop before it.
pub type Deadline = Option<std::time::Instant>;
