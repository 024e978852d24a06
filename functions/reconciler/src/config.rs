//! The reconciler's settings, from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `ARCHIVE_BUCKET` | — | the archive bucket: state, manifests and failures are read there; `stalled.json`, the event log's `stalled` entries and claim checks (`raw/{sha256}`) are written there |
//! | `QUEUE_URL` | — | the events queue the archiver reads: reconciled events go there (a URL ending in `.fifo` gets the edge's FIFO ids) |
//! | `CHECK_QUEUE_URL` | — | the check queue this function reads: the next check of a running prediction goes back there with `DelaySeconds` |
//! | `API_KEY_SECRET_ID` | — | the provider API key secret (`{"api_key":…}`, as the rotator keeps it) |
//! | `API_KEY_CACHE_TTL_SECS` | 300 | how long the key is cached (a 401 reads it again at once) |
//! | `PROVIDER_API_URL` | `https://api.skytells.ai` | the provider's API |
//! | `PROVIDER` | `skytells` | the provider name a sweep's checks carry (the edge's route name); a check from the api carries its own |
//! | `HTTP_TIMEOUT_MS` | 10000 | per attempt, for the provider |
//! | `MAX_ANSWER_BYTES` | 67108864 (64 MiB) | the largest provider answer read, bytes: the archiver's default `EVENT_MAX_BYTES`, so whatever the webhook path would archive, a check archives too. A larger answer is a permanent outcome: the prediction is recorded stalled at once (`last_error` says so), not fetched again. The function holds about three copies of an answer while it claim-checks it: mind its memory (256 MB) before raising it |
//! | `CHECK_MAX_AGE_SECS` | 86400 | how long after its submission a prediction is followed; then it is recorded `stalled` |
//! | `CHECK_MAX_INTERVAL_SECS` | 60 | the longest gap between two checks of one prediction (1 to 900, SQS's largest delay) |
//! | `SWEEP_ENABLED` | false | the scheduled event lists the provider's predictions and checks the terminal ones the archive lacks |
//! | `SWEEP_LOOKBACK_SECS` | 3600 | how far back a sweep lists (`from` = now less this, `to` = now) |
//! | `METRICS_NAMESPACE` | `hookvault` | the CloudWatch namespace of the EMF metrics (`MissedWebhooks`, `StalledPredictions`, …) |
//! | `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL` | `JSON`, `INFO` | Lambda's logging controls (`RUST_LOG` when the level is unset) |
//!
//! **Why 60 s between checks.** Skytells keeps a prediction's outputs for 300 s after it
//! completes ("Skytells does not retain output data more than 5 minutes after a prediction
//! is completed", <https://learn.skytells.ai/docs/api/v1/webhooks>). With at most
//! `CHECK_MAX_INTERVAL_SECS` = 60 s between two checks, a prediction whose webhook is lost
//! is seen terminal at most 60 s after it completed (plus the check's own fetch, seconds),
//! and queued for the archiver then: the archiver has the remaining ~240 s of the window,
//! four times the gap, to download the outputs (the queue's delivery takes seconds). A
//! 5-minute gap would use the whole window before the archiver even started.
//!
//! The clients take `AWS_REGION` and `AWS_ENDPOINT_URL` (the local stack) through
//! `hookvault_aws::clients`.

use std::time::Duration;

use hookvault_aws::env::{self, EnvError};
use hookvault_core::reconcile::{is_provider_name, MAX_SQS_DELAY_SECS};

/// `MAX_ANSWER_BYTES`' default: 64 MiB, the archiver's default `EVENT_MAX_BYTES`
/// (`hookvault_archiver::config::DEFAULT_MAX_EVENT_BYTES`), the largest event the webhook
/// path archives.
pub const DEFAULT_MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

/// The reconciler's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcilerConfig {
    /// The archive bucket (`ARCHIVE_BUCKET`).
    pub bucket: String,
    /// The events queue (`QUEUE_URL`).
    pub queue_url: String,
    /// The check queue (`CHECK_QUEUE_URL`).
    pub check_queue_url: String,
    /// The provider API key secret (`API_KEY_SECRET_ID`).
    pub api_key_secret_id: String,
    /// The key's cache lifetime (`API_KEY_CACHE_TTL_SECS`).
    pub cache_ttl: Duration,
    /// The provider's API base URL, without a trailing `/` (`PROVIDER_API_URL`).
    pub provider_api_url: String,
    /// The provider's name for a sweep's checks (`PROVIDER`).
    pub provider: String,
    /// Per-attempt timeout (`HTTP_TIMEOUT_MS`).
    pub http_timeout: Duration,
    /// The largest provider answer read, bytes (`MAX_ANSWER_BYTES`).
    pub max_answer_bytes: u64,
    /// How long a prediction is followed, seconds (`CHECK_MAX_AGE_SECS`).
    pub max_age_secs: u64,
    /// The longest gap between two checks, seconds (`CHECK_MAX_INTERVAL_SECS`).
    pub max_interval_secs: u64,
    /// Whether the scheduled event sweeps (`SWEEP_ENABLED`).
    pub sweep_enabled: bool,
    /// How far back a sweep lists, seconds (`SWEEP_LOOKBACK_SECS`).
    pub sweep_lookback_secs: u64,
}

impl ReconcilerConfig {
    /// Reads the settings. Errors name the variable: a required one missing, a number
    /// that is not one, `CHECK_MAX_INTERVAL_SECS` outside 1 to 900, `PROVIDER` not a
    /// provider name.
    pub fn from_env() -> Result<Self, EnvError> {
        let max_interval_secs: u64 = env::positive("CHECK_MAX_INTERVAL_SECS", 60)?;
        if max_interval_secs > MAX_SQS_DELAY_SECS {
            return Err(EnvError::Invalid {
                name: "CHECK_MAX_INTERVAL_SECS".into(),
                expected: "1 to 900 seconds (SQS's largest DelaySeconds)",
            });
        }
        let provider = env::optional("PROVIDER").unwrap_or_else(|| "skytells".into());
        if !is_provider_name(&provider) {
            return Err(EnvError::Invalid {
                name: "PROVIDER".into(),
                expected: "a provider name of A-Z a-z 0-9 - _ (the edge's route)",
            });
        }
        Ok(ReconcilerConfig {
            bucket: env::required("ARCHIVE_BUCKET")?,
            queue_url: env::required("QUEUE_URL")?,
            check_queue_url: env::required("CHECK_QUEUE_URL")?,
            api_key_secret_id: env::required("API_KEY_SECRET_ID")?,
            cache_ttl: Duration::from_secs(env::number("API_KEY_CACHE_TTL_SECS", 300)?),
            provider_api_url: env::optional("PROVIDER_API_URL")
                .unwrap_or_else(|| "https://api.skytells.ai".into())
                .trim_end_matches('/')
                .to_owned(),
            provider,
            http_timeout: Duration::from_millis(env::positive("HTTP_TIMEOUT_MS", 10_000u64)?),
            max_answer_bytes: env::positive("MAX_ANSWER_BYTES", DEFAULT_MAX_ANSWER_BYTES)?,
            max_age_secs: env::positive("CHECK_MAX_AGE_SECS", 86_400)?,
            max_interval_secs,
            sweep_enabled: env::flag("SWEEP_ENABLED", false)?,
            sweep_lookback_secs: env::positive("SWEEP_LOOKBACK_SECS", 3600)?,
        })
    }

    /// True when the events queue is a FIFO queue (its name ends in `.fifo`).
    pub fn is_fifo(&self) -> bool {
        self.queue_url.ends_with(".fifo")
    }
}
