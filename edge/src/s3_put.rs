//! The claim check's one S3 request: the body, as the runtime read it, sent with a signed
//! `PutObject` (`crate::s3`) by the runtime's `fetch`, in one call with its timeout.

use worker::js_sys::Uint8Array;

use crate::config::EdgeConfig;
use crate::one_call;
use crate::s3::{self, ClaimCheck, S3Error};

/// Writes `body` (its SHA-256 `body_sha256`) to `key` in the claim-check bucket at
/// `now_ms`; `Ok` once S3 has it.
pub async fn put(
    cfg: &EdgeConfig,
    claim: &ClaimCheck,
    key: &str,
    body: &Uint8Array,
    body_sha256: &[u8; 32],
    now_ms: u64,
) -> Result<(), S3Error> {
    let signed = s3::put_object(&cfg.sqs, claim, key, body_sha256, now_ms)?;
    let (status, text) = one_call::send_text(
        "PUT",
        &signed.url,
        body,
        &signed.headers,
        cfg.sqs_timeout_ms,
    )
    .await
    .map_err(S3Error::Unreachable)?;
    s3::check_put_response(status, &text)
}
