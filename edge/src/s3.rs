//! The claim check: a body too large for one SQS message is written to S3 first, with a
//! SigV4-signed `PutObject`, and the queued envelope points at it
//! (`hookvault_core::envelope::Body::S3`).
//!
//! The object is content addressed, `raw/{sha256}` (`hookvault_core::archive::claim_check_key`):
//! a sender's retry of the same bytes writes the same object again, which changes nothing.
//! The edge's IAM user may put objects under `raw/` only (infra/template.yaml), and a
//! lifecycle rule expires them once the archiver has had its time.
//!
//! Signed as S3 wants (<https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>):
//! `x-amz-content-sha256` carries the payload's SHA-256 (which the Worker already has from
//! WebCrypto), the URI is encoded once and not normalised.

use aws_sigv4::http_request::{PercentEncodingMode, SigningSettings, UriPathNormalizationMode};

use crate::sqs::{sign_request, SignableBody, Signing, SqsTarget};

/// A bucket the edge writes to, and how it is addressed: the claim check's (claim-checked
/// bodies, `raw/`) and the spool's (envelopes SQS did not take, `spool/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimCheck {
    /// The bucket (the archive bucket, whose `raw/` and `spool/` prefixes the edge may
    /// write).
    pub bucket: String,
    /// Its region, which requests to it are signed for.
    pub region: String,
    /// Object URLs are this plus the key: `https://{bucket}.s3.{region}.amazonaws.com/`
    /// (virtual-hosted style), or `{S3_ENDPOINT}/{bucket}/` (path style, the local stack).
    base_url: String,
}

impl ClaimCheck {
    /// The claim-check bucket `bucket` in `region`, at `endpoint` (path style) if given.
    pub fn new(bucket: &str, region: &str, endpoint: Option<&str>) -> Self {
        let base_url = match endpoint {
            Some(e) => format!("{}/{bucket}/", e.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com/"),
        };
        ClaimCheck {
            bucket: bucket.to_owned(),
            region: region.to_owned(),
            base_url,
        }
    }

    /// The URL of the object `key`.
    pub fn object_url(&self, key: &str) -> String {
        format!("{}{key}", self.base_url)
    }
}

/// Why the body could not be written to S3 (the edge answers 503: the sender retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Error {
    /// The request could not be signed.
    #[error("cannot sign the S3 request: {0}")]
    Sign(String),
    /// S3 answered with an error.
    #[error("S3 refused the object: HTTP {status} {code}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// S3's error `<Code>`, e.g. `AccessDenied`.
        code: String,
    },
    /// No answer (network error, timeout).
    #[error("S3 did not answer: {0}")]
    Unreachable(String),
}

/// A signed `PutObject`, ready to send with the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPut {
    /// Where to PUT.
    pub url: String,
    /// Every header, the signature's included.
    pub headers: Vec<(String, String)>,
}

/// The `PutObject` of a body whose SHA-256 is `body_sha256` to `key`, signed at `now_ms`
/// with the edge's credentials (`credentials`: the queue target's, one IAM user) for the
/// bucket's region.
pub fn put_object(
    credentials: &SqsTarget,
    claim: &ClaimCheck,
    key: &str,
    body_sha256: &[u8; 32],
    now_ms: u64,
) -> Result<SignedPut, S3Error> {
    put(
        credentials,
        claim,
        key,
        body_sha256,
        &[("content-type", "application/octet-stream")],
        now_ms,
    )
}

/// The `PutObject` of a spooled envelope (JSON, SHA-256 `body_sha256`) to `key`,
/// create-only: `If-None-Match: *` makes S3 answer `412 Precondition Failed` instead of
/// replacing an object that is there already
/// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>).
pub fn put_spooled(
    credentials: &SqsTarget,
    spool: &ClaimCheck,
    key: &str,
    body_sha256: &[u8; 32],
    now_ms: u64,
) -> Result<SignedPut, S3Error> {
    put(
        credentials,
        spool,
        key,
        body_sha256,
        &[("content-type", "application/json"), ("if-none-match", "*")],
        now_ms,
    )
}

fn put(
    credentials: &SqsTarget,
    claim: &ClaimCheck,
    key: &str,
    body_sha256: &[u8; 32],
    extra: &[(&str, &str)],
    now_ms: u64,
) -> Result<SignedPut, S3Error> {
    let url = claim.object_url(key);
    let payload_hash = hex::encode(body_sha256);
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let mut headers = extra.to_vec();
    headers.push(("x-amz-content-sha256", payload_hash.as_str()));
    let headers = sign_request(
        credentials,
        &Signing {
            method: "PUT",
            service: "s3",
            region: Some(&claim.region),
            settings,
        },
        &url,
        &headers,
        SignableBody::Precomputed(payload_hash.clone()),
        now_ms,
    )
    .map_err(S3Error::Sign)?;
    Ok(SignedPut { url, headers })
}

