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
