//! The edge's configuration, read from Worker vars and secrets.
//!
//! | name | kind | default | meaning |
//! |---|---|---|---|
//! | `WEBHOOK_SECRETS` | secret | — | the key ring: a JSON array `[{"id","secret","slot","not_after"}, …]` newest first (one ring for every provider), or an object `{"provider": [ … ], …}`, or one bare secret |
//! | `PROVIDERS` | var | `{"skytells":"skytells"}` | provider name (the `/webhooks/{provider}` segment) → scheme |
//! | `SQS_QUEUE_URL` | var | — | the queue; a `.fifo` URL gets group and deduplication ids |
//! | `AWS_REGION` | var | — | the queue's region |
//! | `SQS_ENDPOINT` | var | `https://sqs.{region}.amazonaws.com/` | endpoint override (the local stack) |
//! | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` | secret | — | the send-only IAM user |
//! | `AWS_SESSION_TOKEN` | secret | none | for temporary credentials |
//! | `MAX_BODY_BYTES` | var | 26214400 (25 MiB) | the hard cap: larger bodies get 413, before verification; at most 33554432 (32 MiB, see [`MAX_BODY_LIMIT`]) |
//! | `SQS_MAX_MESSAGE_BYTES` | var | 1048576 (1 MiB) | the queue's `MaximumMessageSize`; a body whose envelope would be larger goes by claim check; at most 1048576 |
//! | `CLAIM_CHECK_BUCKET` | var | none | the bucket large bodies are written to (`raw/{sha256}`) before their envelope is queued; without it the cap is what fits in one message (about 770 KB) |
//! | `CLAIM_CHECK_TIMEOUT_MS` | var | 30000 | how long each claim-check `PutObject` attempt waits for S3 to take the body (a 25 MiB body in 30 s needs about 7 Mbit/s from the Cloudflare location to the region) |
//! | `S3_ENDPOINT` | var | `https://{bucket}.s3.{region}.amazonaws.com/` | endpoint override, path style (the local stack) |
//! | `SPOOL_BUCKET` | var | `CLAIM_CHECK_BUCKET` | where an envelope SQS did not take is written (`spool/{provider}/{body_sha256}`, create-only) so the webhook is still answered 202; none: 503 as before |
//! | `SPOOL_REGION` | var | `AWS_REGION` | the spool bucket's region (it may be another than the queue's) |
//! | `SPOOL_ENDPOINT` | var | `S3_ENDPOINT`, else `https://{bucket}.s3.{SPOOL_REGION}.amazonaws.com/` | endpoint override, path style |
//! | `SPOOL_TIMEOUT_MS` | var | 5000 | how long the spool's first `PutObject` attempt waits for S3 (retries: within what is left of `RETRY_BUDGET_MS`) |
//! | `SIGNATURE_TOLERANCE_SECS` | var | 300 | timestamp tolerance (Standard Webhooks, Stripe) |
//! | `SQS_TIMEOUT_MS` | var | 5000 | how long each `SendMessage` attempt waits for SQS |
//! | `RETRY_BUDGET_MS` | var | 10000 | the request's time budget for retries, counted from its arrival: a `SendMessage` or claim-check `PutObject` that failed for a reason a retry can fix (throttling, 5xx, no answer) is retried with jittered back-off while a retry still fits in it; 0 turns retries off; at most 60000 ([`MAX_RETRY_BUDGET_MS`]) |
//! | `RETRY_AFTER_SECS` | var | 10 | `Retry-After` on a 503 |

use std::collections::BTreeMap;

use hookvault_core::keyring::KeySpec;
use hookvault_core::retry::RetryPolicy;
use hookvault_core::{KeyRing, Scheme};
use serde::Deserialize;

use crate::s3::ClaimCheck;
use crate::sigv4::PostSigner;
use crate::sqs::SqsTarget;

/// The default body cap: 25 MiB.
pub const DEFAULT_MAX_BODY: usize = 25 * 1024 * 1024;

/// The largest `MAX_BODY_BYTES` accepted: 32 MiB. Cloudflare takes request bodies up to
/// 100 MB (Free and Pro plans, <https://developers.cloudflare.com/workers/platform/limits/#request-limits>),
/// but a Worker isolate has 128 MB of memory, and the edge holds a body in the runtime (the
/// copy WebCrypto hashes and `fetch` sends to S3) and in WASM memory, which grows to about
/// twice the largest body and never shrinks (measured with `hookvault-dev
/// bench-claim-check --mb 25`: 51 MB of WASM memory for 25 MB bodies, docs/benchmarks.md).
/// 32 MiB bodies stay under 128 MB that way; 50 MiB would not.
pub const MAX_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// SQS's largest message: 1 MiB (raised from 256 KiB in 2025;
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>).
pub const SQS_MESSAGE_LIMIT: usize = 1_048_576;

