//! `sha256=<hex>` over the raw body: Skytells (`x-skytells-signature`) and GitHub
//! (`X-Hub-Signature-256`) share this form.

use super::{decode_lower_hex32, required_unmerged, Candidates, Parsed, Prefix, VerifyError};
use crate::headers::Headers;

pub(crate) const SKYTELLS_HEADER: &str = "x-skytells-signature";
pub(crate) const GITHUB_HEADER: &str = "x-hub-signature-256";
pub(crate) const GITHUB_DELIVERY_HEADER: &str = "x-github-delivery";

pub(crate) fn parse<'a, H: Headers + ?Sized>(
    headers: &'a H,
    header: &'static str,
) -> Result<Parsed<'a>, VerifyError> {
    let value = required_unmerged(headers, header)?;
    let hex = value
        .strip_prefix(b"sha256=")
        .ok_or(VerifyError::MalformedHeader {
            header,
            reason: "expected sha256=<64 lowercase hex digits>",
        })?;
    let sig = decode_lower_hex32(hex).ok_or(VerifyError::MalformedHeader {
        header,
        reason: "the signature after sha256= must be exactly 64 lowercase hex digits",
    })?;
    let mut candidates = Candidates::new();
    candidates.push(sig);
    Ok(Parsed {
        prefix: Prefix::default(),
        candidates,
        timestamp: None,
        delivery_id: None,
    })
}
