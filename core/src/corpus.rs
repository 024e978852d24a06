//! The bad-input corpus: requests every scheme must refuse, each with the status and
//! error code the edge documents for it. The core's tests, the CLI's tests and the edge's
//! end-to-end tests all run this one list.

use crate::scheme::{Scheme, SignError, SignParams, MAX_SIGNATURE_HEADER_LEN};

/// One request that must be refused.
#[derive(Debug, Clone)]
pub struct BadCase {
    /// A short name for test output.
    pub name: String,
    /// The request's headers.
    pub headers: Vec<(String, String)>,
    /// The request's body.
    pub body: Vec<u8>,
    /// The HTTP status the edge answers.
    pub status: u16,
    /// The error code ([`crate::VerifyError::code`]).
    pub code: &'static str,
}

/// A body shaped like the provider's webhook, used by the corpus and the demos.
pub fn sample_body() -> Vec<u8> {
    br#"{"id":"pred_abc123","status":"succeeded","model":"stable-video-6s","output":["https://cdn.skytells.ai/out/pred_abc123/video.mp4"],"error_id":null,"error_message":null}"#.to_vec()
}

/// A secret in `scheme`'s format, for tests and demos (Standard Webhooks' published one
/// for `standard`).
pub fn example_secret(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Standard => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        _ => "whsec_hookvault-example-secret",
    }
}

/// The headers a sender adds for `body`, signed with `secret` (in the scheme's format) at
/// `ts`, as owned pairs. The delivery id (Standard Webhooks, GitHub) is derived from the
/// body and the time, so distinct webhooks get distinct ids.
pub fn signed(
    scheme: Scheme,
    secret: &str,
    body: &[u8],
    ts: i64,
) -> Result<Vec<(String, String)>, SignError> {
    use sha2::{Digest, Sha256};
    let key = scheme.decode_secret(secret)?;
    let digest = Sha256::digest(body);
    let params = SignParams {
        id: Some(format!("msg_{ts}_{}", hex::encode(&digest[..6]))),
        timestamp: Some(ts),
    };
    Ok(scheme
        .sign(&key, body, &params)?
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect())
}

/// The values of `x-skytells-signature` the `skytells` scheme accepts for one MAC, written
/// as 64 lowercase hex digits (`hex`): bare (the provider's SDK, `Skytells/ts-sdk`
/// `src/webhooks.ts`), prefixed (the course), each in upper and mixed case, and with the
/// surrounding whitespace a proxy may leave. Each pair is `(name, header value)`.
pub fn skytells_accepted_forms(hex: &str) -> Vec<(&'static str, String)> {
    let mixed: String = hex
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    vec![
        ("bare lowercase (the provider's SDK)", hex.to_owned()),
        ("bare uppercase", hex.to_ascii_uppercase()),
        ("bare mixed case", mixed.clone()),
        ("sha256= lowercase (the course)", format!("sha256={hex}")),
        (
            "sha256= uppercase hex",
            format!("sha256={}", hex.to_ascii_uppercase()),
        ),
        ("sha256= mixed case", format!("sha256={mixed}")),
        ("bare, surrounded by whitespace", format!(" \t{hex} \t")),
        (
            "prefixed, surrounded by whitespace",
            format!("  sha256={hex}\t"),
        ),
    ]
}