/// The largest `RETRY_BUDGET_MS`: 60 s. A retry resends the request as first signed, and
/// a SigV4 signature is valid for five minutes
/// (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html>): a claim
/// check's 30 s and a minute of retries stay well within it.
pub const MAX_RETRY_BUDGET_MS: u32 = 60_000;

/// One provider the edge accepts webhooks from.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The name in the path.
    pub name: String,
    /// Its signature scheme.
    pub scheme: Scheme,
    /// Its key ring.
    pub ring: KeyRing,
}

/// Everything the edge needs, parsed once per isolate.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// The providers, by name.
    pub providers: Vec<Provider>,
    /// Where and how to send.
    pub sqs: SqsTarget,
    /// `sqs.signer()`, made once: it keeps the day's signing key between requests.
    pub sqs_signer: Option<PostSigner>,
    /// Where bodies too large for one message go, if configured.
    pub claim_check: Option<ClaimCheck>,
    /// Where envelopes SQS did not take go (`SPOOL_BUCKET`, by default the claim-check
    /// bucket), if any.
    pub spool: Option<ClaimCheck>,
    /// The spool's `PutObject` timeout, milliseconds.
    pub spool_timeout_ms: u32,
    /// Body cap, bytes: `MAX_BODY_BYTES`, or, without a claim-check bucket, the largest
    /// body that fits in one message.
    pub max_body: usize,
    /// Largest queue message, bytes.
    pub max_message: usize,
    /// Timestamp tolerance, seconds.
    pub tolerance: u64,
    /// SQS timeout, milliseconds.
    pub sqs_timeout_ms: u32,
    /// S3 timeout for a claim-checked body, milliseconds.
    pub claim_check_timeout_ms: u32,
    /// The request's time budget for retries, milliseconds from its arrival
    /// (`RETRY_BUDGET_MS`).
    pub retry_budget_ms: u32,
    /// How writes are retried within the budget ([`crate::flow::retry_policy`]).
    pub retry: RetryPolicy,
    /// `Retry-After` on 503, seconds.
    pub retry_after_secs: u32,
}

/// A configuration problem. Names the variable, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// A variable does not parse.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Secrets {
    Shared(Vec<KeySpec>),
    PerProvider(BTreeMap<String, Vec<KeySpec>>),
}

