//! The key ring: several active webhook secrets at once.
//!
//! During a rotation the edge holds the *pending* secret (accepted before the provider
//! starts using it), the *current* one, and the *previous* one with a not-after time that
//! covers the provider's retry window. Verification tries every key that is still valid
//! and reports which one matched.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::scheme::Scheme;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Where a key stands in its rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySlot {
    /// The secret the provider signs with now.
    Current,
    /// A new secret the edge accepts before the provider switches to it.
    Pending,
    /// The secret before the current one, accepted until its not-after time.
    Previous,
}

impl KeySlot {
    /// The slot's name as written in the key ring's JSON and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySlot::Current => "current",
            KeySlot::Pending => "pending",
            KeySlot::Previous => "previous",
        }
    }
}

/// One secret of the ring, keyed and ready to verify with.
#[derive(Clone)]
pub struct Key {
    id: String,
    slot: KeySlot,
    not_after: Option<i64>,
    mac: HmacSha256,
    material: Box<[u8]>,
}

impl std::fmt::Debug for Key {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("slot", &self.slot)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// A key from already-decoded secret bytes (see [`Scheme::decode_secret`]).
    pub fn new(
        id: impl Into<String>,
        slot: KeySlot,
        material: &[u8],
        not_after: Option<i64>,
    ) -> Result<Self, KeyError> {
        if material.is_empty() {
            return Err(KeyError::EmptySecret);
        }
        let mac = HmacSha256::new_from_slice(material).map_err(|_| KeyError::EmptySecret)?;
        Ok(Key {
            id: id.into(),
            slot,
            not_after,
            mac,
            material: material.into(),
        })
    }

    /// The key's id (a label such as `2026-11`, never the secret).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where the key stands in its rotation.
    pub fn slot(&self) -> KeySlot {
        self.slot
    }

    /// Unix seconds after which the key is no longer accepted, if any.
    pub fn not_after(&self) -> Option<i64> {
        self.not_after
    }

    /// True while the key may be used at `now` (Unix seconds).
    pub fn is_active(&self, now: i64) -> bool {
        self.not_after.is_none_or(|t| now <= t)
    }

    /// The decoded secret, for handing the key to a platform HMAC (the edge imports it into
    /// WebCrypto once per isolate). Never log it or put it in an error.
    pub fn material(&self) -> &[u8] {
        &self.material
    }

    /// HMAC-SHA256 of `parts` concatenated, under this key.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        for p in parts.iter().filter(|p| !p.is_empty()) {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

/// One entry of the key ring's JSON form (the edge's `WEBHOOK_SECRETS`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// A label for logs and for "which key matched"; defaults to the slot's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The secret in the scheme's own format (`whsec_…` base64 for Standard Webhooks).
    pub secret: String,
    /// Defaults to `current` for the first entry and `previous` for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<KeySlot>,
    /// Unix seconds after which the key is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<i64>,
}

impl std::fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySpec")
            .field("id", &self.id)
            .field("slot", &self.slot)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Why a key ring could not be built. Never carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A secret decoded to zero bytes.
    #[error("a webhook secret is empty")]
    EmptySecret,
    /// A Standard Webhooks secret is not `whsec_` + base64.
    #[error("key {key_id:?}: a Standard Webhooks secret must be base64, optionally prefixed with whsec_")]
    NotBase64 {
        /// The key's id.
        key_id: String,
    },
    /// The ring's JSON does not parse; the message names the position, not the content.
    #[error("the key ring is not valid JSON (line {line}, column {column}); expected [{{\"id\":…,\"secret\":…,\"slot\":…,\"not_after\":…}}, …]")]
    Json {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
    /// The ring holds no key at all.
    #[error("the key ring holds no key")]
    Empty,
    /// Two keys share an id, so "which key matched" would be ambiguous.
    #[error("two keys share the id {0:?}")]
    DuplicateId(String),
}

/// Several secrets, newest first.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<Key>,
}

