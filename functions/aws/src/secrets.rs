//! A Secrets Manager cache: a secret's `AWSCURRENT` value kept for a TTL, so a Lambda
//! reads it once per TTL, not once per request. [`SecretCache::refresh`] rereads at once
//! (after a 401: the key was rotated under us).
//!
//! The value is always read with `VersionStage = AWSCURRENT`, never left to the default:
//! the stage is what rotation moves, and some emulators return a stale version otherwise.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// A secret's value. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue {
    value: String,
    version_id: Option<String>,
}

impl SecretValue {
    /// The value.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The version id it was read from.
    pub fn version_id(&self) -> Option<&str> {
        self.version_id.as_deref()
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("version_id", &self.version_id)
            .finish_non_exhaustive()
    }
}

/// Why a secret could not be read. Names the secret, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No such secret, or no `AWSCURRENT` version.
    #[error("secret {0:?} not found")]
    NotFound(String),
    /// The secret is binary, not a string.
    #[error("secret {0:?} has no string value")]
    NotText(String),
    /// Secrets Manager failed.
    #[error("reading secret {id:?} failed: {message}")]
    Aws {
        /// The secret.
        id: String,
        /// What Secrets Manager said.
        message: String,
    },
}

/// Cached secrets with a TTL.
#[derive(Debug)]
pub struct SecretCache {
    client: aws_sdk_secretsmanager::Client,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<SecretValue>)>>,
}

impl SecretCache {
    /// A cache that keeps each value for `ttl`.
    pub fn new(client: aws_sdk_secretsmanager::Client, ttl: Duration) -> Self {
        SecretCache {
            client,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The secret's `AWSCURRENT` value, from the cache while it is younger than the TTL.
    pub async fn get(&self, id: &str) -> Result<Arc<SecretValue>, SecretError> {
        if let Some((at, v)) = self.entries.lock().await.get(id) {
            if at.elapsed() < self.ttl {
                return Ok(Arc::clone(v));
            }
        }
        self.refresh(id).await
    }

    /// Reads the secret now and caches it.
    pub async fn refresh(&self, id: &str) -> Result<Arc<SecretValue>, SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(s) if s.is_resource_not_found_exception() => {
                    SecretError::NotFound(id.to_owned())
                }
                _ => SecretError::Aws {
                    id: id.to_owned(),
                    message: crate::sdk_error::short(&e),
                },
            })?;
        let value = Arc::new(SecretValue {
            value: out
                .secret_string
                .ok_or_else(|| SecretError::NotText(id.to_owned()))?,
            version_id: out.version_id,
        });
        self.entries
            .lock()
            .await
            .insert(id.to_owned(), (Instant::now(), Arc::clone(&value)));
        Ok(value)
    }

    /// Forgets a cached value.
    pub async fn invalidate(&self, id: &str) {
        self.entries.lock().await.remove(id);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_never_print() {
        let v = super::SecretValue {
            value: "sk-live-123".into(),
            version_id: Some("v1".into()),
        };
        assert!(!format!("{v:?}").contains("sk-live"));
    }
}