impl EdgeConfig {
    /// Reads the configuration through `get` (a var or secret by name; `None` if unset).
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let need = |name: &'static str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let invalid = |name: &'static str, reason: String| ConfigError::Invalid { name, reason };
        let num = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| invalid(name, "expected a whole number".into())),
            }
        };

        let providers: BTreeMap<String, String> =
            match get("PROVIDERS").filter(|v| !v.trim().is_empty()) {
                None => BTreeMap::from([("skytells".to_owned(), "skytells".to_owned())]),
                Some(v) => serde_json::from_str(&v).map_err(|e| {
                    invalid(
                        "PROVIDERS",
                        format!("expected {{\"name\": \"scheme\", …}}: {e}"),
                    )
                })?,
            };
        let raw_secrets = need("WEBHOOK_SECRETS")?;
        let trimmed = raw_secrets.trim();
        let secrets = if trimmed.starts_with('[') || trimmed.starts_with('{') {
            // Errors name the position only: serde's message could quote a secret.
            Some(serde_json::from_str::<Secrets>(trimmed).map_err(|e| {
                invalid(
                    "WEBHOOK_SECRETS",
                    format!("not a key ring (line {}, column {})", e.line(), e.column()),
                )
            })?)
        } else {
            None
        };
        let mut out = Vec::with_capacity(providers.len());
        for (name, scheme) in providers {
            // The name is a path segment, a log field, an SQS attribute and an S3 key
            // segment: a plain token keeps it safe in all of them.
            if name.is_empty()
                || name.len() > 64
                || !name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            {
                return Err(invalid(
                    "PROVIDERS",
                    format!("provider name {name:?} is not 1 to 64 of A-Z a-z 0-9 - _"),
                ));
            }
            let scheme: Scheme =
                scheme
                    .parse()
                    .map_err(|e: hookvault_core::scheme::UnknownScheme| {
                        invalid("PROVIDERS", e.to_string())
                    })?;
            let ring = match &secrets {
                None => KeyRing::single(scheme, trimmed),
                Some(Secrets::Shared(specs)) => KeyRing::from_specs(scheme, specs),
                Some(Secrets::PerProvider(map)) => {
                    let specs = map.get(&name).ok_or_else(|| {
                        invalid(
                            "WEBHOOK_SECRETS",
                            format!("no key ring for provider {name:?}"),
                        )
                    })?;
                    KeyRing::from_specs(scheme, specs)
                }
            }
            .map_err(|e| invalid("WEBHOOK_SECRETS", format!("provider {name:?}: {e}")))?;
            out.push(Provider { name, scheme, ring });
        }

        let region = need("AWS_REGION")?;
        let sqs = SqsTarget {
            queue_url: need("SQS_QUEUE_URL")?,
            endpoint: get("SQS_ENDPOINT")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| format!("https://sqs.{region}.amazonaws.com/")),
            region,
            access_key_id: need("AWS_ACCESS_KEY_ID")?,
            secret_access_key: need("AWS_SECRET_ACCESS_KEY")?,
            session_token: get("AWS_SESSION_TOKEN").filter(|v| !v.is_empty()),
        };
        let small = |name, v: u64| u32::try_from(v).map_err(|_| invalid(name, "too large".into()));
        let size = |name, v: u64, max: usize| {
            usize::try_from(v)
                .ok()
                .filter(|v| *v <= max && *v > 0)
                .ok_or_else(|| invalid(name, format!("expected 1 to {max}")))
        };
        let max_message = size(
            "SQS_MAX_MESSAGE_BYTES",
            num("SQS_MAX_MESSAGE_BYTES", SQS_MESSAGE_LIMIT as u64)?,
            SQS_MESSAGE_LIMIT,
        )?;
        let set = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let s3_endpoint = set("S3_ENDPOINT");
        let claim_check = set("CLAIM_CHECK_BUCKET")
            .map(|bucket| ClaimCheck::new(bucket.trim(), &sqs.region, s3_endpoint.as_deref()));
        let spool = set("SPOOL_BUCKET")
            .or_else(|| set("CLAIM_CHECK_BUCKET"))
            .map(|bucket| {
                let region = set("SPOOL_REGION").unwrap_or_else(|| sqs.region.clone());
                let endpoint = set("SPOOL_ENDPOINT").or_else(|| s3_endpoint.clone());
                ClaimCheck::new(bucket.trim(), region.trim(), endpoint.as_deref())
            });
        let mut max_body = size(
            "MAX_BODY_BYTES",
            num("MAX_BODY_BYTES", DEFAULT_MAX_BODY as u64)?,
            MAX_BODY_LIMIT,
        )?;
        if claim_check.is_none() {
            // Without a bucket, a body must fit in one message: the cap is refused before
            // verification rather than an authentic event after it.
            max_body = max_body.min(largest_inline_body(max_message));
        }
        Ok(EdgeConfig {
            providers: out,
            sqs_signer: sqs.signer(),
            sqs,
            claim_check,
            spool,
            spool_timeout_ms: small("SPOOL_TIMEOUT_MS", num("SPOOL_TIMEOUT_MS", 5_000)?)?,
            max_body,
            max_message,
            tolerance: num(
                "SIGNATURE_TOLERANCE_SECS",
                hookvault_core::scheme::DEFAULT_TOLERANCE_SECS,
            )?,
            sqs_timeout_ms: small("SQS_TIMEOUT_MS", num("SQS_TIMEOUT_MS", 5_000)?)?,
            claim_check_timeout_ms: small(
                "CLAIM_CHECK_TIMEOUT_MS",
                num("CLAIM_CHECK_TIMEOUT_MS", 30_000)?,
            )?,
            retry_budget_ms: small("RETRY_BUDGET_MS", num("RETRY_BUDGET_MS", 10_000)?).and_then(
                |v| {
                    (v <= MAX_RETRY_BUDGET_MS).then_some(v).ok_or_else(|| {
                        invalid(
                            "RETRY_BUDGET_MS",
                            format!("expected 0 to {MAX_RETRY_BUDGET_MS}"),
                        )
                    })
                },
            )?,
            retry: crate::flow::retry_policy(),
            retry_after_secs: small("RETRY_AFTER_SECS", num("RETRY_AFTER_SECS", 10)?)?,
        })
    }

    /// The provider named `name`.
    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }
}

