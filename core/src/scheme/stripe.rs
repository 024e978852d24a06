//! Stripe (<https://docs.stripe.com/webhooks#verify-manually>):
//! `Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>…]` over `{t}.{body}`.

use super::{
    decode_lower_hex32, parse_timestamp, required, Candidates, Parsed, Prefix, VerifyError,
};
use crate::headers::Headers;

pub(crate) const HEADER: &str = "stripe-signature";

pub(crate) fn parse<H: Headers + ?Sized>(headers: &H) -> Result<Parsed<'_>, VerifyError> {
    let value = required(headers, HEADER)?;
    let malformed = |reason| VerifyError::MalformedHeader {
        header: HEADER,
        reason,
    };
    let mut ts_raw: Option<&[u8]> = None;
    let mut candidates = Candidates::new();
    for item in value.split(|c| *c == b',') {
        let item = item.trim_ascii();
        let Some(eq) = item.iter().position(|c| *c == b'=') else {
            return Err(malformed("each item must be key=value"));
        };
        let (k, v) = (&item[..eq], &item[eq + 1..]);
        match k {
            // Two t= items: two headers merged into one (see `required_unmerged`), or a
            // forged one; either way ambiguous.
            b"t" if ts_raw.is_some() => return Err(VerifyError::DuplicateHeader(HEADER)),
            b"t" => ts_raw = Some(v),
            // Stripe's own libraries skip v1 values that cannot match; so do we.
            b"v1" => {
                if let Some(sig) = decode_lower_hex32(v) {
                    candidates.push(sig);
                }
            }
            _ => {} // v0 and future schemes are ignored
        }
    }
    let ts_raw = ts_raw.ok_or(malformed("no t=<timestamp>"))?;
    let timestamp = parse_timestamp(ts_raw, HEADER)?;
    if candidates.is_empty() {
        return Err(malformed("no v1=<64 lowercase hex digits> signature"));
    }
    Ok(Parsed {
        prefix: Prefix {
            parts: [ts_raw, b".", b"", b""],
        },
        candidates,
        timestamp: Some(timestamp),
        delivery_id: None,
    })
}
