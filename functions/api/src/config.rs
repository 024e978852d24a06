//! The api function's settings, from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PROVIDER_API_URL` | `https://api.skytells.ai` | the provider's API |
//! | `API_KEY_SECRET_ID` | — | the provider API key secret (`{"kind":"provider-api-key","key_id":…,"api_key":…}`, as the rotator keeps it) |
//! | `API_KEY_CACHE_TTL_SECS` | 300 | how long the key (and the caller keys) are cached; the rotator's `API_KEY_GRACE_SECS` must be longer |
//! | `EDGE_WEBHOOK_URL` | — | the edge's webhook URL, sent as `webhook_url` (`https://…/webhooks/skytells`) |
//! | `ARCHIVE_BUCKET` | — | the archive bucket |
//! | `PRESIGN_EXPIRY_SECS` | 900 | lifetime of the presigned output URLs (1 s to 7 days) |
//! | `CALLER_KEYS_SECRET_ID` | — | the secret holding the keys callers present as `Authorization: Bearer …` (`{"keys":["…"]}`) |
//! | `MAX_REQUEST_BYTES` | 262144 | largest request body accepted |
//! | `HTTP_TIMEOUT_MS` | 10000 | per attempt, for the provider |
//! | `PROVIDER_DIALECT` | `current` | the shape of the provider calls: `current`, `course` or `legacy` ([`Dialect`]) |
//! | `CHECK_QUEUE_URL` | unset | the reconciler's check queue (issue 23): each accepted prediction gets a check message there ([`hookvault_core::reconcile::Check`]); unset, no checks are scheduled (logged once at start) |
//! | `CHECK_FIRST_DELAY_SECS` | 30 | `DelaySeconds` of that first check, 0 to 900 (SQS's largest delay) |
//!
//! The provider's name in the ledger and the checks ([`ApiConfig::provider`]) is the last
//! path segment of `EDGE_WEBHOOK_URL` (`/webhooks/{provider}`, the edge's route: the
//! `provider` its envelopes carry), `skytells` when that segment is not a provider name.

use std::time::Duration;

use hookvault_aws::env::{self, EnvError};

use crate::dialect::Dialect;

/// The api function's settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The provider's API base URL.
    pub provider_api_url: String,
    /// The provider API key secret.
    pub api_key_secret_id: String,
    /// Secret cache TTL.
    pub cache_ttl: Duration,
    /// `webhook_url` for the provider.
    pub edge_webhook_url: String,
    /// The archive bucket.
    pub bucket: String,
    /// Presigned URL lifetime.
    pub presign_expiry: Duration,
    /// The caller keys secret.
    pub caller_keys_secret_id: String,
    /// Request body cap.
    pub max_request_bytes: usize,
    /// Per-attempt timeout.
    pub http_timeout: Duration,
    /// The shape of the provider calls (`PROVIDER_DIALECT`).
    pub provider_dialect: Dialect,
    /// The reconciler's check queue (`CHECK_QUEUE_URL`); `None`: no checks.
    pub check_queue_url: Option<String>,
    /// The first check's `DelaySeconds` (`CHECK_FIRST_DELAY_SECS`), 0 to 900.
    pub check_first_delay_secs: u64,
}

/// The provider name in an edge webhook URL: its last path segment when it is one
/// ([`hookvault_core::reconcile::is_provider_name`]), else `skytells`.
pub fn provider_of(edge_webhook_url: &str) -> String {
    let path = edge_webhook_url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .trim_end_matches('/');
    path.rsplit('/')
        .next()
        .filter(|s| hookvault_core::reconcile::is_provider_name(s))
        .unwrap_or("skytells")
        .to_owned()
}

impl ApiConfig {
    /// The provider's name as the edge's route names it ([`provider_of`]
    /// `EDGE_WEBHOOK_URL`): the ledger's and the checks' `provider`.
    pub fn provider(&self) -> String {
        provider_of(&self.edge_webhook_url)
    }
}

