//! The rotator's settings, from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CLOUDFLARE_API_URL` | `https://api.cloudflare.com/client/v4` | Cloudflare's REST API |
//! | `CLOUDFLARE_ACCOUNT_ID` | — (webhook secrets) | the account of the edge Worker |
//! | `CLOUDFLARE_WORKER_NAME` | `hookvault-edge` | the edge Worker's script name |
//! | `CLOUDFLARE_TOKEN_SECRET_ID` | — (webhook secrets) | the secret holding a Cloudflare API token with *Workers Scripts: Edit* |
//! | `EDGE_URL` | — (webhook secrets) | the edge's base URL, for its probe route |
//! | `EDGE_PROVIDER` | `skytells` | the provider whose key ring is rotated (its scheme signs the probe) |
//! | `EDGE_PROPAGATION_SECS` | 30 | how long `setSecret` waits for the edge to accept the new secret at all |
//! | `EDGE_CONVERGENCE_PROBES` | 5 | consecutive probes (fresh connections) that must accept the new secret before the provider is told |
//! | `EDGE_SOAK_SECS` | 30 | the least time from the first to the last of those probes (0: no soak) |
//! | `API_KEY_ACTIVATION_SECS` | 60 | how long `testSecret` retries a new API key the provider still refuses (401/403) |
//! | `PROVIDER_API_URL` | `https://api.skytells.ai` | the provider's API |
//! | `PROVIDER_API_KEY_SECRET_ID` | — (webhook secrets) | the provider API key secret, used to register the new webhook secret |
//! | `PROVIDER_KEYS_PATH` | `/v1/api-keys` | mint (`POST`), revoke (`DELETE …/{id}`) |
//! | `PROVIDER_WEBHOOK_SECRET_PATH` | `/v1/webhooks/secret` | register the webhook signing secret (`PUT`) |
//! | `PROVIDER_AUTH_CHECK_PATH` | `/v1/models` | a cheap authenticated `GET` that proves a key works |
//! | `WEBHOOK_GRACE_SECS` | 259200 (72 h) | how long the old webhook secret stays accepted after `finishSecret` (the provider's retry window) |
//! | `API_KEY_GRACE_SECS` | 3600 | the earliest a key is revoked, counted from when it stopped being current; must exceed the api function's `API_KEY_CACHE_TTL_SECS` |
//! | `MANAGED_SECRET_IDS` | empty | comma-separated secrets the schedule looks after |
//! | `ROTATION_INTERVAL_DAYS` | 90 | the schedule starts a rotation once the last is this old (0: at every run, to accelerate the local stack) |
//! | `ROTATION_STUCK_AFTER_SECS` | 3600 | an `AWSPENDING` version older than this (and not current) is reported as stuck |
//! | `HTTP_TIMEOUT_MS` | 10000 | per attempt, for the provider, Cloudflare and the edge |
//!
//! The webhook-only settings are checked when a webhook secret is rotated, so a rotator
//! that manages only API keys needs none of them.

use std::time::Duration;

use hookvault_aws::env::{self, EnvError};
use hookvault_core::scheme::Scheme;

/// Where the edge Worker lives and how to reach Cloudflare.
#[derive(Debug, Clone)]
pub struct CloudflareConfig {
    /// Cloudflare's REST API.
    pub api_url: String,
    /// The account.
    pub account_id: String,
    /// The Worker's script name.
    pub worker_name: String,
    /// The secret holding the API token.
    pub token_secret_id: String,
}

/// The provider's endpoints.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Base URL.
    pub api_url: String,
    /// Key collection path.
    pub keys_path: String,
    /// Webhook secret path.
    pub webhook_secret_path: String,
    /// Authenticated no-op path.
    pub auth_check_path: String,
}

