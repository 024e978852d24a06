//! The one retry loop every HTTP call in hookvault goes through: the provider's and
//! Cloudflare's APIs ([`crate::http`]), the archiver's CDN downloads, and the CLI's
//! `hookvault send`. The core's [`RetryPolicy`] decides (back-off with jitter,
//! `Retry-After`, the caller's deadline); this loop sleeps, logs each retry, and counts.

use std::future::Future;
use std::time::Instant;

use hookvault_core::retry::{Decision, Failure, GiveUp, RetryPolicy};

/// A failed attempt the policy may retry: an HTTP status (with its `Retry-After`) or no
/// answer at all, and what to hand back if the policy gives up.
#[derive(Debug)]
pub struct Retryable<L> {
    /// The HTTP status; `None` for a transport error (refused, reset, timed out).
    pub status: Option<u16>,
    /// The raw `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// For the logs: `HTTP 503`, or the transport error (never a URL's query or a header).
    pub reason: String,
    /// What the caller gets back when the loop stops here.
    pub last: L,
}

/// The loop stopped on a failure.
#[derive(Debug)]
pub struct GaveUp<L> {
    /// Why the policy stopped.
    pub why: GiveUp,
    /// Attempts made, the first included.
    pub attempts: u32,
    /// The last failure's reason.
    pub reason: String,
    /// The last failure's value.
    pub last: L,
}

/// Calls `attempt(n)` (n = 1, 2, …) until it returns `Ok`, or the policy stops on an
/// `Err(Retryable)` (a status it does not retry, attempts exhausted, a `Retry-After` too
/// long, or no time before `deadline`). Each retry is logged at warn level with `what`
/// (the call's name: never a URL with its query, never a header) and counted in
/// `retries`, if given.
pub async fn retrying<T, L, F, Fut>(
    policy: &RetryPolicy,
    deadline: Option<Instant>,
    what: &str,
    retries: Option<&std::sync::atomic::AtomicU64>,
    mut attempt: F,
) -> Result<T, GaveUp<L>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Retryable<L>>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        let failed = match attempt(attempts).await {
            Ok(done) => return Ok(done),
            Err(f) => f,
        };
        let failure = match failed.status {
            Some(status) => Failure::Status {
                status,
                retry_after: failed.retry_after.as_deref(),
            },
            None => Failure::Transport,
        };
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match policy.decide(
            attempts,
            failure,
            hookvault_core::time::unix_now(),
            remaining,
            &mut crate::jitter,
        ) {
            Decision::Retry(wait) => {
                tracing::warn!(
                    call = what,
                    attempt = attempts,
                    wait_ms = wait.as_millis() as u64,
                    reason = %failed.reason,
                    "retrying"
                );
                if let Some(r) = retries {
                    r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(wait).await;
            }
            Decision::GiveUp(why) => {
                if !matches!(why, GiveUp::NotRetryable(_)) {
                    tracing::warn!(call = what, attempts, reason = %failed.reason, why = %why, "giving up");
                }
                return Err(GaveUp {
                    why,
                    attempts,
                    reason: failed.reason,
                    last: failed.last,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::time::Duration;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            ..RetryPolicy::downloads()
        }
    }

    fn status(s: u16) -> Retryable<u16> {
        Retryable {
            status: Some(s),
            retry_after: None,
            reason: format!("HTTP {s}"),
            last: s,
        }
    }

    #[tokio::test]
    async fn retries_until_success_and_counts_the_retries() {
        let retries = AtomicU64::new(0);
        let out = retrying(&fast(), None, "t", Some(&retries), |n| async move {
            if n < 3 {
                Err(status(503))
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(out.ok(), Some(3));
        assert_eq!(retries.into_inner(), 2);
    }

    #[tokio::test]
    async fn stops_at_once_on_a_status_it_does_not_retry_and_after_the_last_attempt() {
        let out = retrying(&fast(), None, "t", None, |_| async {
            Err::<(), _>(status(400))
        })
        .await
        .err();
        let gave_up = out.expect("gave up");
        assert_eq!(
            (gave_up.why, gave_up.attempts, gave_up.last),
            (GiveUp::NotRetryable(400), 1, 400)
        );
        let out = retrying(&fast(), None, "t", None, |_| async {
            Err::<(), _>(Retryable {
                status: None,
                retry_after: None,
                reason: "reset".into(),
                last: 0u16,
            })
        })
        .await
        .expect_err("gave up");
        assert_eq!(out.why, GiveUp::Exhausted(fast().max_attempts));
        assert_eq!(out.attempts, fast().max_attempts);
        assert_eq!(out.reason, "reset");
    }

    #[tokio::test]
    async fn a_deadline_with_no_room_for_the_wait_stops_the_loop() {
        let out = retrying(
            &RetryPolicy::downloads(),
            Some(Instant::now()),
            "t",
            None,
            |_| async { Err::<(), _>(status(503)) },
        )
        .await
        .expect_err("gave up");
        assert_eq!((out.why, out.attempts), (GiveUp::Deadline, 1));
    }
}