/// How a spool write ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spooled {
    /// S3 took the envelope.
    Written,
    /// The key was there already (`412 Precondition Failed`): the same event (provider and
    /// body) was spooled before and waits to be drained.
    AlreadyThere,
}

/// Checks S3's answer to a create-only `PutObject` ([`put_spooled`]).
pub fn check_spool_response(status: u16, body: &str) -> Result<Spooled, S3Error> {
    if status == 412 {
        return Ok(Spooled::AlreadyThere);
    }
    check_put_response(status, body).map(|()| Spooled::Written)
}

/// Checks S3's answer to a `PutObject`: any 2xx is success; otherwise the error's
/// `<Code>` from S3's XML error body.
pub fn check_put_response(status: u16, body: &str) -> Result<(), S3Error> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let code = body
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map_or("unknown error", |(code, _)| code)
        .to_owned();
    Err(S3Error::Refused { status, code })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> SqsTarget {
        SqsTarget {
            queue_url: "https://sqs.us-east-1.amazonaws.com/1/q".into(),
            endpoint: "https://sqs.us-east-1.amazonaws.com/".into(),
            region: "us-east-1".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("token".into()),
        }
    }

    #[test]
    fn urls_are_virtual_hosted_on_aws_and_path_style_on_an_endpoint() {
        let aws = ClaimCheck::new("archive-1", "eu-west-1", None);
        assert_eq!(
            aws.object_url("raw/ab"),
            "https://archive-1.s3.eu-west-1.amazonaws.com/raw/ab"
        );
        let local = ClaimCheck::new("archive", "us-east-1", Some("http://127.0.0.1:4566/"));
        assert_eq!(
            local.object_url("raw/ab"),
            "http://127.0.0.1:4566/archive/raw/ab"
        );
    }

    #[test]
    fn put_object_is_signed_for_s3_with_the_payload_hash() {
        let claim = ClaimCheck::new("archive-1", "us-east-1", None);
        let put = put_object(
            &credentials(),
            &claim,
            "raw/00ff",
            &[7; 32],
            1_700_000_000_000,
        )
        .unwrap();
        let get = |name: &str| {
            put.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            get("x-amz-content-sha256"),
            Some(hex::encode([7; 32]).as_str())
        );
        assert_eq!(get("x-amz-date"), Some("20231114T221320Z"));
        assert_eq!(get("x-amz-security-token"), Some("token"));
        let auth = get("authorization").unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/s3/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="),
            "{auth}"
        );
        // Another body, another signature.
        let other = put_object(
            &credentials(),
            &claim,
            "raw/00ff",
            &[8; 32],
            1_700_000_000_000,
        )
        .unwrap();
        assert_ne!(
            other.headers.iter().find(|(k, _)| k == "authorization"),
            put.headers.iter().find(|(k, _)| k == "authorization")
        );
    }

    #[test]
    fn spool_puts_are_create_only_and_signed_for_the_buckets_region() {
        let spool = ClaimCheck::new("spool-1", "eu-central-1", None);
        let put = put_spooled(
            &credentials(),
            &spool,
            "spool/x",
            &[7; 32],
            1_700_000_000_000,
        )
        .unwrap();
        assert_eq!(
            put.url,
            "https://spool-1.s3.eu-central-1.amazonaws.com/spool/x"
        );
        let get = |name: &str| {
            put.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("if-none-match"), Some("*"));
        let auth = get("authorization").unwrap();
        assert!(
            auth.contains("/20231114/eu-central-1/s3/aws4_request, SignedHeaders=content-type;host;if-none-match;x-amz-content-sha256;"),
            "{auth}"
        );
        assert_eq!(check_spool_response(200, ""), Ok(Spooled::Written));
        assert_eq!(check_spool_response(412, ""), Ok(Spooled::AlreadyThere));
        assert!(check_spool_response(403, "<Code>AccessDenied</Code>").is_err());
    }

    #[test]
    fn s3_errors_are_read_from_the_xml() {
        assert_eq!(check_put_response(200, ""), Ok(()));
        assert_eq!(
            check_put_response(
                403,
                "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>no</Message></Error>"
            ),
            Err(S3Error::Refused {
                status: 403,
                code: "AccessDenied".into()
            })
        );
        assert_eq!(
            check_put_response(500, "oops"),
            Err(S3Error::Refused {
                status: 500,
                code: "unknown error".into()
            })
        );
    }
}
