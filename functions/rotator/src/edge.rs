//! The edge: where its key ring is written (Cloudflare), and its probe route, which proves
//! the running edge accepts a key.
//!
//! **Why Workers secrets, not KV.** The edge already reads its key ring from the Worker
//! secret `WEBHOOK_SECRETS`; a secret update deploys a new version of the Worker at once,
//! every isolate starts with the new ring, and the request path stays free of a KV read.
//! KV is eventually consistent (a changed value can take up to 60 s to reach a location),
//! which a rotation would have to wait out anyway, and it would add a binding and a read
//! per request. Either way the rotator does not trust propagation: it probes the edge
//! until it accepts the new key before telling the provider to use it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookvault_aws::http::{self, Answer};
use hookvault_aws::secrets::SecretCache;
use hookvault_core::keyring::KeySpec;
use hookvault_core::retry::RetryPolicy;
use hookvault_core::scheme::SignParams;

use crate::config::CloudflareConfig;
use crate::error::RotationError;
use crate::managed::WebhookSecret;
use crate::Deadline;

/// The Worker secret holding the key ring.
pub const KEY_RING_SECRET: &str = "WEBHOOK_SECRETS";

/// Where the edge's key ring is written.
pub trait EdgeSecrets {
    /// Replaces the edge's key ring with `ring` (newest first), retrying before
    /// `deadline`.
    fn put_key_ring(
        &self,
        ring: &[KeySpec],
        deadline: Deadline,
    ) -> impl Future<Output = Result<(), RotationError>> + Send;
}

/// Cloudflare's REST API: `PUT /accounts/{account}/workers/scripts/{script}/secrets`.
#[derive(Debug, Clone)]
pub struct CloudflareSecrets {
    http: reqwest::Client,
    cfg: CloudflareConfig,
    tokens: Arc<SecretCache>,
}

impl CloudflareSecrets {
    /// A client; the API token is read from `cfg.token_secret_id` through `tokens`.
    pub fn new(cfg: CloudflareConfig, tokens: Arc<SecretCache>, timeout: Duration) -> Self {
        CloudflareSecrets {
            http: http::client(timeout),
            cfg,
            tokens,
        }
    }
}

impl EdgeSecrets for CloudflareSecrets {
    async fn put_key_ring(
        &self,
        ring: &[KeySpec],
        deadline: Deadline,
    ) -> Result<(), RotationError> {
        let token = self.tokens.get(&self.cfg.token_secret_id).await?;
        let url = format!(
            "{}/accounts/{}/workers/scripts/{}/secrets",
            self.cfg.api_url.trim_end_matches('/'),
            self.cfg.account_id,
            self.cfg.worker_name
        );
        let body = serde_json::json!({
            "name": KEY_RING_SECRET,
            "text": serde_json::to_string(ring).unwrap_or_default(),
            "type": "secret_text",
        })
        .to_string();
        let call = format!(
            "Cloudflare PUT secret {KEY_RING_SECRET} of {}",
            self.cfg.worker_name
        );
        let answer = http::send(&RetryPolicy::provider_api(), deadline, &call, || {
            self.http
                .put(&url)
                .bearer_auth(token.expose())
                .header("content-type", "application/json")
                .body(body.clone())
        })
        .await?;
        if answer.status == 401 || answer.status == 403 {
            // A rotated or revoked token: read it again next time.
            self.tokens.invalidate(&self.cfg.token_secret_id).await;
        }
        let ok = answer.is_success()
            && answer
                .json()
                .and_then(|v| v.get("success").and_then(|s| s.as_bool()))
                .unwrap_or(false);
        if !ok {
            return Err(RotationError::refused(&call, &answer));
        }
        Ok(())
    }
}