/// The bad-input corpus for `scheme`, for a ring whose current secret is `secret` (in the
/// scheme's format), at time `now`.
pub fn bad_inputs(scheme: Scheme, secret: &str, now: i64) -> Vec<BadCase> {
    let body = sample_body();
    let Ok(key) = scheme.decode_secret(secret) else {
        return Vec::new();
    };
    let other_key = b"not-the-right-secret-0123456789abcdef".to_vec();
    let params = |ts: i64| SignParams {
        id: Some("msg_2Lw8vN0abc".to_owned()),
        timestamp: Some(ts),
    };
    let sign = |key: &[u8], body: &[u8], ts: i64| -> Vec<(String, String)> {
        scheme
            .sign(key, body, &params(ts))
            .map(|h| h.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            .unwrap_or_default()
    };
    let good = sign(&key, &body, now);
    let sig_header = scheme.signature_header();
    let good_sig = good
        .iter()
        .find(|(k, _)| k == sig_header)
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    // `good` with the signature header's value replaced.
    let with_sig = |value: String| -> Vec<(String, String)> {
        good.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    if k == sig_header {
                        value.clone()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect()
    };
    let case = |name: &str, headers, body: &[u8], status, code| BadCase {
        name: format!("{scheme}: {name}"),
        headers,
        body: body.to_vec(),
        status,
        code,
    };
    let mut out = vec![
        case(
            "missing signature header",
            good.iter()
                .filter(|(k, _)| k != sig_header)
                .cloned()
                .collect(),
            &body,
            401,
            "missing_signature",
        ),
        case(
            "duplicated signature header",
            {
                let mut h = good.clone();
                h.push((sig_header.to_ascii_uppercase(), good_sig.clone()));
                h
            },
            &body,
            400,
            "duplicate_header",
        ),
        case(
            "duplicated signature header, merged into one value by the runtime",
            with_sig(format!("{good_sig}, {good_sig}")),
            &body,
            400,
            "duplicate_header",
        ),
        case(
            "header over 4096 bytes",
            with_sig(format!(
                "{good_sig}{}",
                "0".repeat(MAX_SIGNATURE_HEADER_LEN)
            )),
            &body,
            400,
            "malformed_signature",
        ),
        case(
            "signed with the wrong key",
            sign(&other_key, &body, now),
            &body,
            401,
            "bad_signature",
        ),
        case(
            "body off by one byte",
            good.clone(),
            &{
                let mut b = body.clone();
                b.push(b' ');
                b
            },
            401,
            "bad_signature",
        ),
        case(
            "one body byte changed",
            good.clone(),
            &body
                .iter()
                .map(|c| if *c == b'1' { b'2' } else { *c })
                .collect::<Vec<_>>(),
            401,
            "bad_signature",
        ),
    ];
    let flip_last = |s: &str| {
        let mut s = s.to_owned();
        let last = if s.ends_with('0') { '1' } else { '0' };
        s.pop();
        s.push(last);
        s
    };
    match scheme {
        Scheme::Skytells => {
            // The provider's SDK writes bare hex; the course writes `sha256=<hex>`; both
            // are accepted with hex digits in either case (`accepted_forms` lists them).
            // Everything else about the value is refused.
            let hex = good_sig.trim_start_matches("sha256=").to_owned();
            for (name, value, status, code) in [
                (
                    "wrong prefix",
                    format!("sha1={hex}"),
                    400,
                    "malformed_signature",
                ),
                (
                    "prefix in capitals",
                    format!("SHA256={hex}"),
                    400,
                    "malformed_signature",
                ),
                (
                    "empty signature after sha256=",
                    "sha256=".to_owned(),
                    400,
                    "malformed_signature",
                ),
                ("empty header", String::new(), 400, "malformed_signature"),
                (
                    "whitespace only",
                    "  \t ".to_owned(),
                    400,
                    "malformed_signature",
                ),
                (
                    "bare, truncated to 63 digits",
                    hex[..63].to_owned(),
                    400,
                    "malformed_signature",
                ),
                (
                    "bare, 65 digits",
                    format!("{hex}0"),
                    400,
                    "malformed_signature",
                ),
                (
                    "bare, 62 digits",
                    hex[..62].to_owned(),
                    400,
                    "malformed_signature",
                ),
                (
                    "prefixed, truncated to 63 digits",
                    format!("sha256={}", &hex[..63]),
                    400,
                    "malformed_signature",
                ),
                (
                    "prefixed, 65 digits",
                    format!("sha256={hex}0"),
                    400,
                    "malformed_signature",
                ),
                (
                    "bare, non-hex",
                    format!("{}zz", &hex[..62]),
                    400,
                    "malformed_signature",
                ),
                (
                    "prefixed, non-hex",
                    format!("sha256={}zz", &hex[..62]),
                    400,
                    "malformed_signature",
                ),
                (
                    "two values, space-separated",
                    format!("{hex} {hex}"),
                    400,
                    "malformed_signature",
                ),
                (
                    "two values, comma without space",
                    format!("{hex},{hex}"),
                    400,
                    "malformed_signature",
                ),
                (
                    "prefix twice",
                    format!("sha256=sha256={hex}"),
                    400,
                    "malformed_signature",
                ),
                (
                    "space inside the value",
                    format!("sha256= {hex}"),
                    400,
                    "malformed_signature",
                ),
                (
                    "bare, last digit changed",
                    flip_last(&hex),
                    401,
                    "bad_signature",
                ),
                (
                    "prefixed, last digit changed",
                    flip_last(&format!("sha256={hex}")),
                    401,
                    "bad_signature",
                ),
            ] {
                out.push(case(name, with_sig(value), &body, status, code));
            }
        }
        Scheme::GitHub => {
            let hex = good_sig.trim_start_matches("sha256=").to_owned();
            for (name, value, status, code) in [
                (
                    "wrong prefix",
                    format!("sha1={hex}"),
                    400,
                    "malformed_signature",
                ),
                ("no prefix", hex.clone(), 400, "malformed_signature"),
                (
                    "empty signature",
                    "sha256=".to_owned(),
                    400,
                    "malformed_signature",
                ),
                (
                    "truncated signature",
                    format!("sha256={}", &hex[..63]),
                    400,
                    "malformed_signature",
                ),
                (
                    "signature too long",
                    format!("sha256={hex}0"),
                    400,
                    "malformed_signature",
                ),
                (
                    "non-hex signature",
                    format!("sha256={}zz", &hex[..62]),
                    400,
                    "malformed_signature",
                ),
                (
                    "uppercase hex",
                    format!("sha256={}", hex.to_ascii_uppercase()),
                    400,
                    "malformed_signature",
                ),
                (
                    "last digit changed",
                    flip_last(&good_sig),
                    401,
                    "bad_signature",
                ),
                ("empty header", String::new(), 400, "malformed_signature"),
            ] {
                out.push(case(name, with_sig(value), &body, status, code));
            }
        }
        Scheme::Standard => {
            let b64 = good_sig.trim_start_matches("v1,").to_owned();
            for (name, value, status, code) in [
                (
                    "empty signature",
                    "v1,".to_owned(),
                    400,
                    "malformed_signature",
                ),
                (
                    "unknown version only",
                    format!("v2,{b64}"),
                    400,
                    "malformed_signature",
                ),
                (
                    "truncated signature",
                    format!("v1,{}", &b64[..b64.len() - 4]),
                    400,
                    "malformed_signature",
                ),
                (
                    "non-base64 signature",
                    "v1,!!!!".to_owned(),
                    400,
                    "malformed_signature",
                ),
                (
                    "hex instead of base64",
                    format!("v1,{}", "ab".repeat(32)),
                    400,
                    "malformed_signature",
                ),
            ] {
                out.push(case(name, with_sig(value), &body, status, code));
            }
            let ts_swapped = |ts: &str| -> Vec<(String, String)> {
                good.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            if k == "webhook-timestamp" {
                                ts.to_owned()
                            } else {
                                v.clone()
                            },
                        )
                    })
                    .collect()
            };
            out.push(case(
                "timestamp not a number",
                ts_swapped("12ab"),
                &body,
                400,
                "malformed_signature",
            ));
            out.push(case(
                "timestamp changed after signing",
                ts_swapped(&(now + 1).to_string()),
                &body,
                401,
                "bad_signature",
            ));
            out.push(case(
                "missing webhook-id",
                good.iter()
                    .filter(|(k, _)| k != "webhook-id")
                    .cloned()
                    .collect(),
                &body,
                401,
                "missing_signature",
            ));
        }
        Scheme::Stripe => {
            let v1 = good_sig.split("v1=").nth(1).unwrap_or_default().to_owned();
            let t = format!("t={now}");
            for (name, value, status, code) in [
                (
                    "empty signature",
                    format!("{t},v1="),
                    400,
                    "malformed_signature",
                ),
                (
                    "no timestamp",
                    format!("v1={v1}"),
                    400,
                    "malformed_signature",
                ),
                (
                    "v0 only",
                    format!("{t},v0={v1}"),
                    400,
                    "malformed_signature",
                ),
                (
                    "uppercase hex",
                    format!("{t},v1={}", v1.to_ascii_uppercase()),
                    400,
                    "malformed_signature",
                ),
                (
                    "truncated signature",
                    format!("{t},v1={}", &v1[..63]),
                    400,
                    "malformed_signature",
                ),
                (
                    "two timestamps",
                    format!("{t},{t},v1={v1}"),
                    400,
                    "duplicate_header",
                ),
                (
                    "timestamp changed after signing",
                    format!("t={},v1={v1}", now + 1),
                    401,
                    "bad_signature",
                ),
            ] {
                out.push(case(name, with_sig(value), &body, status, code));
            }
        }
    }
    if matches!(scheme, Scheme::Standard | Scheme::Stripe) {
        out.push(case(
            "stale timestamp (an hour old)",
            sign(&key, &body, now - 3600),
            &body,
            401,
            "timestamp_too_old",
        ));
        out.push(case(
            "future timestamp (an hour ahead)",
            sign(&key, &body, now + 3600),
            &body,
            401,
            "timestamp_in_future",
        ));
    }
    out
}