/// The rotator's settings.
#[derive(Debug, Clone)]
pub struct RotatorConfig {
    /// Cloudflare, when webhook secrets are rotated.
    pub cloudflare: Option<CloudflareConfig>,
    /// The edge's base URL, when webhook secrets are rotated.
    pub edge_url: Option<String>,
    /// The provider name on the edge (its probe route and scheme).
    pub edge_provider: String,
    /// How long `setSecret` waits for the edge to accept the new secret at all.
    pub edge_propagation: Duration,
    /// Consecutive accepting probes required before the provider is told.
    pub convergence_probes: u32,
    /// The least time the accepting probes must span.
    pub soak: Duration,
    /// How long `testSecret` retries a new API key refused with 401/403.
    pub api_key_activation: Duration,
    /// The provider.
    pub provider: ProviderConfig,
    /// The provider API key secret (for webhook secret registration).
    pub provider_api_key_secret_id: Option<String>,
    /// Webhook grace, seconds.
    pub webhook_grace_secs: i64,
    /// API key grace, seconds.
    pub api_key_grace_secs: i64,
    /// Secrets the schedule looks after.
    pub managed_secret_ids: Vec<String>,
    /// Days between rotations.
    pub rotation_interval_days: i64,
    /// Age after which a pending version is stuck, seconds.
    pub stuck_after_secs: i64,
    /// Per-attempt HTTP timeout.
    pub http_timeout: Duration,
}

impl RotatorConfig {
    /// Reads the settings.
    pub fn from_env() -> Result<Self, EnvError> {
        let cloudflare = match (
            env::optional("CLOUDFLARE_ACCOUNT_ID"),
            env::optional("CLOUDFLARE_TOKEN_SECRET_ID"),
        ) {
            (Some(account_id), Some(token_secret_id)) => Some(CloudflareConfig {
                api_url: env::optional("CLOUDFLARE_API_URL")
                    .unwrap_or_else(|| "https://api.cloudflare.com/client/v4".into()),
                account_id,
                worker_name: env::optional("CLOUDFLARE_WORKER_NAME")
                    .unwrap_or_else(|| "hookvault-edge".into()),
                token_secret_id,
            }),
            (None, None) => None,
            (None, Some(_)) => return Err(EnvError::Missing("CLOUDFLARE_ACCOUNT_ID".into())),
            (Some(_), None) => return Err(EnvError::Missing("CLOUDFLARE_TOKEN_SECRET_ID".into())),
        };
        let edge_provider =
            env::optional("EDGE_PROVIDER").unwrap_or_else(|| Scheme::Skytells.name().into());
        let path = |name: &str, default: &str| {
            let p = env::optional(name).unwrap_or_else(|| default.into());
            if p.starts_with('/') {
                Ok(p)
            } else {
                Err(EnvError::Invalid {
                    name: name.into(),
                    expected: "a path starting with /",
                })
            }
        };
        Ok(RotatorConfig {
            cloudflare,
            edge_url: env::optional("EDGE_URL").map(|u| u.trim_end_matches('/').to_owned()),
            edge_provider,
            edge_propagation: Duration::from_secs(env::positive("EDGE_PROPAGATION_SECS", 30u64)?),
            convergence_probes: env::positive("EDGE_CONVERGENCE_PROBES", 5u32)?,
            soak: Duration::from_secs(env::number("EDGE_SOAK_SECS", 30u64)?),
            api_key_activation: Duration::from_secs(env::number("API_KEY_ACTIVATION_SECS", 60u64)?),
            provider: ProviderConfig {
                api_url: env::optional("PROVIDER_API_URL")
                    .unwrap_or_else(|| "https://api.skytells.ai".into())
                    .trim_end_matches('/')
                    .to_owned(),
                keys_path: path("PROVIDER_KEYS_PATH", "/v1/api-keys")?,
                webhook_secret_path: path("PROVIDER_WEBHOOK_SECRET_PATH", "/v1/webhooks/secret")?,
                auth_check_path: path("PROVIDER_AUTH_CHECK_PATH", "/v1/models")?,
            },
            provider_api_key_secret_id: env::optional("PROVIDER_API_KEY_SECRET_ID"),
            webhook_grace_secs: env::positive("WEBHOOK_GRACE_SECS", 72 * 3600i64)?,
            api_key_grace_secs: env::positive("API_KEY_GRACE_SECS", 3600i64)?,
            managed_secret_ids: env::optional("MANAGED_SECRET_IDS")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            rotation_interval_days: match env::number("ROTATION_INTERVAL_DAYS", 90i64)? {
                d if d >= 0 => d,
                _ => {
                    return Err(EnvError::Invalid {
                        name: "ROTATION_INTERVAL_DAYS".into(),
                        expected: "a number of days, 0 or more",
                    })
                }
            },
            stuck_after_secs: env::positive("ROTATION_STUCK_AFTER_SECS", 3600i64)?,
            http_timeout: Duration::from_millis(env::positive("HTTP_TIMEOUT_MS", 10_000u64)?),
        })
    }
}
