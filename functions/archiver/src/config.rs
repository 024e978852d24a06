//! The archiver's settings, from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `ARCHIVE_BUCKET` | — | the bucket |
//! | `DOWNLOAD_ALLOWED_HOSTS` | — | comma-separated hosts outputs may come from (`cdn.example.com`, `*.example.com`) |
//! | `DOWNLOAD_ALLOW_INSECURE_LOOPBACK` | `false` | local stack only: allow `http` and loopback hosts on the list |
//! | `DOWNLOAD_MAX_BYTES` | 5 GiB | an output (downloaded, or decoded from a `data:` URI) larger than this is refused |
//! | `EVENT_MAX_BYTES` | 64 MiB | the largest claim-checked event body read from S3 (it is held in memory) |
//! | `DOWNLOAD_CONNECT_TIMEOUT_MS` | 5000 | connect timeout |
//! | `DOWNLOAD_READ_TIMEOUT_MS` | 30000 | longest silence while reading |
//! | `UPLOAD_PART_BYTES` | 8 MiB | multipart part size (≥ 5 MiB, S3's minimum) |
//! | `UPLOAD_PARTS_IN_FLIGHT` | 2 | parts uploading at once, per output |
//! | `OUTPUTS_IN_FLIGHT` | 2 | outputs of one prediction archived at once |
//! | `MAX_RECEIVE_COUNT` | — | the queue's `maxReceiveCount`: a record failing on its last receive is logged at error level, counted as `PermanentFailures` (`RETRIES_EXHAUSTED`), and entered in the event log as `dead_lettered` |
//! | `METRICS_NAMESPACE` | `hookvault` | the CloudWatch namespace of the EMF metrics |
//! | `OUTPUT_RETENTION_SECS` | `skytells:300,*:3600` | how long each provider keeps a prediction's outputs after it completes (`provider:seconds`; [`crate::window`]) |
//! | `DOWNLOAD_RETRY_BUDGET_MS` | 60000 | the longest one record retries its downloads in one invocation ([`crate::window`]) |
//! | `EVENT_BUS_NAME` | — | the EventBridge bus told of each prediction outcome; unset: no events ([`crate::notify`]) |
//! | `EVENT_SOURCE` | `hookvault` | those events' `source` |
//! | `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL` | `JSON`, `INFO` | Lambda's logging controls (`RUST_LOG` when the level is unset) |
//!
//! Peak memory is about `(UPLOAD_PARTS_IN_FLIGHT + 1) × UPLOAD_PART_BYTES ×
//! OUTPUTS_IN_FLIGHT` plus the runtime: 48 MiB with the defaults; plus the event's body
//! (at most `EVENT_MAX_BYTES`) and the `data:` URIs decoded from it, which are held whole.

use hookvault_aws::env::{self, EnvError};
use hookvault_core::url_guard::UrlGuard;

/// S3's smallest part (all but the last).
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// `EVENT_MAX_BYTES`'s default: 64 MiB, far above any webhook, well within the
/// function's memory.
pub const DEFAULT_MAX_EVENT_BYTES: u64 = 64 * 1024 * 1024;

/// The archiver's settings.
#[derive(Debug, Clone)]
pub struct ArchiverConfig {
    /// The archive bucket.
    pub bucket: String,
    /// Where outputs may be downloaded from.
    pub guard: UrlGuard,
    /// Largest output accepted, bytes.
    pub max_output_bytes: u64,
    /// Largest claim-checked event body read from S3, bytes (the body is held in memory
    /// to check its digest, parse it and store it).
    pub max_event_bytes: u64,
    /// Connect timeout, milliseconds.
    pub connect_timeout_ms: u64,
    /// Read timeout, milliseconds.
    pub read_timeout_ms: u64,
    /// Multipart part size, bytes.
    pub part_bytes: usize,
    /// Parts in flight per output.
    pub parts_in_flight: usize,
    /// Outputs in flight per prediction.
    pub outputs_in_flight: usize,
}

impl ArchiverConfig {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, EnvError> {
        let insecure = env::flag("DOWNLOAD_ALLOW_INSECURE_LOOPBACK", false)?;
        let part_bytes = env::number("UPLOAD_PART_BYTES", 8 * 1024 * 1024)?;
        if part_bytes < MIN_PART_BYTES {
            return Err(EnvError::Invalid {
                name: "UPLOAD_PART_BYTES".into(),
                expected: "at least 5242880 (S3's minimum part size)",
            });
        }
        Ok(ArchiverConfig {
            bucket: env::required("ARCHIVE_BUCKET")?,
            guard: UrlGuard::from_list(&env::required("DOWNLOAD_ALLOWED_HOSTS")?)
                .allow_http(insecure)
                .allow_loopback(insecure),
            max_output_bytes: env::number("DOWNLOAD_MAX_BYTES", 5 * 1024 * 1024 * 1024)?,
            max_event_bytes: env::number("EVENT_MAX_BYTES", DEFAULT_MAX_EVENT_BYTES)?,
            // 0 would time out every download at once.
            connect_timeout_ms: env::positive("DOWNLOAD_CONNECT_TIMEOUT_MS", 5_000)?,
            read_timeout_ms: env::positive("DOWNLOAD_READ_TIMEOUT_MS", 30_000)?,
            part_bytes,
            parts_in_flight: env::positive("UPLOAD_PARTS_IN_FLIGHT", 2)?,
            outputs_in_flight: env::positive("OUTPUTS_IN_FLIGHT", 2)?,
        })
    }
}
