//! The provider's key management. The seed does not document these endpoints, so their
//! paths are settings ([`crate::config::ProviderConfig`]); the shapes are:
//!
//! | call | request | answer |
//! |---|---|---|
//! | mint | `POST {keys}` with `Idempotency-Key: {token}`, body `{"name": …}` | 200/201 `{"id": …, "key": …}`; the same key again for the same idempotency key |
//! | revoke | `DELETE {keys}/{id}` | 2xx, or 404 when already gone |
//! | webhook secret | `PUT {webhook_secret}` body `{"secret": …}` | 2xx |
//! | check | `GET {auth_check}` | 2xx when the key works |
//!
//! Every call authenticates with `x-api-key`, and every method takes the invocation's
//! deadline: retries stop before it (see [`hookvault_aws::http::send`]).

use std::future::Future;
use std::time::{Duration, Instant};

use hookvault_aws::http;
use hookvault_core::retry::RetryPolicy;

use crate::config::ProviderConfig;
use crate::error::RotationError;
use crate::Deadline;

/// A key the provider minted.
#[derive(Clone, PartialEq, Eq)]
pub struct MintedKey {
    /// The provider's id for it.
    pub id: String,
    /// The key.
    pub key: String,
}

impl std::fmt::Debug for MintedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The provider's key management, as the rotator needs it.
pub trait ProviderKeys {
    /// Mints a key, authenticated by `auth`; the same `idempotency_key` must return the
    /// same key (a retried `createSecret` must not mint twice).
    fn mint_key(
        &self,
        auth: &str,
        idempotency_key: &str,
        deadline: Deadline,
    ) -> impl Future<Output = Result<MintedKey, RotationError>> + Send;
    /// Revokes key `key_id`; an unknown key counts as revoked.
    fn revoke_key(
        &self,
        auth: &str,
        key_id: &str,
        deadline: Deadline,
    ) -> impl Future<Output = Result<(), RotationError>> + Send;
    /// Makes `secret` the secret the provider signs webhooks with.
    fn set_webhook_secret(
        &self,
        auth: &str,
        secret: &str,
        deadline: Deadline,
    ) -> impl Future<Output = Result<(), RotationError>> + Send;
    /// A cheap authenticated call: `Ok` when `key` works. A key the provider refuses
    /// (401/403) is asked again with back-off for up to `activation` (zero: once), for a
    /// key just minted that is not valid yet; the last refusal is returned as
    /// [`RotationError::Refused`].
    fn check_key(
        &self,
        key: &str,
        activation: Duration,
        deadline: Deadline,
    ) -> impl Future<Output = Result<(), RotationError>> + Send;
}

/// Retries for a key that may not be valid yet: the provider's own retryable statuses
/// (429, 5xx) plus 401 and 403, every 1, 2, 4, 8, 8, … s (±25 %), until the caller's
/// limit, then one last try at the limit.
fn activation_policy() -> RetryPolicy {
    let mut retryable = RetryPolicy::provider_api().retryable;
    retryable.extend([401, 403]);
    RetryPolicy {
        max_attempts: u32::MAX,
        max_delay: Duration::from_secs(8),
        retryable,
        ..RetryPolicy::provider_api()
    }
}

/// The provider over HTTP.
#[derive(Debug, Clone)]
pub struct HttpProvider {
    http: reqwest::Client,
    cfg: ProviderConfig,
}

impl HttpProvider {
    /// A client for `cfg`.
    pub fn new(cfg: ProviderConfig, timeout: Duration) -> Self {
        HttpProvider {
            http: http::client(timeout),
            cfg,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.cfg.api_url)
    }

    /// One attempt, no retry.
    async fn call_once(
        &self,
        what: &str,
        make: &impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<http::Answer, RotationError> {
        let once = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::provider_api()
        };
        Ok(http::send(&once, None, what, make).await?)
    }

    async fn call(
        &self,
        what: &str,
        deadline: Deadline,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<http::Answer, RotationError> {
        Ok(http::send(&RetryPolicy::provider_api(), deadline, what, make).await?)
    }
}

impl ProviderKeys for HttpProvider {
    async fn mint_key(
        &self,
        auth: &str,
        idempotency_key: &str,
        deadline: Deadline,
    ) -> Result<MintedKey, RotationError> {
        let url = self.url(&self.cfg.keys_path);
        let body = serde_json::json!({"name": format!("hookvault-{idempotency_key}")}).to_string();
        let call = "provider: mint API key";
        let a = self
            .call(call, deadline, || {
                self.http
                    .post(&url)
                    .header("x-api-key", auth)
                    .header("idempotency-key", idempotency_key)
                    .header("content-type", "application/json")
                    .body(body.clone())
            })
            .await?;
        if !a.is_success() {
            return Err(RotationError::refused(call, &a));
        }
        let v = a.json().unwrap_or_default();
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).filter(|s| !s.is_empty());
        match (field("id"), field("key")) {
            (Some(id), Some(key)) => Ok(MintedKey {
                id: id.to_owned(),
                key: key.to_owned(),
            }),
            _ => Err(RotationError::BadAnswer {
                call: call.into(),
                reason: "no \"id\" and \"key\" in the answer".into(),
            }),
        }
    }

    async fn revoke_key(
        &self,
        auth: &str,
        key_id: &str,
        deadline: Deadline,
    ) -> Result<(), RotationError> {
        let url = format!("{}/{key_id}", self.url(&self.cfg.keys_path));
        let call = format!("provider: revoke API key {key_id}");
        let a = self
            .call(&call, deadline, || {
                self.http.delete(&url).header("x-api-key", auth)
            })
            .await?;
        if a.is_success() || a.status == 404 {
            Ok(())
        } else {
            Err(RotationError::refused(&call, &a))
        }
    }

    async fn set_webhook_secret(
        &self,
        auth: &str,
        secret: &str,
        deadline: Deadline,
    ) -> Result<(), RotationError> {
        let url = self.url(&self.cfg.webhook_secret_path);
        let body = serde_json::json!({ "secret": secret }).to_string();
        let call = "provider: set webhook secret";
        let a = self
            .call(call, deadline, || {
                self.http
                    .put(&url)
                    .header("x-api-key", auth)
                    .header("content-type", "application/json")
                    .body(body.clone())
            })
            .await?;
        if a.is_success() {
            Ok(())
        } else {
            Err(RotationError::refused(call, &a))
        }
    }

    async fn check_key(
        &self,
        key: &str,
        activation: Duration,
        deadline: Deadline,
    ) -> Result<(), RotationError> {
        let url = self.url(&self.cfg.auth_check_path);
        let call = "provider: authenticated check";
        let make = || self.http.get(&url).header("x-api-key", key);
        let a = if activation.is_zero() {
            self.call(call, deadline, make).await?
        } else {
            let until = Instant::now() + activation;
            let until = deadline.map_or(until, |d| d.min(until));
            let a = http::send(&activation_policy(), Some(until), call, &make).await?;
            // The back-off stops when its next wait does not fit; the key gets one last
            // try at the end of the window, so the window is the one configured.
            let left = until.saturating_duration_since(Instant::now());
            if matches!(a.status, 401 | 403) && !left.is_zero() {
                tokio::time::sleep(left).await;
                self.call_once(call, &make).await?
            } else {
                a
            }
        };
        if a.is_success() {
            Ok(())
        } else {
            Err(RotationError::refused(call, &a))
        }
    }
}
