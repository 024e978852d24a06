//! Calls to HTTP APIs (the provider's, Cloudflare's) through [`crate::retry::retrying`]:
//! 429/5xx and transport errors retried with back-off and `Retry-After`, everything else
//! answered at once. Bodies are read up to a cap: an API never makes a Lambda buffer
//! without bound.

use std::time::{Duration, Instant};

use hookvault_core::retry::RetryPolicy;

use crate::retry::Retryable;

/// Largest response body read from an API.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// An API's answer, read whole (up to [`MAX_BODY_BYTES`]).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// `Retry-After`, if any.
    pub retry_after: Option<String>,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
    /// Attempts made, the first included.
    pub attempts: u32,
}

impl Answer {
    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// No answer at all. Names the call (`what`), never a header or body sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Connection refused, reset or timed out on every attempt.
    #[error("{what}: no answer after {attempts} attempts ({reason})")]
    Unreachable {
        /// The call.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The last transport error.
        reason: String,
    },
    /// The answer's body is larger than the call's cap ([`MAX_BODY_BYTES`] unless the
    /// call says otherwise).
    #[error("{what}: the answer is larger than {max} bytes")]
    TooLarge {
        /// The call.
        what: String,
        /// The cap, bytes.
        max: usize,
    },
}

/// Sends the request `make` builds, again after each retryable failure as `policy`
/// decides, until `deadline`. Returns the last answer: a success, a status that is not
/// retried, or the last retryable one when the policy gives up.
pub async fn send(
    policy: &RetryPolicy,
    deadline: Option<Instant>,
    what: &str,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Answer, HttpError> {
    send_capped(policy, deadline, what, make, |_| None).await
}

/// As [`send`], reading a body of up to `max_body` bytes instead of [`MAX_BODY_BYTES`]
/// (a Worker's modules, downloaded to be uploaded again).
pub async fn send_large(
    policy: &RetryPolicy,
    deadline: Option<Instant>,
    what: &str,
    max_body: usize,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Answer, HttpError> {
    send_inner(policy, deadline, what, max_body, make, |_| None).await
}

/// As [`send`], where `cap` may lower the number of attempts for a given answer (the
/// provider's `PREDICTION_FAILED` is worth one retry, not the policy's three).
pub async fn send_capped(
    policy: &RetryPolicy,
    deadline: Option<Instant>,
    what: &str,
    make: impl Fn() -> reqwest::RequestBuilder,
    cap: impl Fn(&Answer) -> Option<u32>,
) -> Result<Answer, HttpError> {
    send_inner(policy, deadline, what, MAX_BODY_BYTES, make, cap).await
}

async fn send_inner(
    policy: &RetryPolicy,
    deadline: Option<Instant>,
    what: &str,
    max_body: usize,
    make: impl Fn() -> reqwest::RequestBuilder,
    cap: impl Fn(&Answer) -> Option<u32>,
) -> Result<Answer, HttpError> {
    let make = &make;
    let cap = &cap;
    let outcome = crate::retry::retrying(policy, deadline, what, None, |attempts| async move {
        let answer = match make().send().await {
            Ok(resp) => read(resp, what, attempts, max_body).await,
            Err(e) => {
                let reason = e.without_url().to_string();
                return Err(Retryable {
                    status: None,
                    retry_after: None,
                    reason: reason.clone(),
                    last: Err(HttpError::Unreachable {
                        what: what.to_owned(),
                        attempts,
                        reason,
                    }),
                });
            }
        };
        let answer = answer.map_err(|e| Retryable {
            status: None,
            retry_after: None,
            reason: e.to_string(),
            last: Err(e),
        });
        match answer {
            // A body over the cap is final: a retry reads the same body.
            Err(Retryable {
                last: Err(e @ HttpError::TooLarge { .. }),
                ..
            }) => Ok(Err(e)),
            Err(r) => Err(r),
            Ok(a) if a.is_success() => Ok(Ok(a)),
            Ok(a) if cap(&a).is_some_and(|max| attempts >= max) => Ok(Ok(a)),
            Ok(a) => Err(Retryable {
                status: Some(a.status),
                retry_after: a.retry_after.clone(),
                reason: format!("HTTP {}", a.status),
                last: Ok(a),
            }),
        }
    })
    .await;
    match outcome {
        Ok(done) => done,
        Err(gave_up) => gave_up.last,
    }
}

async fn read(
    resp: reqwest::Response,
    what: &str,
    attempts: u32,
    max_body: usize,
) -> Result<Answer, HttpError> {
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let headers = resp.headers().clone();
    if resp.content_length().is_some_and(|n| n > max_body as u64) {
        return Err(HttpError::TooLarge {
            what: what.to_owned(),
            max: max_body,
        });
    }
    let mut body = Vec::new();
    let mut resp = resp;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max_body {
                    return Err(HttpError::TooLarge {
                        what: what.to_owned(),
                        max: max_body,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            // A body cut short still carries its status; what was read is kept.
            Err(_) => break,
        }
    }
    Ok(Answer {
        status,
        retry_after,
        headers,
        body,
        attempts,
    })
}

/// The raw `Retry-After` value among `headers`, if present and text: delay-seconds or an
/// HTTP-date (RFC 9110 section 10.2.3), judged by the core's
/// [`RetryPolicy`](hookvault_core::retry::RetryPolicy), which reads both forms.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A client for API calls: `timeout` per attempt, no redirects (an API that redirects is
/// misconfigured, and a redirect could carry the key elsewhere).
pub fn client(timeout: Duration) -> reqwest::Client {
    client_builder(timeout).build().unwrap_or_default()
}

/// The builder behind [`client`], for a caller that changes one thing.
pub fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
}
