//! The edge's probe route, which proves that the running edge accepts a key, and the
//! convergence rule `setSecret` applies before the provider is told about a new key.
//!
//! **Why probes, and why more than one.** Cloudflare deploys a new version of the Worker
//! to every location, but locations converge over seconds: for a while some connections
//! may still reach the version before the update. One accepted probe proves only that
//! the connection it used reached the new version. So `setSecret` waits for
//! [`Convergence::probes`] consecutive probes, each on a fresh connection, that accept
//! the key and span at least [`Convergence::soak`]; one refusal starts the count again.
//! The edge keeps accepting the current key throughout (every ring the rotator writes
//! holds it), so the wait costs no refusal either way: the provider keeps signing with
//! the current key until the edge has converged on the new one. Locations that converge
//! within the soak refuse nothing; one that lags longer than the soak still would.

use std::time::{Duration, Instant};

use hookvault_aws::http::{self, Answer};
use hookvault_core::retry::RetryPolicy;
use hookvault_core::scheme::SignParams;

use crate::error::RotationError;
use crate::managed::WebhookSecret;
use crate::Deadline;

/// The gap between probes while the edge still refuses the key.
const REFUSED_GAP: Duration = Duration::from_millis(500);
/// The least gap between the probes of an accepting streak.
const MIN_STREAK_GAP: Duration = Duration::from_millis(250);

/// When the edge counts as serving a key: [`Convergence::probes`] consecutive accepting
/// probes spanning at least [`Convergence::soak`], the first of them within
/// [`Convergence::within`] of the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Convergence {
    /// Consecutive accepting probes required (`EDGE_CONVERGENCE_PROBES`, at least 1).
    pub probes: u32,
    /// The least time from the first to the last of them (`EDGE_SOAK_SECS`).
    pub soak: Duration,
    /// How long the edge may take to accept the key at all (`EDGE_PROPAGATION_SECS`).
    pub within: Duration,
    /// Time kept free before the invocation's deadline for what follows the wait (the
    /// provider call): a probe in flight may take a whole HTTP timeout.
    pub reserve: Duration,
}

impl Convergence {
    /// The gap between the probes of a streak: the soak spread evenly over them.
    pub fn gap(&self) -> Duration {
        match self.probes {
            // One probe cannot span a soak: a second one confirms at its end.
            0 | 1 => self.soak.max(MIN_STREAK_GAP),
            n => (self.soak / (n - 1)).max(MIN_STREAK_GAP),
        }
    }

    /// The least time a streak of `probes` probes takes.
    pub fn least_time(&self) -> Duration {
        self.soak.max(self.gap() * self.probes.saturating_sub(1))
    }
}

