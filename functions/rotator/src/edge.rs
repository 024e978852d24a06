//! The edge: where its key ring is written ([`crate::cloudflare`]) and how the running
//! edge is checked ([`crate::probe`]).
//!
//! **Why Workers secrets, not KV.** The edge already reads its key ring from the Worker
//! secret `WEBHOOK_SECRETS`; a new version of the Worker with the secret changed starts
//! every isolate with the new ring, and the request path stays free of a KV read. KV is
//! eventually consistent (a changed value can take up to 60 s to reach a location),
//! which a rotation would have to wait out anyway, and it would add a binding and a read
//! per request. Either way the rotator does not trust propagation: it probes the edge
//! until it has converged on the new key before telling the provider to use it.

use std::future::Future;

use hookvault_core::keyring::KeySpec;

use crate::error::RotationError;
use crate::Deadline;

pub use crate::cloudflare::CloudflareSecrets;

/// The Worker secret holding the key ring.
pub const KEY_RING_SECRET: &str = "WEBHOOK_SECRETS";

/// The version of the Worker that serves the new key ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedVersion {
    /// The new version's id.
    pub version_id: String,
    /// The version that was serving before, whose code and other bindings it carries.
    pub based_on: String,
    /// The deployment that put it at 100 %.
    pub deployment_id: String,
}

/// Where the edge's key ring is written.
pub trait EdgeSecrets {
    /// Replaces the edge's key ring with `ring` (newest first) so that the code serving
    /// afterwards is the code that served before; retries before `deadline`. Returns the
    /// version deployed.
    fn put_key_ring(
        &self,
        ring: &[KeySpec],
        deadline: Deadline,
    ) -> impl Future<Output = Result<DeployedVersion, RotationError>> + Send;

    /// A read-only check that the key ring could be written now: the API accepts the
    /// token and names the Worker, and no gradual deployment is in progress. Returns the
    /// version serving.
    fn check_access(
        &self,
        deadline: Deadline,
    ) -> impl Future<Output = Result<String, RotationError>> + Send;
}
