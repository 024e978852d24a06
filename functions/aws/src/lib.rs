//! # hookvault-aws
//!
//! What every hookvault Lambda needs from AWS, in one place:
//!
//! * [`env`]: required and optional settings from the environment, with precise errors;
//! * [`credentials`]: the credentials Lambda puts in the environment (no `aws-config`,
//!   whose default chain pulls in STS/SSO clients a Lambda never uses);
//! * [`clients`]: SDK clients that honour `AWS_ENDPOINT_URL` (the local stack: moto);
//! * [`logging`]: JSON logs to stdout as Lambda's logging controls expect;
//! * [`metrics`]: CloudWatch metrics in the Embedded Metric Format;
//! * `secrets` (feature `secretsmanager`): a Secrets Manager cache with a TTL;
//! * `clients::sqs` (feature `sqs`): an SQS client (the archiver's `ChangeMessageVisibility`);
//! * `retry` (feature `retry`): the one retry loop every HTTP call goes through;
//! * `http` (feature `http`): API calls through it, with a body cap.
#![deny(clippy::all)]
#![warn(missing_docs)]

pub mod clients;
pub mod credentials;
pub mod env;
#[cfg(feature = "http")]
pub mod http;
pub mod logging;
pub mod metrics;
#[cfg(feature = "retry")]
pub mod retry;
pub mod sdk_error;
#[cfg(feature = "secretsmanager")]
pub mod secrets;

pub use env::EnvError;

/// A number in [0, 1) for a back-off's jitter (not for secrets: it comes from the
/// standard library's per-process hash keys).
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let h = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The invocation's deadline (Lambda's epoch milliseconds) as an `Instant`, less `margin`
/// so retries stop early enough to answer. `None` when it is already past on arrival: the
/// local runtime emulator (`cargo lambda watch`) sends a constant in 1970, and no deadline
/// beats a wrong one.
pub fn deadline(deadline_ms: u64, margin: std::time::Duration) -> Option<std::time::Instant> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    let left = deadline_ms.checked_sub(now_ms)?;
    Some(std::time::Instant::now() + std::time::Duration::from_millis(left).saturating_sub(margin))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    #[test]
    fn deadlines_keep_their_margin_and_past_ones_are_none() {
        assert_eq!(super::deadline(0, Duration::from_secs(5)), None);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let d = super::deadline(now_ms + 60_000, Duration::from_secs(10)).unwrap();
        let left = d.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(48) && left <= Duration::from_secs(50),
            "{left:?}"
        );
        let tight = super::deadline(now_ms + 2_000, Duration::from_secs(10)).unwrap();
        assert!(
            tight <= Instant::now(),
            "a margin longer than the time left means no time"
        );
    }
}
