//! Why a rotation step failed. Every message names the secret, the version and the step's
//! subject; none carries a secret value (the serde messages that could quote one are
//! reduced to their position).

use hookvault_aws::http::HttpError;

/// A rotation step or the schedule failed.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// The event is neither a rotation step nor a scheduled event.
    #[error("unrecognised event: expected a Secrets Manager rotation event (SecretId, ClientRequestToken, Step) or an EventBridge scheduled event")]
    UnknownEvent,
    /// `Step` is not one of the four.
    #[error(
        "unknown rotation step {0:?}: expected createSecret, setSecret, testSecret or finishSecret"
    )]
    UnknownStep(String),
    /// A required setting is missing.
    #[error(transparent)]
    Config(#[from] hookvault_aws::env::EnvError),
    /// Rotation is not enabled on the secret.
    #[error("rotation is not enabled for secret {0}")]
    NotEnabled(String),
    /// The token is not a version of the secret.
    #[error("secret {secret}: version {token} has no stage for rotation")]
    UnknownToken {
        /// The secret.
        secret: String,
        /// The token.
        token: String,
    },
    /// The token's version is neither current nor pending.
    #[error("secret {secret}: version {token} is not AWSPENDING")]
    NotPending {
        /// The secret.
        secret: String,
        /// The token.
        token: String,
    },
    /// A version the step needs has no value.
    #[error("secret {secret}: no {what} value")]
    Missing {
        /// The secret.
        secret: String,
        /// `AWSCURRENT`, the pending version, …
        what: String,
    },
    /// A value is not a managed secret of the expected kind.
    #[error("secret {secret} ({what}): {reason}")]
    BadValue {
        /// The secret.
        secret: String,
        /// Which version.
        what: String,
        /// What is wrong (never the value).
        reason: String,
    },
    /// A Secrets Manager call failed.
    #[error("Secrets Manager {op} on {secret} failed: {message}")]
    Aws {
        /// The operation.
        op: &'static str,
        /// The secret.
        secret: String,
        /// What Secrets Manager said.
        message: String,
    },
    /// A secret read through the cache failed.
    #[error(transparent)]
    Secret(#[from] hookvault_aws::secrets::SecretError),
    /// An API (provider, Cloudflare, edge) did not answer.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// An API answered with an error.
    #[error("{call} answered HTTP {status}{detail}")]
    Refused {
        /// The call.
        call: String,
        /// The status.
        status: u16,
        /// `: code` from the answer, if it says.
        detail: String,
    },
    /// An API answered 2xx with a body we cannot use.
    #[error("{call}: unexpected answer ({reason})")]
    BadAnswer {
        /// The call.
        call: String,
        /// What is wrong.
        reason: String,
    },
    /// The edge kept refusing the new secret.
    #[error("the edge did not accept key {key_id} within {secs} s (last answer: {last})")]
    NotPropagated {
        /// The key's id.
        key_id: String,
        /// How long we waited.
        secs: u64,
        /// The last probe result.
        last: String,
    },
    /// `setSecret` did not see the edge converge on the new key: the provider was not
    /// told about it, and still signs with the current key.
    #[error("the edge did not accept key {key_id} on {probes} consecutive probes across {soak_secs} s before {limit} (best streak {best_streak} of {probes_sent} probes, after {waited_secs} s; last answer: {last}); the provider still signs with the current key")]
    NotConverged {
        /// The key's id.
        key_id: String,
        /// `EDGE_CONVERGENCE_PROBES`.
        probes: u32,
        /// `EDGE_SOAK_SECS`.
        soak_secs: u64,
        /// The longest run of accepting probes seen.
        best_streak: u32,
        /// Probes sent.
        probes_sent: u32,
        /// Seconds spent.
        waited_secs: u64,
        /// What stopped the wait.
        limit: String,
        /// The last probe's answer.
        last: String,
    },
    /// The provider kept refusing a new API key for the whole activation window.
    #[error("the provider still refused the pending key {key_id} ({last}) after {waited_secs} s of retries: new keys may take longer than API_KEY_ACTIVATION_SECS ({activation_secs} s) to become valid; raise it, or run the rotation again")]
    NotActivated {
        /// The key's id at the provider.
        key_id: String,
        /// Seconds spent retrying.
        waited_secs: u64,
        /// `API_KEY_ACTIVATION_SECS`.
        activation_secs: u64,
        /// The last refusal.
        last: String,
    },
    /// The edge Worker is in a gradual deployment: its secrets are not changed until one
    /// version serves all traffic.
    #[error("the Worker {worker} is in a gradual deployment ({split}): the rotator changes its secrets only while one version serves 100 %; finish or roll back the deployment (wrangler versions deploy), then run the rotation again")]
    GradualDeployment {
        /// The Worker's script name.
        worker: String,
        /// The versions and their percentages.
        split: String,
    },
    /// The secret's kind is not rotated in the provider's key mode: in `general` mode the
    /// provider signs webhooks with the API key, so the edge's ring follows the provider
    /// API key secret and a webhook-signing secret is not used.
    #[error("secret {secret} is a {kind} secret, which is not rotated in {mode} key mode ({variable}={mode}): {why}")]
    KeyMode {
        /// The secret.
        secret: String,
        /// Its kind.
        kind: &'static str,
        /// The key mode.
        mode: &'static str,
        /// The setting's name.
        variable: String,
        /// What to do instead.
        why: &'static str,
    },
    /// The schedule found rotations stuck.
    #[error("{0}")]
    Stuck(String),
}

impl RotationError {
    /// A `BadValue` for a serde error, keeping only its category and position.
    pub fn bad_json(secret: &str, what: &str, e: &serde_json::Error) -> Self {
        RotationError::BadValue {
            secret: secret.to_owned(),
            what: what.to_owned(),
            reason: format!(
                "not a hookvault managed secret ({:?} error at line {}, column {}); expected {{\"kind\":\"webhook-signing\"|\"provider-api-key\",…}}",
                e.classify(),
                e.line(),
                e.column()
            ),
        }
    }

    /// A `Refused` from an API answer, with its error code if the body names one.
    pub fn refused(call: &str, answer: &hookvault_aws::http::Answer) -> Self {
        let code = answer.json().and_then(|v| {
            let c = v
                .get("error")
                .and_then(|e| {
                    e.as_str()
                        .or_else(|| e.get("code").and_then(|c| c.as_str()))
                })
                .or_else(|| v.get("error_id").and_then(|c| c.as_str()))
                .or_else(|| {
                    v.get("errors")
                        .and_then(|e| e.get(0))
                        .and_then(|e| e.get("message"))
                        .and_then(|m| m.as_str())
                })?;
            // A code or a short message, never a long echo.
            Some(c.chars().take(120).collect::<String>())
        });
        RotationError::Refused {
            call: call.to_owned(),
            status: answer.status,
            detail: code.map(|c| format!(": {c}")).unwrap_or_default(),
        }
    }
}
