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
//! | `{PROVIDER}_KEY_MODE` (`SKYTELLS_KEY_MODE`) | `general` for `skytells`, `enterprise` otherwise | what the provider signs webhooks with ([`KeyMode`]): `general`, the API key, so the edge's ring is fed from the provider API key secret; `enterprise`, a webhook secret |
//! | `EDGE_PROPAGATION_SECS` | 30 | how long `setSecret` waits for the edge to accept the new secret at all |
//! | `EDGE_CONVERGENCE_PROBES` | 5 | consecutive probes (fresh connections) that must accept the new secret before the provider is told |
//! | `EDGE_SOAK_SECS` | 30 | the least time from the first to the last of those probes (0: no soak) |
//! | `API_KEY_ACTIVATION_SECS` | 60 | how long `testSecret` retries a new API key the provider still refuses (401/403) |
//! | `PROVIDER_API_URL` | `https://api.skytells.ai` | the provider's API |
//! | `PROVIDER_API_KEY_SECRET_ID` | — (webhook secrets) | the provider API key secret, used to register the new webhook secret |
//! | `PROVIDER_KEYS_PATH` | `/v1/api-keys` | mint (`POST`), revoke (`DELETE …/{id}`) |
//! | `PROVIDER_WEBHOOK_SECRET_PATH` | `/v1/webhooks/secret` | register the webhook signing secret (`PUT`) |
//! | `PROVIDER_AUTH_CHECK_PATH` | `/v1/models` | a cheap authenticated `GET` that proves a key works |
//! | `WEBHOOK_GRACE_SECS` | 259200 (72 h) | how long a retired webhook signing key stays accepted after `finishSecret`: the old webhook secret (`enterprise`), the old API key (`general`); see docs/rotator.md for what the default rests on |
//! | `API_KEY_GRACE_SECS` | 3600 | the earliest a key is revoked, counted from when it stopped being current; must exceed the api function's `API_KEY_CACHE_TTL_SECS` |
//! | `MANAGED_SECRET_IDS` | empty | comma-separated secrets the schedule looks after |
//! | `ROTATION_INTERVAL_DAYS` | 90 | the schedule starts a rotation once the last is this old (0: at every run, to accelerate the local stack) |
//! | `ROTATION_STUCK_AFTER_SECS` | 3600 | an `AWSPENDING` version older than this (and not current) is reported as stuck |
//! | `HTTP_TIMEOUT_MS` | 10000 | per attempt, for the provider, Cloudflare and the edge |
//!
//! The edge settings are checked when a key ring is written: when a webhook secret is
//! rotated, and in `general` key mode when the API key is, so a rotator that manages
//! only API keys in `enterprise` mode needs none of them.

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

/// What the provider signs its webhooks with, per provider (`{PROVIDER}_KEY_MODE`).
///
/// Skytells' TypeScript SDK (`Skytells/ts-sdk`, `src/webhooks.ts`,
/// `verifySkytellsWebhookSignature`) verifies `x-skytells-signature` as HMAC-SHA256 of the
/// raw body keyed by the account's **API key** (`sk-…`, the `x-api-key` value) in its
/// default `general` mode (`mode: options.mode ?? 'general'`), and by a separate dashboard
/// webhook secret only in `enterprise` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// Webhooks are signed with the provider API key: the edge's ring is fed from the
    /// provider API key secret, and an API-key rotation is also a webhook-key rotation.
    General,
    /// Webhooks are signed with a webhook secret of their own (the `webhook-signing`
    /// secret), rotated on its own.
    Enterprise,
}

impl KeyMode {
    /// The mode's name, as the setting spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyMode::General => "general",
            KeyMode::Enterprise => "enterprise",
        }
    }

    /// The variable that sets it for `provider`: `SKYTELLS_KEY_MODE` for `skytells`.
    pub fn variable(provider: &str) -> String {
        let name: String = provider
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("{name}_KEY_MODE")
    }

    /// The default for `provider`: `general` for Skytells (its SDK's default), `enterprise`
    /// for any other provider, whose webhooks are signed with a secret of their own.
    pub fn default_for(provider: &str) -> Self {
        if provider == Scheme::Skytells.name() {
            KeyMode::General
        } else {
            KeyMode::Enterprise
        }
    }

    /// Reads `{PROVIDER}_KEY_MODE` for `provider`.
    pub fn from_env(provider: &str) -> Result<Self, EnvError> {
        let name = Self::variable(provider);
        match env::optional(&name).as_deref().map(str::trim) {
            None => Ok(Self::default_for(provider)),
            Some(v) if v.eq_ignore_ascii_case("general") => Ok(KeyMode::General),
            Some(v) if v.eq_ignore_ascii_case("enterprise") => Ok(KeyMode::Enterprise),
            Some(_) => Err(EnvError::Invalid {
                name,
                expected: "general or enterprise",
            }),
        }
    }
}

impl std::fmt::Display for KeyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// What that provider signs webhooks with (`{PROVIDER}_KEY_MODE`).
    pub key_mode: KeyMode,
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
    /// How long a retired webhook signing key (the old webhook secret, or in `general`
    /// mode the old API key) stays in the edge's ring after `finishSecret`, seconds.
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
        let key_mode = KeyMode::from_env(&edge_provider)?;
        Ok(RotatorConfig {
            cloudflare,
            edge_url: env::optional("EDGE_URL").map(|u| u.trim_end_matches('/').to_owned()),
            edge_provider,
            key_mode,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_mode_is_one_variable_per_provider_and_general_for_skytells() {
        assert_eq!(KeyMode::variable("skytells"), "SKYTELLS_KEY_MODE");
        assert_eq!(KeyMode::variable("my-ai"), "MY_AI_KEY_MODE");
        // The SDK's default mode is general; other providers sign with a secret.
        assert_eq!(KeyMode::default_for("skytells"), KeyMode::General);
        assert_eq!(KeyMode::default_for("github"), KeyMode::Enterprise);
        // Unset, set, and refused (the variable is unique to this test).
        let p = "hv-test-provider";
        assert_eq!(KeyMode::from_env(p).unwrap(), KeyMode::Enterprise);
        std::env::set_var("HV_TEST_PROVIDER_KEY_MODE", "General");
        assert_eq!(KeyMode::from_env(p).unwrap(), KeyMode::General);
        std::env::set_var("HV_TEST_PROVIDER_KEY_MODE", "both");
        let e = KeyMode::from_env(p).unwrap_err().to_string();
        assert!(
            e.contains("HV_TEST_PROVIDER_KEY_MODE") && e.contains("general or enterprise"),
            "{e}"
        );
        std::env::remove_var("HV_TEST_PROVIDER_KEY_MODE");
    }
}
