//! The drainer's settings, from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SPOOL_BUCKET` | — | the bucket the edge spools to (the edge's `SPOOL_BUCKET`; the template's: the archive bucket); events naming another bucket are ignored |
//! | `QUEUE_URL` | — | the events queue the edge sends to (a URL ending in `.fifo` gets the edge's FIFO ids) |
//! | `SPOOL_MAX_BYTES` | 1 MiB | the largest spool object read: an envelope the edge spools is one SQS message (SQS's largest is 1 MiB); a larger object is left in place and reported |
//! | `METRICS_NAMESPACE` | `hookvault` | the CloudWatch namespace of the EMF metrics |
//! | `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL` | `JSON`, `INFO` | Lambda's logging controls (`RUST_LOG` when the level is unset) |
//!
//! The S3 and SQS clients take `AWS_REGION` (the spool bucket must be in the function's
//! region) and `AWS_ENDPOINT_URL` (the local stack) through `hookvault_aws::clients`.

use hookvault_aws::env::{self, EnvError};

/// `SPOOL_MAX_BYTES`'s default: 1 MiB, SQS's largest message
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>,
/// `MessageBody`: up to 1,048,576 bytes).
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 1024 * 1024;

/// The prefix the edge spools under (`spool/{provider}/{body_sha256}`, edge/src/flow.rs).
pub const SPOOL_PREFIX: &str = "spool/";

/// The drainer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainerConfig {
    /// The spool bucket's name.
    pub bucket: String,
    /// The events queue's URL.
    pub queue_url: String,
    /// The largest spool object read, bytes.
    pub max_object_bytes: u64,
}

impl DrainerConfig {
    /// Reads the settings from the environment. Errors: `SPOOL_BUCKET` or `QUEUE_URL`
    /// missing, `SPOOL_MAX_BYTES` not a number of at least 1 (each error names its
    /// variable).
    pub fn from_env() -> Result<Self, EnvError> {
        Ok(DrainerConfig {
            bucket: env::required("SPOOL_BUCKET")?,
            queue_url: env::required("QUEUE_URL")?,
            max_object_bytes: env::positive("SPOOL_MAX_BYTES", DEFAULT_SPOOL_MAX_BYTES)?,
        })
    }

    /// True when the queue is a FIFO queue (its name ends in `.fifo`, as SQS requires:
    /// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues.html>).
    pub fn is_fifo(&self) -> bool {
        self.queue_url.ends_with(".fifo")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::env::{remove_var, set_var};

    // One test touches the process environment, so the variables do not race.
    #[test]
    fn settings_are_read_and_each_refusal_names_its_variable() {
        for (k, v) in [
            ("SPOOL_BUCKET", "spool-bucket"),
            ("QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/1/q.fifo"),
            ("SPOOL_MAX_BYTES", "2048"),
        ] {
            set_var(k, v);
        }
        let cfg = DrainerConfig::from_env().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            cfg,
            DrainerConfig {
                bucket: "spool-bucket".into(),
                queue_url: "https://sqs.eu-west-1.amazonaws.com/1/q.fifo".into(),
                max_object_bytes: 2048,
            }
        );
        assert!(cfg.is_fifo());

        set_var("SPOOL_MAX_BYTES", "0");
        let err = DrainerConfig::from_env().err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("SPOOL_MAX_BYTES")),
            "{err:?}"
        );
        remove_var("SPOOL_MAX_BYTES");
        assert_eq!(
            DrainerConfig::from_env().map(|c| c.max_object_bytes),
            Ok(DEFAULT_SPOOL_MAX_BYTES)
        );
        remove_var("QUEUE_URL");
        assert_eq!(
            DrainerConfig::from_env(),
            Err(EnvError::Missing("QUEUE_URL".into()))
        );
        remove_var("SPOOL_BUCKET");
        assert_eq!(
            DrainerConfig::from_env(),
            Err(EnvError::Missing("SPOOL_BUCKET".into()))
        );
    }
}
