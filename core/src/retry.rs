//! Retry policy: exponential back-off with ±25 % jitter, `Retry-After` honoured in both
//! its forms, a cap, and statuses that are never retried.
//!
//! The policy only decides; the caller sleeps. The random source is injected (a closure
//! returning a number in `[0, 1)`), so tests are exact and the core needs no RNG.

use std::time::Duration;

/// Why a request fails, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure<'a> {
    /// An HTTP response with this status and, if present, its `Retry-After` value.
    Status {
        /// The HTTP status.
        status: u16,
        /// The raw `Retry-After` header.
        retry_after: Option<&'a str>,
    },
    /// No response: connection refused or reset, or a timeout. Retried like a 503.
    Transport,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then try again.
    Retry(Duration),
    /// Stop and surface the error.
    GiveUp(GiveUp),
}

/// Why the policy stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GiveUp {
    /// The status is one a retry cannot fix.
    #[error("HTTP {0} is not retryable")]
    NotRetryable(u16),
    /// Every attempt has been made.
    #[error("gave up after {0} attempts")]
    Exhausted(u32),
    /// The server asks for a longer wait than the policy allows.
    #[error("Retry-After asks for {0:?}, longer than allowed")]
    RetryAfterTooLong(Duration),
    /// The wait would run past the caller's deadline (a Lambda's remaining time).
    #[error("no time left for a retry before the deadline")]
    Deadline,
}

/// An exponential back-off policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The delay before the first retry, before jitter (then 2×, 4×, …).
    pub base: Duration,
    /// No computed delay exceeds this.
    pub max_delay: Duration,
    /// A `Retry-After` longer than this makes the policy give up.
    pub max_retry_after: Duration,
    /// Jitter as a fraction of the delay (0.25 → ×0.75 to ×1.25).
    pub jitter: f64,
    /// The HTTP statuses worth retrying.
    pub retryable: Vec<u16>,
}

impl RetryPolicy {
    /// The provider APIs (the seed's policy): 4 attempts, 1 s, 2 s, 4 s …, ±25 %, capped
    /// at 30 s; 429, 500 and 503 retried.
    pub fn provider_api() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            jitter: 0.25,
            retryable: crate::provider_error::RETRYABLE_STATUSES.to_vec(),
        }
    }

    /// CDN downloads: as [`RetryPolicy::provider_api`], plus 502 and 504.
    pub fn downloads() -> Self {
        RetryPolicy {
            retryable: vec![429, 500, 502, 503, 504],
            ..Self::provider_api()
        }
    }

    /// CDN downloads inside the provider's output window (issue 22): short back-off
    /// (0.5 s, 1 s, 2 s, then every 4 s, ±25 %) for as long as the caller's deadline
    /// allows (the archiver's: the Lambda's deadline, its retry budget and the output's
    /// expiry, whichever comes first), 429 and 5xx retried. The attempt cap (100) is
    /// only a backstop: the deadline is what stops it. A `Retry-After` over 60 s gives up
    /// (the record goes back to the queue and comes back when asked).
    pub fn downloads_in_window() -> Self {
        RetryPolicy {
            max_attempts: 100,
            base: Duration::from_millis(500),
            max_delay: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(60),
            ..Self::downloads()
        }
    }

    /// The back-off before retry number `retry` (0 for the first), with jitter from
    /// `unit` in `[0, 1)`: `base × 2^retry × (1 − jitter + 2·jitter·unit)`, capped.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let exp = self.base.as_secs_f64() * 2f64.powi(i32::try_from(retry.min(62)).unwrap_or(62));
        let factor = 1.0 - self.jitter + 2.0 * self.jitter * unit.clamp(0.0, 1.0);
        Duration::from_secs_f64((exp * factor).min(self.max_delay.as_secs_f64()).max(0.0))
    }

    /// Decides after `attempts` failed attempts (1 after the first). `now` is Unix seconds
    /// (for an HTTP-date `Retry-After`), `remaining` the caller's time left if bounded,
    /// `random` the injected source of numbers in `[0, 1)`.
    pub fn decide(
        &self,
        attempts: u32,
        failure: Failure<'_>,
        now: i64,
        remaining: Option<Duration>,
        random: &mut dyn FnMut() -> f64,
    ) -> Decision {
        let retry_after = match failure {
            Failure::Status { status, .. } if !self.retryable.contains(&status) => {
                return Decision::GiveUp(GiveUp::NotRetryable(status));
            }
            Failure::Status { retry_after, .. } => {
                retry_after.and_then(|v| parse_retry_after(v, now))
            }
            Failure::Transport => None,
        };
        if attempts >= self.max_attempts {
            return Decision::GiveUp(GiveUp::Exhausted(attempts));
        }
        let delay = match retry_after {
            Some(ra) if ra > self.max_retry_after => {
                return Decision::GiveUp(GiveUp::RetryAfterTooLong(ra));
            }
            // Honour the server's wait, never shorter; spread clients up to +jitter.
            Some(ra) => ra.mul_f64(1.0 + self.jitter * random().clamp(0.0, 1.0)),
            None => self.backoff(attempts.saturating_sub(1), random()),
        };
        match remaining {
            Some(left) if delay >= left => Decision::GiveUp(GiveUp::Deadline),
            _ => Decision::Retry(delay),
        }
    }
}

