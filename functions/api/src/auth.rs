//! Callers authenticate with `Authorization: Bearer <key>`, a key listed in the secret
//! `CALLER_KEYS_SECRET_ID` (`{"keys": ["…", …]}`, read through the cache).
//!
//! Why a bearer key and not IAM auth on the Function URL: any HTTP client can call it
//! (the team's app need not sign SigV4), the keys rotate by editing one secret, and the
//! refusal is ours, so it is tested locally. The comparison is constant-time over
//! SHA-256 digests (no early exit, no length leak), and every listed key is compared.

use hookvault_aws::secrets::SecretCache;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Keys shorter than this in the secret are ignored: a typo must not open the API.
pub const MIN_KEY_LEN: usize = 16;

/// The bearer token of an `Authorization` value.
pub fn bearer(value: Option<&str>) -> Option<&str> {
    let v = value?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// True when `token` equals one of `keys` (constant time in the token and each key).
pub fn matches(keys: &[String], token: &str) -> bool {
    let t = Sha256::digest(token.as_bytes());
    keys.iter()
        .filter(|k| k.len() >= MIN_KEY_LEN)
        .fold(subtle::Choice::from(0), |acc, k| {
            acc | Sha256::digest(k.as_bytes()).as_slice().ct_eq(t.as_slice())
        })
        .into()
}

/// Who is calling: the SHA-256 of the bearer key that matched, as lowercase hex. It scopes
/// what is kept per caller (idempotency keys) without keeping the key itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Caller {
    /// SHA-256 of the caller's key, lowercase hex.
    pub key_sha256: String,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Caller(…)")
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(401, "unauthorized", message)
}

/// Checks the request's `Authorization` header; `Ok` is the caller it identifies.
pub async fn check(
    cache: &SecretCache,
    secret_id: &str,
    authorization: Option<&str>,
) -> Result<Caller, ApiError> {
    let Some(token) = bearer(authorization) else {
        return Err(unauthorized(
            "send Authorization: Bearer <key>, with a key from the caller keys secret",
        ));
    };
    let secret = cache.get(secret_id).await.map_err(|e| {
        tracing::error!(error = %e, "caller keys unavailable");
        ApiError::new(
            503,
            "auth_unavailable",
            "the caller keys could not be read; retry later",
        )
    })?;
    let keys: Vec<String> = serde_json::from_str::<serde_json::Value>(secret.expose())
        .ok()
        .and_then(|v| serde_json::from_value(v.get("keys")?.clone()).ok())
        .unwrap_or_else(|| {
            tracing::error!(
                secret = secret_id,
                "the caller keys secret is not {{\"keys\":[…]}}: every call is refused"
            );
            Vec::new()
        });
    if matches(&keys, token) {
        Ok(Caller {
            key_sha256: hex::encode(Sha256::digest(token.as_bytes())),
        })
    } else {
        Err(unauthorized("the bearer key is not one of the caller keys"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer   abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn only_listed_keys_of_a_sane_length_match() {
        let keys = vec!["short".to_owned(), "caller-key-0123456789".to_owned()];
        assert!(matches(&keys, "caller-key-0123456789"));
        assert!(!matches(&keys, "caller-key-012345678"));
        assert!(!matches(&keys, "short"));
        assert!(!matches(&[], "caller-key-0123456789"));
    }
}
