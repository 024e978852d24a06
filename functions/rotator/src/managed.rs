//! The JSON values of the secrets the rotator manages. The `kind` field picks the
//! rotation:
//!
//! ```json
//! {"kind":"webhook-signing","scheme":"skytells","key_id":"wh-20261125-1a2b3c4d","secret":"…"}
//! {"kind":"provider-api-key","key_id":"key_123","api_key":"sk-…"}
//! ```
//!
//! `key_id` labels a version in logs, in the edge's key ring and at the provider; the
//! secret itself is never printed (`Debug` leaves it out).

use hookvault_core::keyring::{KeySlot, KeySpec};
use hookvault_core::scheme::Scheme;
use serde::{Deserialize, Serialize};

use crate::error::RotationError;

/// A webhook signing secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSecret {
    /// The provider's signature scheme.
    pub scheme: Scheme,
    /// A label.
    pub key_id: String,
    /// The secret in the scheme's format.
    pub secret: String,
    /// Unix seconds it was made, when the rotator made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
}

/// A provider API key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The provider's id for the key (what revocation names).
    pub key_id: String,
    /// The key.
    pub api_key: String,
    /// Unix seconds it was minted, when the rotator minted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
}

/// A managed secret's value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Managed {
    /// `webhook-signing`.
    WebhookSigning(WebhookSecret),
    /// `provider-api-key`.
    ProviderApiKey(ApiKey),
}

impl std::fmt::Debug for Managed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Managed::WebhookSigning(w) => f
                .debug_struct("WebhookSigning")
                .field("scheme", &w.scheme)
                .field("key_id", &w.key_id)
                .finish_non_exhaustive(),
            Managed::ProviderApiKey(k) => f
                .debug_struct("ProviderApiKey")
                .field("key_id", &k.key_id)
                .finish_non_exhaustive(),
        }
    }
}

impl Managed {
    /// Parses a value; `secret` and `what` name it in the error.
    pub fn parse(value: &str, secret: &str, what: &str) -> Result<Self, RotationError> {
        let m: Managed =
            serde_json::from_str(value).map_err(|e| RotationError::bad_json(secret, what, &e))?;
        let bad = |reason: &str| RotationError::BadValue {
            secret: secret.to_owned(),
            what: what.to_owned(),
            reason: reason.to_owned(),
        };
        match &m {
            Managed::WebhookSigning(w) => {
                if w.key_id.is_empty() {
                    return Err(bad("key_id is empty"));
                }
                w.scheme
                    .decode_secret(&w.secret)
                    .map_err(|e| bad(&format!("the secret is not a {} secret: {e}", w.scheme)))?;
            }
            Managed::ProviderApiKey(k) => {
                if k.key_id.is_empty() || k.api_key.is_empty() {
                    return Err(bad("key_id and api_key must not be empty"));
                }
            }
        }
        Ok(m)
    }

    /// The JSON stored in Secrets Manager.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The version's label.
    pub fn key_id(&self) -> &str {
        match self {
            Managed::WebhookSigning(w) => &w.key_id,
            Managed::ProviderApiKey(k) => &k.key_id,
        }
    }

    /// The kind's name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Managed::WebhookSigning(_) => "webhook-signing",
            Managed::ProviderApiKey(_) => "provider-api-key",
        }
    }
}

impl WebhookSecret {
    /// A new random secret for `scheme`, labelled with the date and the rotation's token.
    pub fn generate(scheme: Scheme, token: &str, now: i64) -> Result<Self, RotationError> {
        let mut random = [0u8; 32];
        getrandom::getrandom(&mut random).map_err(|e| RotationError::BadValue {
            secret: String::new(),
            what: "new webhook secret".into(),
            reason: format!("no randomness from the OS: {e}"),
        })?;
        let short: String = token
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect();
        Ok(WebhookSecret {
            scheme,
            key_id: format!("wh-{}-{short}", hookvault_core::time::yyyymmdd(now)),
            secret: scheme.format_secret(&random),
            created_at: Some(now),
        })
    }

    /// This secret as an entry of the edge's key ring.
    pub fn key_spec(&self, slot: KeySlot, not_after: Option<i64>) -> KeySpec {
        KeySpec {
            id: Some(self.key_id.clone()),
            secret: self.secret.clone(),
            slot: Some(slot),
            not_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_never_print_their_secret() {
        let w = WebhookSecret::generate(Scheme::Skytells, "0b9a-77ff-xyz", 1_764_028_800).unwrap();
        assert_eq!(w.key_id, "wh-20251125-0b9a77ff");
        assert_eq!(w.secret.len(), 64);
        let m = Managed::WebhookSigning(w.clone());
        let back = Managed::parse(&m.to_json(), "s", "AWSPENDING").unwrap();
        assert_eq!(back, m);
        assert!(!format!("{m:?}").contains(&w.secret));
        let k = Managed::parse(
            r#"{"kind":"provider-api-key","key_id":"key_1","api_key":"sk-live-abc"}"#,
            "s",
            "AWSCURRENT",
        )
        .unwrap();
        assert_eq!(k.kind(), "provider-api-key");
        assert!(!format!("{k:?}").contains("sk-live"));
    }

    #[test]
    fn bad_values_are_refused_without_echoing_them() {
        for v in [
            "sk-live-raw-key-not-json",
            r#"{"kind":"webhook-signing","scheme":"standard","key_id":"a","secret":"not base64 !!"}"#,
            r#"{"kind":"ssh-key","secret":"sk-live-123"}"#,
            r#"{"kind":"provider-api-key","key_id":"","api_key":"sk-live-123"}"#,
        ] {
            let e = Managed::parse(v, "arn:x", "AWSCURRENT")
                .unwrap_err()
                .to_string();
            assert!(!e.contains("sk-live") && !e.contains("!!"), "{e}");
            assert!(e.contains("arn:x"), "{e}");
        }
    }
}
