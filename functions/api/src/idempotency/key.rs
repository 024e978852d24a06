//! The caller's `Idempotency-Key`, checked, and its [`Scope`]: the hash that names its
//! record and derives the provider's key.

use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::error::ApiError;

/// The request header (matched case-insensitively).
pub const HEADER: &str = "idempotency-key";
/// Longest key accepted, bytes.
pub const MAX_KEY_LEN: usize = 255;
/// Where the records live in the archive bucket.
pub const PREFIX: &str = "idempotency/";

/// A caller's idempotency key, checked. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdempotencyKey({} bytes)", self.0.len())
    }
}

impl IdempotencyKey {
    /// Checks a header value: 1 to [`MAX_KEY_LEN`] bytes of visible ASCII (0x21 to 0x7E).
    pub fn parse(value: &[u8]) -> Result<Self, ApiError> {
        let ok = (1..=MAX_KEY_LEN).contains(&value.len())
            && value.iter().all(|b| (0x21..=0x7E).contains(b));
        match std::str::from_utf8(value) {
            Ok(s) if ok => Ok(IdempotencyKey(s.to_owned())),
            _ => Err(invalid_key(&format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} characters of visible ASCII (0x21 to 0x7E), without spaces"
            ))),
        }
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The request's key from the values of its `Idempotency-Key` headers: none is `None`;
/// more than one is refused (400), as is a value that is not a key.
pub fn from_headers(values: &[&[u8]]) -> Result<Option<IdempotencyKey>, ApiError> {
    match values {
        [] => Ok(None),
        [one] => IdempotencyKey::parse(one).map(Some),
        _ => Err(invalid_key("send at most one Idempotency-Key header")),
    }
}

fn invalid_key(message: &str) -> ApiError {
    ApiError::new(400, "invalid_idempotency_key", message)
}

/// SHA-256 as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One caller's key: its hash, and where its record lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `sha256_hex(caller_key_sha256 + "\n" + key)`.
    pub key_sha256: String,
    /// `idempotency/{key_sha256}.json`.
    pub object_key: String,
}

impl Scope {
    /// The scope of `key` for `caller`.
    pub fn new(caller: &Caller, key: &IdempotencyKey) -> Self {
        let key_sha256 = sha256_hex(format!("{}\n{}", caller.key_sha256, key.0).as_bytes());
        Scope {
            object_key: format!("{PREFIX}{key_sha256}.json"),
            key_sha256,
        }
    }

    /// The provider's `Idempotency-Key` for this key: `hv-` and the first 32 hex digits of
    /// [`Scope::key_sha256`]. The same for every attempt and every retry within the window,
    /// so a provider that honours it dedups them too; it reveals neither key.
    pub fn provider_key(&self) -> String {
        format!(
            "hv-{}",
            self.key_sha256.get(..32).unwrap_or(&self.key_sha256)
        )
    }

    /// The start of the hash, for logs.
    pub(crate) fn short(&self) -> &str {
        self.key_sha256.get(..16).unwrap_or(&self.key_sha256)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn caller(k: &str) -> Caller {
        Caller {
            key_sha256: sha256_hex(k.as_bytes()),
        }
    }

    pub(crate) fn key(k: &str) -> IdempotencyKey {
        IdempotencyKey::parse(k.as_bytes()).unwrap()
    }

    #[test]
    fn keys_are_one_to_255_bytes_of_visible_ascii() {
        for ok in [
            "a".to_owned(),
            "8e03978e-40d5-43e8-bc93-6894a57f9324".to_owned(),
            "!~\"quoted\"".to_owned(),
            "k".repeat(255),
        ] {
            assert_eq!(key(&ok).as_str(), ok);
        }
        let too_long = "k".repeat(256);
        for bad in [
            &b""[..],
            too_long.as_bytes(),
            b"has space",
            b"tab\t",
            b"\x7f",
            b"nul\0",
            "caf\u{e9}".as_bytes(),
            b"\xff\xfe",
        ] {
            let e = IdempotencyKey::parse(bad).unwrap_err();
            assert_eq!(
                (e.status, e.code.as_str()),
                (400, "invalid_idempotency_key")
            );
        }
        // The key is never echoed back, nor shown by Debug.
        let e = IdempotencyKey::parse(b"secret key").unwrap_err();
        assert!(!e.body().contains("secret"), "{}", e.body());
        assert!(!format!("{:?}", key("secret-key")).contains("secret"));
    }

    #[test]
    fn one_header_at_most() {
        assert_eq!(from_headers(&[]).unwrap(), None);
        assert_eq!(from_headers(&[b"k1"]).unwrap(), Some(key("k1")));
        let e = from_headers(&[b"k1", b"k1"]).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (400, "invalid_idempotency_key")
        );
    }

    #[test]
    fn scopes_are_per_caller_and_keep_no_key() {
        let a = Scope::new(&caller("caller-key-a-0123456789"), &key("order-1"));
        let expected =
            sha256_hex(format!("{}\norder-1", sha256_hex(b"caller-key-a-0123456789")).as_bytes());
        assert_eq!(a.key_sha256, expected);
        assert_eq!(a.object_key, format!("idempotency/{expected}.json"));
        assert_eq!(a.provider_key(), format!("hv-{}", &expected[..32]));
        assert_eq!(
            a,
            Scope::new(&caller("caller-key-a-0123456789"), &key("order-1"))
        );
        let b = Scope::new(&caller("caller-key-b-0123456789"), &key("order-1"));
        assert_ne!(a.key_sha256, b.key_sha256, "another caller, another scope");
        let c = Scope::new(&caller("caller-key-a-0123456789"), &key("order-2"));
        assert_ne!(a.key_sha256, c.key_sha256);
        assert!(!a.object_key.contains("order-1"));
    }
}
