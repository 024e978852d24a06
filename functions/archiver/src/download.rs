//! Guarded downloads: every URL and every redirect through the core's URL guard, every
//! resolved address checked too (no DNS trick reaches 169.254.169.254), timeouts, a size
//! cap, and retries of 429/5xx with the core's policy within the Lambda's time (through
//! `hookvault_aws::retry::retrying`, the loop every HTTP call shares).
//!
//! * **Whole files only.** A download is a plain `GET` (no `Range`), so only `200 OK` and
//!   `203 Non-Authoritative Information` carry the whole file. `204 No Content`,
//!   `205 Reset Content` and `206 Partial Content` are refused as
//!   [`DownloadError::Incomplete`] (`OUTPUT_INCOMPLETE`): an empty or partial object is
//!   never stored as if it were the output. Any other 2xx is [`DownloadError::Status`].
//! * **No proxy.** The client is built with `no_proxy()`: `HTTP_PROXY`, `HTTPS_PROXY`
//!   and `ALL_PROXY` (which reqwest honours by default) are ignored, so a proxy can never
//!   take the connection and, with it, the address checks the guarded resolver makes:
//!   every connection goes straight to an address the guard accepted.
//! * **Bytes as served.** No decompression (`no_gzip`, `no_brotli`, `no_deflate`,
//!   `no_zstd`), whatever features the build enabled: a `Content-Encoding: gzip` output is
//!   stored, sized and hashed as the CDN sent it.
//! * **Inside the output window.** Retries back off briefly (0.5 s to 4 s,
//!   `RetryPolicy::downloads_in_window`) until the Lambda's deadline, the record's retry
//!   budget or the output's expiry ([`Downloader::open_within`]); a CDN still failing when
//!   the window closes is `OUTPUT_EXPIRED`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookvault_aws::http::retry_after;
use hookvault_aws::retry::{retrying, GaveUp, Retryable};
use hookvault_core::retry::{GiveUp, RetryPolicy};
use hookvault_core::url_guard::{GuardError, UrlGuard};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::ArchiverConfig;

/// How many redirects one download may follow.
pub const MAX_REDIRECTS: usize = 5;

/// Why an output could not be downloaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    /// 403, 404 or 410: the link has expired (or never existed). Permanent.
    #[error("the output link has expired (HTTP {0})")]
    Expired(u16),
    /// The CDN did not deliver (5xx, 429, no answer) and the provider's output window has
    /// closed ([`crate::window`]): the output is gone. Permanent (`OUTPUT_EXPIRED`).
    #[error("the CDN did not deliver before the output window closed ({0})")]
    WindowClosed(String),
    /// The URL, a redirect or a resolved address is not allowed. Permanent.
    #[error("download refused: {0}")]
    Refused(GuardError),
    /// Larger than the configured cap. Permanent.
    #[error("the output is larger than the {0}-byte cap")]
    TooLarge(u64),
    /// Another status a retry cannot fix. Permanent.
    #[error("the CDN answered HTTP {0}")]
    Status(u16),
    /// A 2xx answer to a plain `GET` that is not the whole file: 204 or 205 (no body) or
    /// 206 (a part). Permanent: nothing is stored.
    #[error("the CDN answered HTTP {0} {reason} to a plain GET: {what}, not the whole output; nothing was stored", reason = incomplete_reason(.0), what = incomplete_what(.0))]
    Incomplete(u16),
    /// Redirects without end. Permanent.
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    /// The CDN did not deliver, after the retries the time allowed. Transient: SQS
    /// redelivers the message later.
    #[error("the CDN is unavailable: {0}")]
    Unavailable(String),
}

impl DownloadError {
    /// True when a later redelivery may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, DownloadError::Unavailable(_))
    }

    /// The `error_id` written to `failure.json` for a permanent error.
    pub fn error_id(&self) -> &'static str {
        match self {
            DownloadError::Expired(_) | DownloadError::WindowClosed(_) => "OUTPUT_EXPIRED",
            DownloadError::Refused(_) => "OUTPUT_URL_REFUSED",
            DownloadError::TooLarge(_) => "OUTPUT_TOO_LARGE",
            DownloadError::Status(_) | DownloadError::TooManyRedirects => "OUTPUT_DOWNLOAD_FAILED",
            DownloadError::Incomplete(_) => "OUTPUT_INCOMPLETE",
            DownloadError::Unavailable(_) => "OUTPUT_UNAVAILABLE",
        }
    }
}

fn incomplete_reason(status: &u16) -> &'static str {
    match *status {
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        _ => "",
    }
}

fn incomplete_what(status: &u16) -> &'static str {
    match *status {
        206 => "a part of the file",
        _ => "no file at all",
    }
}

/// A resolver that refuses a name if any address it resolves to is not public.
#[derive(Debug, Clone)]
struct GuardedResolver {
    guard: Arc<UrlGuard>,
}

/// The resolver's refusal, found again in reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ResolveRefused(GuardError);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = Arc::clone(&self.guard);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            for a in &addrs {
                guard.check_ip(a.ip()).map_err(ResolveRefused)?;
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

