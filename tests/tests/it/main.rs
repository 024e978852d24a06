//! End-to-end tests over the local stack: moto and the edge in workerd, for real.
//!
//! Run by `scripts/test.sh`, which installs the tools and builds the edge first.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod e2e_api;
mod e2e_archiver;
mod e2e_edge;
mod e2e_limits;
mod e2e_live;
mod e2e_lossless;
mod e2e_operations;
mod e2e_pipeline;
mod e2e_provider;
mod e2e_reconcile;
mod e2e_rotation;
mod e2e_rotation_platforms;
mod e2e_secrets;
mod e2e_soak;
mod e2e_spool;
mod e2e_sqs_rules;
mod utils;