/// The largest body carried inline in a message of `max_message` bytes
/// (`hookvault_core::envelope::needs_claim_check`'s threshold).
pub fn largest_inline_body(max_message: usize) -> usize {
    let room = max_message.saturating_sub(hookvault_core::envelope::ENVELOPE_RESERVE);
    room / 4 * 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = [
            ("WEBHOOK_SECRETS", "s3cr3t-value"),
            ("SQS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/1/q"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret-value"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in extra {
            m.insert((*k).to_owned(), (*v).to_owned());
        }
        m
    }

    fn load(m: &HashMap<String, String>) -> Result<EdgeConfig, ConfigError> {
        EdgeConfig::from_vars(&|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_to_one_skytells_provider_and_the_regional_endpoint() {
        let c = load(&vars(&[])).unwrap();
        assert_eq!(c.providers.len(), 1);
        assert_eq!(c.provider("skytells").unwrap().scheme, Scheme::Skytells);
        assert_eq!(c.sqs.endpoint, "https://sqs.eu-west-1.amazonaws.com/");
        // The regional endpoint is signed with the day's key kept (crate::sigv4).
        assert_eq!(
            c.sqs_signer.as_ref().map(PostSigner::url),
            Some("https://sqs.eu-west-1.amazonaws.com/")
        );
        // No claim-check bucket: the cap is what fits in one message.
        assert_eq!(
            (c.max_body, c.max_message, c.tolerance, c.sqs_timeout_ms),
            (largest_inline_body(1_048_576), 1_048_576, 300, 5_000)
        );
        assert!(!hookvault_core::envelope::needs_claim_check(
            c.max_body,
            c.max_message
        ));
        assert!(hookvault_core::envelope::needs_claim_check(
            c.max_body + 3,
            c.max_message
        ));
        assert!(c.claim_check.is_none());
        // The claim check has its own timeout; retries have a budget.
        assert_eq!(
            (c.claim_check_timeout_ms, c.retry_budget_ms),
            (30_000, 10_000)
        );
        let c = load(&vars(&[
            ("CLAIM_CHECK_TIMEOUT_MS", "45000"),
            ("RETRY_BUDGET_MS", "0"),
        ]))
        .unwrap();
        assert_eq!((c.claim_check_timeout_ms, c.retry_budget_ms), (45_000, 0));
        assert!(matches!(
            load(&vars(&[("RETRY_BUDGET_MS", "60001")])),
            Err(ConfigError::Invalid {
                name: "RETRY_BUDGET_MS",
                ..
            })
        ));
    }

    #[test]
    fn a_claim_check_bucket_lifts_the_cap_to_max_body_bytes() {
        let c = load(&vars(&[("CLAIM_CHECK_BUCKET", "archive")])).unwrap();
        assert_eq!(c.max_body, DEFAULT_MAX_BODY);
        assert_eq!(
            c.claim_check.unwrap().object_url("raw/x"),
            "https://archive.s3.eu-west-1.amazonaws.com/raw/x"
        );
        let c = load(&vars(&[
            ("CLAIM_CHECK_BUCKET", "archive"),
            ("S3_ENDPOINT", "http://127.0.0.1:9/"),
            ("MAX_BODY_BYTES", "33554432"),
        ]))
        .unwrap();
        assert_eq!(c.max_body, MAX_BODY_LIMIT);
        assert_eq!(
            c.claim_check.unwrap().object_url("raw/x"),
            "http://127.0.0.1:9/archive/raw/x"
        );
        for (name, value) in [
            ("MAX_BODY_BYTES", "33554433"),
            ("MAX_BODY_BYTES", "0"),
            ("SQS_MAX_MESSAGE_BYTES", "1048577"),
        ] {
            assert!(
                matches!(load(&vars(&[(name, value)])), Err(ConfigError::Invalid { name: n, .. }) if n == name),
                "{name}={value}"
            );
        }
    }

    #[test]
    fn the_spool_defaults_to_the_claim_check_bucket_and_may_be_elsewhere() {
        let c = load(&vars(&[])).unwrap();
        assert!(c.spool.is_none(), "no bucket, no spool");
        let c = load(&vars(&[("CLAIM_CHECK_BUCKET", "archive")])).unwrap();
        let spool = c.spool.unwrap();
        assert_eq!(
            (spool.bucket.as_str(), spool.region.as_str()),
            ("archive", "eu-west-1")
        );
        assert_eq!(c.spool_timeout_ms, 5_000);
        let c = load(&vars(&[
            ("CLAIM_CHECK_BUCKET", "archive"),
            ("SPOOL_BUCKET", "spool-us"),
            ("SPOOL_REGION", "us-east-2"),
            ("SPOOL_TIMEOUT_MS", "3000"),
        ]))
        .unwrap();
        let spool = c.spool.unwrap();
        assert_eq!(
            spool.object_url("spool/x"),
            "https://spool-us.s3.us-east-2.amazonaws.com/spool/x"
        );
        assert_eq!(
            (spool.region.as_str(), c.spool_timeout_ms),
            ("us-east-2", 3_000)
        );
        // The local stack: S3_ENDPOINT serves the spool too, unless SPOOL_ENDPOINT says.
        let c = load(&vars(&[
            ("SPOOL_BUCKET", "spool"),
            ("S3_ENDPOINT", "http://127.0.0.1:9/"),
        ]))
        .unwrap();
        assert_eq!(
            c.spool.unwrap().object_url("spool/x"),
            "http://127.0.0.1:9/spool/spool/x"
        );
        let c = load(&vars(&[
            ("SPOOL_BUCKET", "spool"),
            ("S3_ENDPOINT", "http://127.0.0.1:9/"),
            ("SPOOL_ENDPOINT", "http://127.0.0.1:10"),
        ]))
        .unwrap();
        assert_eq!(
            c.spool.unwrap().object_url("spool/x"),
            "http://127.0.0.1:10/spool/spool/x"
        );
    }

    #[test]
    fn session_token_and_signature_tolerance_are_read() {
        let c = load(&vars(&[
            ("AWS_SESSION_TOKEN", "session"),
            ("SIGNATURE_TOLERANCE_SECS", "60"),
        ]))
        .unwrap();
        assert_eq!(c.sqs.session_token.as_deref(), Some("session"));
        assert_eq!(c.tolerance, 60);
        assert!(load(&vars(&[])).unwrap().sqs.session_token.is_none());
    }

    #[test]
    fn per_provider_rings_and_schemes() {
        let c = load(&vars(&[
            ("PROVIDERS", r#"{"skytells":"skytells","gh":"github"}"#),
            ("WEBHOOK_SECRETS", r#"{"skytells":[{"secret":"a"}],"gh":[{"id":"g2","secret":"b"},{"id":"g1","secret":"c","not_after":5}]}"#),
        ]))
        .unwrap();
        assert_eq!(c.provider("gh").unwrap().ring.keys().len(), 2);
        assert_eq!(c.provider("gh").unwrap().scheme, Scheme::GitHub);
    }

    #[test]
    fn errors_name_the_variable_never_the_value() {
        let e = load(&vars(&[(
            "WEBHOOK_SECRETS",
            r#"[{"secret":"leaky-secret""#,
        )]))
        .unwrap_err();
        assert!(!e.to_string().contains("leaky-secret"), "{e}");
        assert!(e.to_string().starts_with("WEBHOOK_SECRETS"), "{e}");
        let mut m = vars(&[]);
        m.remove("AWS_SECRET_ACCESS_KEY");
        assert_eq!(
            load(&m).unwrap_err(),
            ConfigError::Missing("AWS_SECRET_ACCESS_KEY")
        );
        for bad in [
            r#"{"a/b":"github"}"#,
            r#"{"":"github"}"#,
            r#"{"sky tells":"skytells"}"#,
        ] {
            assert!(
                matches!(
                    load(&vars(&[("PROVIDERS", bad)])),
                    Err(ConfigError::Invalid {
                        name: "PROVIDERS",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            load(&vars(&[("PROVIDERS", r#"{"x":"svix"}"#)])),
            Err(ConfigError::Invalid {
                name: "PROVIDERS",
                ..
            })
        ));
        assert!(matches!(
            load(&vars(&[("MAX_BODY_BYTES", "lots")])),
            Err(ConfigError::Invalid {
                name: "MAX_BODY_BYTES",
                ..
            })
        ));
        assert!(matches!(
            load(&vars(&[
                ("PROVIDERS", r#"{"a":"skytells","b":"github"}"#),
                ("WEBHOOK_SECRETS", r#"{"a":[{"secret":"x"}]}"#)
            ])),
            Err(ConfigError::Invalid {
                name: "WEBHOOK_SECRETS",
                ..
            })
        ));
    }
}