fn refused_by_resolver(e: &reqwest::Error) -> Option<GuardError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(r) = err.downcast_ref::<ResolveRefused>() {
            return Some(r.0.clone());
        }
        source = err.source();
    }
    None
}

/// A response ready to stream.
#[derive(Debug)]
pub struct Download {
    /// The response: 200 or 203, the whole file.
    pub response: reqwest::Response,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
}

/// Downloads outputs through the guard.
#[derive(Debug, Clone)]
pub struct Downloader {
    client: reqwest::Client,
    guard: Arc<UrlGuard>,
    policy: RetryPolicy,
    max_bytes: u64,
    retries: Arc<std::sync::atomic::AtomicU64>,
}

impl Downloader {
    /// A downloader for `cfg`. The client follows no redirect by itself (each one goes
    /// through the guard in [`Downloader::open`]), resolves names through the guard, and
    /// uses no proxy, whatever `HTTP_PROXY`, `HTTPS_PROXY` or `ALL_PROXY` say.
    pub fn new(cfg: &ArchiverConfig) -> Result<Self, reqwest::Error> {
        let guard = Arc::new(cfg.guard.clone());
        let client = reqwest::Client::builder()
            // reqwest reads the proxy variables by default; a proxy would make the
            // connection (and the name resolution) on our behalf, out of the guard's reach.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver {
                guard: Arc::clone(&guard),
            }))
            // The bytes stored are the bytes the CDN served: no decompression, even if
            // another crate in the build turned on reqwest's gzip, brotli, deflate or zstd
            // feature (these methods exist whatever the features; a `Content-Encoding:
            // gzip` body is stored gzipped and hashed as served).
            .no_gzip()
            .no_brotli()
            .no_deflate()
            .no_zstd()
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .read_timeout(Duration::from_millis(cfg.read_timeout_ms))
            .user_agent(concat!("hookvault-archiver/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Downloader {
            client,
            guard,
            policy: RetryPolicy::downloads_in_window(),
            max_bytes: cfg.max_output_bytes,
            retries: Arc::default(),
        })
    }

    /// A downloader with another retry policy (tests make the back-off short).
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The size cap.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Opens `url`: follows redirects through the guard, retries what can be retried
    /// before `deadline`.
    pub async fn open(
        &self,
        url: &str,
        deadline: Option<Instant>,
    ) -> Result<Download, DownloadError> {
        self.open_within(url, deadline, None).await
    }

    /// [`Downloader::open`] inside the output window that closes at `window`: retries stop
    /// at `deadline` or `window`, whichever comes first, and a CDN that has not delivered
    /// when the window stopped them is [`DownloadError::WindowClosed`]. An attempt is made
    /// even after the window closed (the CDN may still have the file).
    pub async fn open_within(
        &self,
        url: &str,
        deadline: Option<Instant>,
        window: Option<Instant>,
    ) -> Result<Download, DownloadError> {
        let what = format!("download {}", redact(url));
        let window_binds = window.is_some_and(|w| deadline.is_none_or(|d| w <= d));
        let stop = match (deadline, window) {
            (Some(d), Some(w)) => Some(d.min(w)),
            (d, w) => d.or(w),
        };
        let outcome = retrying(
            &self.policy,
            stop,
            &what,
            Some(&self.retries),
            |_| async move {
                match self.attempt(url).await {
                    Ok(Ok(download)) => Ok(Ok(download)),
                    // Final: refused, expired, too large, incomplete.
                    Err(e) => Ok(Err(e)),
                    Ok(Err(failed)) => Err(Retryable {
                        status: failed.status(),
                        retry_after: failed.retry_after(),
                        reason: failed.to_string(),
                        last: (),
                    }),
                }
            },
        )
        .await;
        let outcome = match (outcome, window) {
            // Stopped because the next wait would pass the window's end: wait for it and
            // try once more there, so an output is never called expired early.
            (Err(gave_up), Some(w)) if window_binds && gave_up.why == GiveUp::Deadline => {
                tokio::time::sleep_until(tokio::time::Instant::from_std(w)).await;
                return match self.attempt(url).await {
                    Ok(Ok(download)) => Ok(download),
                    Err(e) => Err(e),
                    Ok(Err(failed)) => Err(DownloadError::WindowClosed(format!(
                        "{failed} at the window's end, after {} attempts before it",
                        gave_up.attempts
                    ))),
                };
            }
            (outcome, _) => outcome,
        };
        match outcome {
            Ok(done) => done,
            Err(GaveUp {
                why: GiveUp::NotRetryable(s),
                ..
            }) => Err(DownloadError::Status(s)),
            Err(gave_up)
                if window.is_some_and(|w| Instant::now() >= w)
                    || (window_binds && gave_up.why == GiveUp::Deadline) =>
            {
                Err(DownloadError::WindowClosed(format!(
                    "{}; {} attempts",
                    gave_up.reason, gave_up.attempts
                )))
            }
            Err(gave_up) => Err(DownloadError::Unavailable(format!(
                "{}; {}",
                gave_up.reason, gave_up.why
            ))),
        }
    }

    /// Retries made by this downloader (and its clones) since it was built: the
    /// archiver's `DownloadRetries` metric.
    pub fn retries(&self) -> u64 {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One attempt, redirects included. `Err` is final; `Ok(Err)` may be retried.
    async fn attempt(&self, url: &str) -> Result<Result<Download, Attempt>, DownloadError> {
        let mut current = self.guard.check(url).map_err(DownloadError::Refused)?;
        for _ in 0..=MAX_REDIRECTS {
            let resp = match self.client.get(current.clone()).send().await {
                Ok(r) => r,
                Err(e) => {
                    if let Some(g) = refused_by_resolver(&e) {
                        return Err(DownloadError::Refused(g));
                    }
                    return Ok(Err(Attempt::Transport(e.without_url().to_string())));
                }
            };
            let status = resp.status().as_u16();
            if resp.status().is_redirection() {
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(DownloadError::Status(status))?;
                let next = current
                    .join(location)
                    .map_err(|_| DownloadError::Refused(GuardError::Unparseable))?;
                current = self
                    .guard
                    .check(next.as_str())
                    .map_err(DownloadError::Refused)?;
                continue;
            }
            return match status {
                204..=206 => Err(DownloadError::Incomplete(status)),
                200 | 203 => {
                    if resp.content_length().is_some_and(|n| n > self.max_bytes) {
                        return Err(DownloadError::TooLarge(self.max_bytes));
                    }
                    let content_type = resp
                        .headers()
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    Ok(Ok(Download {
                        response: resp,
                        content_type,
                    }))
                }
                403 | 404 | 410 => Err(DownloadError::Expired(status)),
                // 201, 202, 207, 208, 226: not a file a plain GET should get.
                201..=299 => Err(DownloadError::Status(status)),
                _ => Ok(Err(Attempt::Status(status, retry_after(resp.headers())))),
            };
        }
        Err(DownloadError::TooManyRedirects)
    }
}