/// What [`Probe::wait_converged`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Converged {
    /// Probes sent in all.
    pub probes_sent: u32,
    /// Refusals after an accepting probe (a location still on an older version).
    pub relapses: u32,
    /// From the first probe to the last.
    pub waited: Duration,
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
        // One attempt: the caller ([`Probe::wait_converged`]) loops on its own deadline.
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

    /// Probes until the edge has converged on `key` as `rule` says, and never past
    /// `deadline`. Fails at once when the deadline leaves less than the streak's least
    /// time, and as soon as a streak can no longer finish in time, with
    /// [`RotationError::NotConverged`].
    pub async fn wait_converged(
        &self,
        key: &WebhookSecret,
        rule: &Convergence,
        deadline: Deadline,
    ) -> Result<Converged, RotationError> {
        let start = Instant::now();
        // Checked: the settings come from the environment.
        let far = start + Duration::from_secs(86_400);
        let own_limit = rule
            .within
            .checked_add(rule.least_time())
            .and_then(|d| start.checked_add(d))
            .map_or(far, |t| t.min(far));
        let give_up = deadline
            .map(|d| d.checked_sub(rule.reserve).unwrap_or(start))
            .map_or(own_limit, |d| d.min(own_limit));
        let by_deadline = give_up < own_limit;
        let not_converged = |streak: u32, sent: u32, last: String| RotationError::NotConverged {
            key_id: key.key_id.clone(),
            probes: rule.probes,
            soak_secs: rule.soak.as_secs(),
            best_streak: streak,
            probes_sent: sent,
            waited_secs: start.elapsed().as_secs(),
            limit: if by_deadline {
                format!(
                    "the invocation's deadline, less {} s kept for the provider call",
                    rule.reserve.as_secs()
                )
            } else {
                format!(
                    "EDGE_PROPAGATION_SECS + the streak's least time ({} s)",
                    own_limit.duration_since(start).as_secs()
                )
            },
            last,
        };
        if start + rule.least_time() > give_up {
            return Err(not_converged(
                0,
                0,
                "no probe sent: too little time left".into(),
            ));
        }
        let (mut sent, mut relapses, mut best) = (0u32, 0u32, 0u32);
        // The first accepting probe of the current streak, and its length.
        let mut streak: Option<(Instant, u32)> = None;
        loop {
            sent += 1;
            let result = self.check(key, crate::unix_now()).await;
            let now = Instant::now();
            let last = match &result {
                Ok(r) if r.accepts(key) => {
                    let (since, n) = streak.map_or((now, 1), |(since, n)| (since, n + 1));
                    streak = Some((since, n));
                    best = best.max(n);
                    if n >= rule.probes && now.duration_since(since) >= rule.soak {
                        return Ok(Converged {
                            probes_sent: sent,
                            relapses,
                            waited: now.duration_since(start),
                        });
                    }
                    None
                }
                Ok(r) => Some(r.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(last) = &last {
                if let Some((_, n)) = streak.take() {
                    relapses += 1;
                    tracing::warn!(key = %key.key_id, accepted_before = n, answer = %last, "the edge refused the key after accepting it: a location still serves an older version; counting again");
                }
            }
            // The earliest the streak can finish: both its count and its soak.
            let (wait, finish) = match streak {
                Some((since, n)) => {
                    let left = rule.gap() * rule.probes.saturating_sub(n);
                    (rule.gap(), (now + left).max(since + rule.soak))
                }
                None => (REFUSED_GAP, now + REFUSED_GAP + rule.least_time()),
            };
            if finish > give_up {
                return Err(not_converged(
                    best,
                    sent,
                    last.unwrap_or_else(|| "accepted".into()),
                ));
            }
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe route that answers with the statuses of `script` in turn (the last one
    /// forever): 204 names key `k1`.
    async fn edge(script: Vec<u16>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((mut conn, _)) = listener.accept().await {
                let status = script[n.min(script.len() - 1)];
                n += 1;
                let mut buf = vec![0u8; 65536];
                let _ = conn.read(&mut buf).await;
                let head = if status == 204 {
                    "HTTP/1.1 204 No Content\r\nx-hookvault-key: k1\r\nconnection: close\r\n\r\n"
                        .to_owned()
                } else {
                    let body = r#"{"error":"bad_signature"}"#;
                    format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
                };
                let _ = conn.write_all(head.as_bytes()).await;
            }
        });
        url
    }

    fn key() -> WebhookSecret {
        WebhookSecret {
            scheme: hookvault_core::scheme::Scheme::Skytells,
            key_id: "k1".into(),
            secret: "aa".repeat(32),
            created_at: None,
        }
    }

    fn quick(probes: u32, within_ms: u64) -> Convergence {
        Convergence {
            probes,
            soak: Duration::ZERO,
            within: Duration::from_millis(within_ms),
            reserve: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn a_refusal_after_acceptances_starts_the_count_again() {
        // accept, accept, refuse (a lagging location), then accept for good.
        let url = edge(vec![204, 204, 401, 204]).await;
        let probe = Probe::new(&url, "skytells", Duration::from_secs(2));
        let seen = probe
            .wait_converged(&key(), &quick(3, 2_000), None)
            .await
            .unwrap();
        assert_eq!(seen.relapses, 1);
        assert_eq!(seen.probes_sent, 6, "three after the relapse");
    }

    #[tokio::test]
    async fn it_gives_up_without_a_streak_and_before_the_deadline_reserve() {
        let url = edge(vec![401]).await;
        let probe = Probe::new(&url, "skytells", Duration::from_secs(2));
        let e = probe
            .wait_converged(&key(), &quick(3, 1_000), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("best streak 0") && e.contains("401"), "{e}");
        // A deadline that leaves less than the reserve: no probe at all.
        let soon = Some(Instant::now() + Duration::from_millis(500));
        let e = probe
            .wait_converged(&key(), &quick(3, 1_000), soon)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("no probe sent") && e.contains("deadline"), "{e}");
    }

    #[test]
    fn the_streak_spreads_its_probes_over_the_soak() {
        let rule = |probes, soak| Convergence {
            probes,
            soak: Duration::from_secs(soak),
            within: Duration::from_secs(30),
            reserve: Duration::from_secs(20),
        };
        assert_eq!(rule(5, 20).gap(), Duration::from_secs(5));
        assert_eq!(rule(5, 20).least_time(), Duration::from_secs(20));
        // No soak: the probes still come MIN_STREAK_GAP apart.
        assert_eq!(rule(5, 0).gap(), MIN_STREAK_GAP);
        assert_eq!(rule(5, 0).least_time(), MIN_STREAK_GAP * 4);
        assert_eq!(rule(1, 0).least_time(), Duration::ZERO);
        // One probe and a soak: confirmed once more at the soak's end, not every 250 ms.
        assert_eq!(rule(1, 30).gap(), Duration::from_secs(30));
        assert_eq!(rule(1, 30).least_time(), Duration::from_secs(30));
    }
}