/// Parses `Retry-After`: delay-seconds, or an HTTP-date taken relative to `now`
/// (a date in the past means "now").
pub fn parse_retry_after(value: &str, now: i64) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
        return Some(Duration::from_secs(v.parse().unwrap_or(u64::MAX)));
    }
    // RFC 9110 §5.6.7's three forms, by the `httpdate` crate (hyper's); it builds a
    // `SystemTime` from the epoch without reading the clock, so it runs on wasm32 too.
    let at = httpdate::parse_http_date(v)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let at = i64::try_from(at).ok()?;
    Some(Duration::from_secs(
        u64::try_from(at.saturating_sub(now)).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mid() -> impl FnMut() -> f64 {
        || 0.5
    }

    #[test]
    fn backs_off_exponentially_with_bounded_jitter_and_a_cap() {
        let p = RetryPolicy::provider_api();
        assert_eq!(p.backoff(0, 0.5), Duration::from_secs(1));
        assert_eq!(p.backoff(1, 0.5), Duration::from_secs(2));
        assert_eq!(p.backoff(3, 0.5), Duration::from_secs(8));
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(1500));
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(2500));
        assert_eq!(p.backoff(20, 0.5), Duration::from_secs(30));
    }

    #[test]
    fn downloads_in_the_window_back_off_briefly_until_the_deadline() {
        let p = RetryPolicy::downloads_in_window();
        let waits: Vec<Duration> = (0..5).map(|n| p.backoff(n, 0.5)).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 4000].map(Duration::from_millis)
        );
        let fail = Failure::Status {
            status: 503,
            retry_after: None,
        };
        // Time, not the count, stops it: 20 s of a CDN's 503s are all retried.
        assert_eq!(
            p.decide(10, fail, 0, Some(Duration::from_secs(60)), &mut mid()),
            Decision::Retry(Duration::from_secs(4))
        );
        assert_eq!(
            p.decide(10, fail, 0, Some(Duration::from_secs(3)), &mut mid()),
            Decision::GiveUp(GiveUp::Deadline)
        );
        assert_eq!(
            p.decide(
                1,
                Failure::Status {
                    status: 404,
                    retry_after: None
                },
                0,
                None,
                &mut mid()
            ),
            Decision::GiveUp(GiveUp::NotRetryable(404))
        );
    }

    #[test]
    fn never_retries_client_errors() {
        let p = RetryPolicy::provider_api();
        for status in [400, 401, 402, 404, 422] {
            let d = p.decide(
                1,
                Failure::Status {
                    status,
                    retry_after: Some("1"),
                },
                0,
                None,
                &mut mid(),
            );
            assert_eq!(d, Decision::GiveUp(GiveUp::NotRetryable(status)));
        }
    }

    #[test]
    fn retries_transient_errors_until_attempts_run_out() {
        let p = RetryPolicy::provider_api();
        for status in [429, 500, 503] {
            let f = Failure::Status {
                status,
                retry_after: None,
            };
            assert_eq!(
                p.decide(1, f, 0, None, &mut mid()),
                Decision::Retry(Duration::from_secs(1))
            );
            assert_eq!(
                p.decide(3, f, 0, None, &mut mid()),
                Decision::Retry(Duration::from_secs(4))
            );
            assert_eq!(
                p.decide(4, f, 0, None, &mut mid()),
                Decision::GiveUp(GiveUp::Exhausted(4))
            );
        }
        assert_eq!(
            p.decide(1, Failure::Transport, 0, None, &mut mid()),
            Decision::Retry(Duration::from_secs(1))
        );
        assert!(matches!(
            p.decide(
                1,
                Failure::Status {
                    status: 504,
                    retry_after: None
                },
                0,
                None,
                &mut mid()
            ),
            Decision::GiveUp(GiveUp::NotRetryable(504))
        ));
        assert!(matches!(
            RetryPolicy::downloads().decide(
                1,
                Failure::Status {
                    status: 504,
                    retry_after: None
                },
                0,
                None,
                &mut mid()
            ),
            Decision::Retry(_)
        ));
    }

    #[test]
    fn honours_retry_after_in_both_forms_and_the_deadline() {
        let p = RetryPolicy::provider_api();
        let f = |ra| Failure::Status {
            status: 429,
            retry_after: Some(ra),
        };
        assert_eq!(
            p.decide(1, f("7"), 0, None, &mut || 0.0),
            Decision::Retry(Duration::from_secs(7))
        );
        let now = 784_111_777 - 10;
        assert_eq!(
            p.decide(
                1,
                f("Sun, 06 Nov 1994 08:49:37 GMT"),
                now,
                None,
                &mut || 0.0
            ),
            Decision::Retry(Duration::from_secs(10))
        );
        // Jitter only lengthens a Retry-After wait.
        assert_eq!(
            p.decide(1, f("8"), 0, None, &mut || 1.0),
            Decision::Retry(Duration::from_secs(10))
        );
        assert_eq!(
            p.decide(1, f("121"), 0, None, &mut mid()),
            Decision::GiveUp(GiveUp::RetryAfterTooLong(Duration::from_secs(121)))
        );
        assert_eq!(
            p.decide(1, f("5"), 0, Some(Duration::from_secs(5)), &mut || 0.0),
            Decision::GiveUp(GiveUp::Deadline)
        );
        // An unparseable Retry-After falls back to back-off.
        assert_eq!(
            p.decide(1, f("soon"), 0, None, &mut mid()),
            Decision::Retry(Duration::from_secs(1))
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", 100),
            Some(Duration::ZERO)
        );
        // RFC 9110's three HTTP-date forms, one instant.
        let at = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(form, at - 30),
                Some(Duration::from_secs(30)),
                "{form}"
            );
        }
    }
}