/// A failed attempt that the retry policy judges.
#[derive(Debug)]
enum Attempt {
    Status(u16, Option<String>),
    Transport(String),
}

impl Attempt {
    fn status(&self) -> Option<u16> {
        match self {
            Attempt::Status(s, _) => Some(*s),
            Attempt::Transport(_) => None,
        }
    }

    fn retry_after(&self) -> Option<String> {
        match self {
            Attempt::Status(_, ra) => ra.clone(),
            Attempt::Transport(_) => None,
        }
    }
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attempt::Status(s, _) => write!(f, "HTTP {s}"),
            Attempt::Transport(e) => write!(f, "{e}"),
        }
    }
}

/// A URL without its query string, for logs: CDN links carry their signature there.
pub fn redact(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// A name on the allow-list that resolves to a loopback address (here `localhost`,
    /// which /etc/hosts always has) is refused at resolution, not only by its spelling.
    #[tokio::test]
    async fn the_resolver_refuses_names_that_resolve_to_non_public_addresses() {
        let resolver = GuardedResolver {
            guard: Arc::new(UrlGuard::new(["localhost"])),
        };
        let err = resolver
            .resolve(Name::from_str("localhost").unwrap())
            .await
            .err()
            .expect("refused");
        assert!(err.downcast_ref::<ResolveRefused>().is_some(), "{err}");
        let open = GuardedResolver {
            guard: Arc::new(UrlGuard::new(["localhost"]).allow_loopback(true)),
        };
        assert!(open
            .resolve(Name::from_str("localhost").unwrap())
            .await
            .is_ok());
    }

    #[test]
    fn permanent_and_transient_errors_are_told_apart() {
        assert!(DownloadError::Unavailable("x".into()).is_transient());
        for e in [
            DownloadError::Expired(410),
            DownloadError::WindowClosed("HTTP 503".into()),
            DownloadError::Refused(GuardError::NoHost),
            DownloadError::TooLarge(1),
            DownloadError::Status(400),
            DownloadError::TooManyRedirects,
            DownloadError::Incomplete(206),
        ] {
            assert!(!e.is_transient(), "{e}");
        }
        assert_eq!(DownloadError::Expired(403).error_id(), "OUTPUT_EXPIRED");
        assert_eq!(
            DownloadError::WindowClosed("HTTP 503".into()).error_id(),
            "OUTPUT_EXPIRED"
        );
        assert_eq!(
            DownloadError::Incomplete(204).error_id(),
            "OUTPUT_INCOMPLETE"
        );
        assert_eq!(
            DownloadError::Incomplete(206).to_string(),
            "the CDN answered HTTP 206 Partial Content to a plain GET: a part of the file, \
             not the whole output; nothing was stored"
        );
        assert_eq!(
            DownloadError::Incomplete(204).to_string(),
            "the CDN answered HTTP 204 No Content to a plain GET: no file at all, \
             not the whole output; nothing was stored"
        );
        assert_eq!(
            redact("https://cdn/x.png?X-Amz-Signature=abc#f"),
            "https://cdn/x.png"
        );
    }
}