/// `PROVIDER_DIALECT`'s value (`None` when unset or empty): the current reference by
/// default, an unknown name refused.
pub fn dialect(value: Option<&str>) -> Result<Dialect, EnvError> {
    value.map_or(Ok(Dialect::default()), |v| {
        v.parse().map_err(|_| EnvError::Invalid {
            name: "PROVIDER_DIALECT".into(),
            expected: "current (the provider's API reference), course or legacy",
        })
    })
}

/// `CHECK_FIRST_DELAY_SECS` checked: SQS takes 0 to 900 seconds.
fn first_delay(secs: u64) -> Result<u64, EnvError> {
    if secs > hookvault_core::reconcile::MAX_SQS_DELAY_SECS {
        return Err(EnvError::Invalid {
            name: "CHECK_FIRST_DELAY_SECS".into(),
            expected: "0 to 900 seconds (SQS's largest DelaySeconds)",
        });
    }
    Ok(secs)
}

impl ApiConfig {
    /// Reads the settings.
    pub fn from_env() -> Result<Self, EnvError> {
        let presign: u64 = env::number("PRESIGN_EXPIRY_SECS", 900)?;
        if !(1..=7 * 24 * 3600).contains(&presign) {
            return Err(EnvError::Invalid {
                name: "PRESIGN_EXPIRY_SECS".into(),
                expected: "1 to 604800 seconds (S3's limit for presigned URLs)",
            });
        }
        let webhook = env::required("EDGE_WEBHOOK_URL")?;
        if !(webhook.starts_with("https://") || webhook.starts_with("http://")) {
            return Err(EnvError::Invalid {
                name: "EDGE_WEBHOOK_URL".into(),
                expected: "an http(s) URL",
            });
        }
        Ok(ApiConfig {
            provider_api_url: env::optional("PROVIDER_API_URL")
                .unwrap_or_else(|| "https://api.skytells.ai".into())
                .trim_end_matches('/')
                .to_owned(),
            api_key_secret_id: env::required("API_KEY_SECRET_ID")?,
            cache_ttl: Duration::from_secs(env::number("API_KEY_CACHE_TTL_SECS", 300)?),
            edge_webhook_url: webhook,
            bucket: env::required("ARCHIVE_BUCKET")?,
            presign_expiry: Duration::from_secs(presign),
            caller_keys_secret_id: env::required("CALLER_KEYS_SECRET_ID")?,
            max_request_bytes: env::positive("MAX_REQUEST_BYTES", 256 * 1024)?,
            http_timeout: Duration::from_millis(env::positive("HTTP_TIMEOUT_MS", 10_000u64)?),
            provider_dialect: dialect(env::optional("PROVIDER_DIALECT").as_deref())?,
            check_queue_url: env::optional("CHECK_QUEUE_URL"),
            check_first_delay_secs: first_delay(env::number("CHECK_FIRST_DELAY_SECS", 30)?)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_is_the_edges_route_segment() {
        assert_eq!(
            provider_of("https://edge.example.com/webhooks/skytells"),
            "skytells"
        );
        assert_eq!(provider_of("https://e/webhooks/sky-2/?x=1"), "sky-2");
        assert_eq!(provider_of("https://e/"), "e");
        assert_eq!(provider_of("https://e/webhooks/a%20b"), "skytells");
        assert_eq!(first_delay(900), Ok(900));
        assert!(first_delay(901).is_err());
    }

    #[test]
    fn the_dialect_defaults_to_the_current_reference_and_unknown_names_are_refused() {
        assert_eq!(dialect(None), Ok(Dialect::Current));
        assert_eq!(dialect(Some("course")), Ok(Dialect::Course));
        assert_eq!(dialect(Some("LEGACY")), Ok(Dialect::Legacy));
        let e = dialect(Some("v2")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable PROVIDER_DIALECT is invalid: expected current (the provider's API reference), course or legacy"
        );
    }
}
