//! A hex HMAC-SHA256 of the raw body in one header: Skytells (`x-skytells-signature`) and
//! GitHub (`X-Hub-Signature-256`) share this form, with one difference in what they write.
//!
//! | sender | header value | source |
//! |---|---|---|
//! | Skytells' SDK (the provider itself) | `<64 hex>`, bare, lowercase; its verifier trims and compares case-insensitively | `Skytells/ts-sdk` `src/webhooks.ts` (`verifySkytellsWebhookSignature`), `docs/Webhooks.md` |
//! | the course text (`shared/seed/`) | `sha256=<64 lowercase hex>` | the seed's handler |
//! | GitHub | `sha256=<64 lowercase hex>` | docs.github.com, "Validating webhook deliveries" |
//!
//! So the `skytells` scheme takes either form, with hex digits in either case; GitHub's
//! keeps its one documented form. Surrounding whitespace is trimmed by
//! [`super::required`]; two values merged into one header are refused as duplicated.

use super::{required_unmerged, Candidates, Parsed, Prefix, VerifyError};
use crate::headers::Headers;

pub(crate) const SKYTELLS_HEADER: &str = "x-skytells-signature";
pub(crate) const GITHUB_HEADER: &str = "x-hub-signature-256";
pub(crate) const GITHUB_DELIVERY_HEADER: &str = "x-github-delivery";

/// The prefix of the prefixed form.
pub(crate) const SHA256_PREFIX: &[u8] = b"sha256=";

/// Which forms a header may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// `<64 hex>` or `sha256=<64 hex>`, hex digits in either case (Skytells).
    BareOrPrefixed,
    /// `sha256=<64 lowercase hex>` only (GitHub).
    PrefixedLowercase,
}

pub(crate) fn parse<'a, H: Headers + ?Sized>(
    headers: &'a H,
    header: &'static str,
    form: Form,
) -> Result<Parsed<'a>, VerifyError> {
    let value = required_unmerged(headers, header)?;
    let sig = match form {
        Form::BareOrPrefixed => {
            let hex = value.strip_prefix(SHA256_PREFIX).unwrap_or(value);
            decode_hex32(hex).ok_or(VerifyError::MalformedHeader {
                header,
                reason: "expected 64 hex digits, bare or after sha256=",
            })?
        }
        Form::PrefixedLowercase => {
            let hex = value
                .strip_prefix(SHA256_PREFIX)
                .ok_or(VerifyError::MalformedHeader {
                    header,
                    reason: "expected sha256=<64 lowercase hex digits>",
                })?;
            super::decode_lower_hex32(hex).ok_or(VerifyError::MalformedHeader {
                header,
                reason: "the signature after sha256= must be exactly 64 lowercase hex digits",
            })?
        }
    };
    let mut candidates = Candidates::new();
    candidates.push(sig);
    Ok(Parsed {
        prefix: Prefix::default(),
        candidates,
        timestamp: None,
        delivery_id: None,
    })
}

/// Exactly 64 hex digits in either case, decoded by the `hex` crate (which refuses any
/// other length or character).
fn decode_hex32(s: &[u8]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}