/// The edge's probe route.
#[derive(Debug, Clone)]
pub struct Probe {
    http: reqwest::Client,
    url: String,
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    /// 204, and the edge names the key that matched.
    Accepted {
        /// `x-hookvault-key`.
        key_id: String,
    },
    /// Anything else: the status and the edge's error code.
    Refused {
        /// The status.
        status: u16,
        /// The edge's `error`.
        code: String,
    },
}

impl ProbeResult {
    /// True when the edge accepted the probe as signed by `key` itself.
    pub fn accepts(&self, key: &WebhookSecret) -> bool {
        matches!(self, ProbeResult::Accepted { key_id } if *key_id == key.key_id)
    }
}

impl std::fmt::Display for ProbeResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeResult::Accepted { key_id } => write!(f, "204, key {key_id}"),
            ProbeResult::Refused { status, code } => write!(f, "{status} {code}"),
        }
    }
}

impl Probe {
    /// The probe of provider `provider` at `edge_url`. Each probe opens a fresh
    /// connection, so it reaches the version of the edge new connections reach (a pooled
    /// one could still be served by the version before an update).
    pub fn new(edge_url: &str, provider: &str, timeout: Duration) -> Self {
        let http = http::client_builder(timeout)
            .pool_max_idle_per_host(0)
            .build()
            .unwrap_or_default();
        Probe {
            http,
            url: format!(
                "{}/_hookvault/probe/{provider}",
                edge_url.trim_end_matches('/')
            ),
        }
    }

    /// Signs a probe with `key` (in its scheme) and sends it once.
    pub async fn check(&self, key: &WebhookSecret, now: i64) -> Result<ProbeResult, RotationError> {
        let scheme = key.scheme;
        let material = scheme
            .decode_secret(&key.secret)
            .map_err(|e| RotationError::BadValue {
                secret: String::new(),
                what: format!("key {}", key.key_id),
                reason: e.to_string(),
            })?;
        let body =
            serde_json::json!({"probe": "hookvault-rotator", "key_id": key.key_id, "at": now})
                .to_string();
        let params = SignParams {
            id: Some(format!("probe_{now}")),
            timestamp: Some(now),
        };
        let headers = scheme
            .sign(&material, body.as_bytes(), &params)
            .map_err(|e| RotationError::BadValue {
                secret: String::new(),
                what: format!("key {}", key.key_id),
                reason: e.to_string(),
            })?;
        // One attempt: the caller ([`Probe::wait_accepted`]) loops on its own deadline.
        let policy = RetryPolicy {
            max_attempts: 1,
            retryable: vec![],
            ..RetryPolicy::provider_api()
        };
        let answer: Answer = http::send(&policy, None, "edge probe", || {
            let mut req = self
                .http
                .post(&self.url)
                .header("content-type", "application/json")
                .body(body.clone());
            for (k, v) in &headers {
                req = req.header(*k, v.as_str());
            }
            req
        })
        .await?;
        Ok(if answer.status == 204 {
            ProbeResult::Accepted {
                key_id: answer
                    .header("x-hookvault-key")
                    .unwrap_or_default()
                    .to_owned(),
            }
        } else {
            let code = answer
                .json()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_default();
            ProbeResult::Refused {
                status: answer.status,
                code,
            }
        })
    }

    /// Probes until the edge accepts `key` as itself, for at most `within` and never
    /// past `deadline`.
    pub async fn wait_accepted(
        &self,
        key: &WebhookSecret,
        within: Duration,
        deadline: Deadline,
    ) -> Result<(), RotationError> {
        let start = Instant::now();
        let end = deadline.map_or(start + within, |d| d.min(start + within));
        loop {
            let last = self.check(key, crate::unix_now()).await;
            match &last {
                Ok(r) if r.accepts(key) => return Ok(()),
                _ if Instant::now() >= end => {
                    return Err(RotationError::NotPropagated {
                        key_id: key.key_id.clone(),
                        secs: within.as_secs(),
                        last: match last {
                            Ok(r) => r.to_string(),
                            Err(e) => e.to_string(),
                        },
                    })
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
}
