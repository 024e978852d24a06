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
//! | `MAX_BODY_BYTES` | var | 200000 | larger bodies get 413 |
//! | `SQS_MAX_MESSAGE_BYTES` | var | 262144 | an envelope larger than this gets 413 |
//! | `SIGNATURE_TOLERANCE_SECS` | var | 300 | timestamp tolerance (Standard Webhooks, Stripe) |
//! | `SQS_TIMEOUT_MS` | var | 5000 | how long to wait for SQS before answering 503 |
//! | `RETRY_AFTER_SECS` | var | 10 | `Retry-After` on a 503 |

use std::collections::BTreeMap;

use hookvault_core::keyring::KeySpec;
use hookvault_core::{KeyRing, Scheme};
use serde::Deserialize;

use crate::sigv4::PostSigner;
use crate::sqs::SqsTarget;

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
    /// Body cap, bytes.
    pub max_body: usize,
    /// Largest envelope SQS takes, bytes.
    pub max_message: usize,
    /// Timestamp tolerance, seconds.
    pub tolerance: u64,
    /// SQS timeout, milliseconds.
    pub sqs_timeout_ms: u32,
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
        let size = |name, v: u64| usize::try_from(v).map_err(|_| invalid(name, "too large".into()));
        Ok(EdgeConfig {
            providers: out,
            sqs_signer: sqs.signer(),
            sqs,
            max_body: size("MAX_BODY_BYTES", num("MAX_BODY_BYTES", 200_000)?)?,
            max_message: size(
                "SQS_MAX_MESSAGE_BYTES",
                num("SQS_MAX_MESSAGE_BYTES", 262_144)?,
            )?,
            tolerance: num(
                "SIGNATURE_TOLERANCE_SECS",
                hookvault_core::scheme::DEFAULT_TOLERANCE_SECS,
            )?,
            sqs_timeout_ms: small("SQS_TIMEOUT_MS", num("SQS_TIMEOUT_MS", 5_000)?)?,
            retry_after_secs: small("RETRY_AFTER_SECS", num("RETRY_AFTER_SECS", 10)?)?,
        })
    }

    /// The provider named `name`.
    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }
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
        assert_eq!(
            (c.max_body, c.tolerance, c.sqs_timeout_ms),
            (200_000, 300, 5_000)
        );
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
