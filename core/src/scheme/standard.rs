//! Standard Webhooks (<https://www.standardwebhooks.com/>): `webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64> [v1,<base64> …]` over
//! `{id}.{timestamp}.{body}`.

use base64::Engine as _;

use super::{
    parse_timestamp, required, required_unmerged, Candidates, Parsed, Prefix, VerifyError,
};
use crate::headers::Headers;

pub(crate) const ID_HEADER: &str = "webhook-id";
pub(crate) const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub(crate) const SIGNATURE_HEADER: &str = "webhook-signature";

/// A delivery id: 1 to 256 visible ASCII characters (it is signed, and becomes the
/// queue's deduplication id).
pub(crate) fn valid_id(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= 256 && id.iter().all(|c| c.is_ascii_graphic())
}

pub(crate) fn parse<H: Headers + ?Sized>(headers: &H) -> Result<Parsed<'_>, VerifyError> {
    let sig_header = required_unmerged(headers, SIGNATURE_HEADER)?;
    let id = required(headers, ID_HEADER)?;
    let ts_raw = required(headers, TIMESTAMP_HEADER)?;
    if !valid_id(id) {
        return Err(VerifyError::MalformedHeader {
            header: ID_HEADER,
            reason: "must be 1 to 256 visible ASCII characters",
        });
    }
    let timestamp = parse_timestamp(ts_raw, TIMESTAMP_HEADER)?;
    let mut candidates = Candidates::new();
    for entry in sig_header.split(|c| *c == b' ').filter(|e| !e.is_empty()) {
        // Other versions (v1a, …) are ignored, as the specification says.
        let Some(b64) = entry.strip_prefix(b"v1,") else {
            continue;
        };
        let mut sig = [0u8; 32];
        // A base64 that does not decode to exactly 32 bytes cannot match: skip it.
        if let Ok(32) = base64::engine::general_purpose::STANDARD.decode_slice(b64, &mut sig) {
            candidates.push(sig);
        }
    }
    if candidates.is_empty() {
        return Err(VerifyError::MalformedHeader {
            header: SIGNATURE_HEADER,
            reason: "no v1,<base64 of 32 bytes> signature",
        });
    }
    Ok(Parsed {
        prefix: Prefix {
            parts: [id, b".", ts_raw, b"."],
        },
        candidates,
        timestamp: Some(timestamp),
        delivery_id: Some(id),
    })
}