impl KeyRing {
    /// A ring from keys, newest first.
    pub fn new(keys: Vec<Key>) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.id == k.id) {
                return Err(KeyError::DuplicateId(k.id.clone()));
            }
        }
        Ok(KeyRing { keys })
    }

    /// A ring of one current key.
    pub fn single(scheme: Scheme, secret: &str) -> Result<Self, KeyError> {
        Self::from_specs(
            scheme,
            &[KeySpec {
                id: None,
                secret: secret.to_owned(),
                slot: None,
                not_after: None,
            }],
        )
    }

    /// A ring from its JSON form: an array of [`KeySpec`], newest first. A value that is
    /// not a JSON array is taken as one bare current secret.
    pub fn parse(scheme: Scheme, text: &str) -> Result<Self, KeyError> {
        let trimmed = text.trim();
        if !trimmed.starts_with('[') {
            return Self::single(scheme, trimmed);
        }
        let specs: Vec<KeySpec> = serde_json::from_str(trimmed).map_err(|e| KeyError::Json {
            line: e.line(),
            column: e.column(),
        })?;
        Self::from_specs(scheme, &specs)
    }

    /// A ring from specs, newest first, decoding each secret for `scheme`.
    pub fn from_specs(scheme: Scheme, specs: &[KeySpec]) -> Result<Self, KeyError> {
        let keys = specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let slot = s.slot.unwrap_or(if i == 0 {
                    KeySlot::Current
                } else {
                    KeySlot::Previous
                });
                let id = s.id.clone().unwrap_or_else(|| slot.as_str().to_owned());
                let material = scheme.decode_secret(&s.secret).map_err(|e| match e {
                    KeyError::NotBase64 { .. } => KeyError::NotBase64 { key_id: id.clone() },
                    other => other,
                })?;
                Key::new(id, slot, &material, s.not_after)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    /// The keys, newest first.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_and_defaults_slots() {
        let ring = KeyRing::parse(
            Scheme::Skytells,
            r#"[{"id":"new","secret":"s2"},{"secret":"s1","not_after":100}]"#,
        )
        .unwrap();
        assert_eq!(ring.keys()[0].id(), "new");
        assert_eq!(ring.keys()[0].slot(), KeySlot::Current);
        assert_eq!(ring.keys()[1].id(), "previous");
        assert_eq!(ring.keys()[1].not_after(), Some(100));
        assert!(ring.keys()[1].is_active(100));
        assert!(!ring.keys()[1].is_active(101));
    }

    #[test]
    fn bare_string_is_one_current_key() {
        let ring = KeyRing::parse(Scheme::Skytells, "  topsecret\n").unwrap();
        assert_eq!(ring.keys().len(), 1);
        assert_eq!(ring.keys()[0].slot(), KeySlot::Current);
    }

    #[test]
    fn errors_never_echo_the_secret() {
        let err = KeyRing::parse(Scheme::Skytells, r#"[{"secret":"hunter2""#).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = KeyRing::parse(
            Scheme::Standard,
            r#"[{"id":"k","secret":"whsec_!!hunter2"}]"#,
        )
        .unwrap_err();
        assert!(matches!(err, KeyError::NotBase64 { .. }));
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{:?}", KeyRing::single(Scheme::Skytells, "hunter2")).contains("hunter2"));
    }

    #[test]
    fn refuses_empty_rings_secrets_and_duplicate_ids() {
        assert_eq!(
            KeyRing::parse(Scheme::Skytells, "[]").unwrap_err(),
            KeyError::Empty
        );
        assert_eq!(
            KeyRing::parse(Scheme::Skytells, "").unwrap_err(),
            KeyError::EmptySecret
        );
        assert_eq!(
            KeyRing::parse(
                Scheme::Skytells,
                r#"[{"id":"a","secret":"x"},{"id":"a","secret":"y"}]"#
            )
            .unwrap_err(),
            KeyError::DuplicateId("a".into())
        );
    }
}
