//! What the edge answers, decided without I/O.
//!
//! The request flow ([`crate::flow`]) calls [`check_declared_length`] before reading the
//! body, [`prepare`] and the MACs (the runtime's WebCrypto in the Worker, [`settle`] in
//! the native tests) once it has it, [`received`] for the envelope, and [`queue_failure`]
//! or [`claim_check_failure`] when SQS or S3 does not take the event. After a signature verifies, the only refusal left is
//! the size cap, checked before: every authentic body is queued, whatever its bytes.

use hookvault_core::envelope::Received;
use hookvault_core::{Pending, Verified, VerifyError, VerifyOptions};
use serde::Serialize;

use crate::config::{EdgeConfig, Provider};
use crate::s3::S3Error;
use crate::sqs::SqsError;

/// A refusal: status, stable code, message, and `Retry-After` for 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// For people; never a secret or an expected signature.
    pub message: String,
    /// Seconds, for 503.
    pub retry_after: Option<u32>,
    /// The `Allow` header, for 405.
    pub allow: Option<&'static str>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl Rejection {
    /// A refusal without `Retry-After`.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Rejection {
            status,
            code,
            message: message.into(),
            retry_after: None,
            allow: None,
        }
    }

    /// The JSON body: `{"error": code, "message": …}`.
    pub fn body(&self) -> String {
        serde_json::to_string(&ErrorBody {
            error: self.code,
            message: &self.message,
        })
        .unwrap_or_default()
    }
}

/// 404 for a path the edge does not serve.
pub fn not_found() -> Rejection {
    Rejection::new(
        404,
        "not_found",
        "no such route; webhooks go to POST /webhooks/{provider}",
    )
}

/// 405 for a known path with another method.
pub fn method_not_allowed(allow: &'static str) -> Rejection {
    Rejection {
        allow: Some(allow),
        ..Rejection::new(405, "method_not_allowed", format!("use {allow}"))
    }
}

/// 503 for a configuration the edge cannot run with (logged in full, answered briefly:
/// the provider retries, and operators read the log).
pub fn misconfigured(retry_after: u32) -> Rejection {
    Rejection {
        retry_after: Some(retry_after),
        ..Rejection::new(
            503,
            "edge_misconfigured",
            "the edge is misconfigured; retry later",
        )
    }
}

/// Refuses a body whose declared `Content-Length` is over the cap, before reading it.
pub fn check_declared_length(content_length: Option<&str>, max: usize) -> Result<(), Rejection> {
    let Some(raw) = content_length else {
        return Ok(());
    };
    let n: u64 = raw
        .trim()
        .parse()
        .map_err(|_| Rejection::new(400, "bad_content_length", "Content-Length is not a number"))?;
    if n > max as u64 {
        return Err(too_large(max));
    }
    Ok(())
}

/// 400 for a body the runtime could not read.
pub fn unreadable_body() -> Rejection {
    Rejection::new(400, "unreadable_body", "the request body could not be read")
}

/// 413 for a body over the cap.
pub fn too_large(max: usize) -> Rejection {
    Rejection::new(
        413,
        "body_too_large",
        format!("body is larger than {max} bytes"),
    )
}

/// The provider a request names: `name` from the path, or, when the path names none (the
/// probe), the only one configured.
pub fn target<'c>(cfg: &'c EdgeConfig, name: Option<&str>) -> Result<&'c Provider, Rejection> {
    match name {
        Some(name) => cfg.provider(name).ok_or_else(|| {
            Rejection::new(
                404,
                "unknown_provider",
                format!("no provider {name:?} is configured"),
            )
        }),
        None => match cfg.providers.as_slice() {
            [only] => Ok(only),
            _ => Err(Rejection::new(
                404,
                "unknown_provider",
                "several providers are configured: probe /_hookvault/probe/{provider}",
            )),
        },
    }
}

/// Checks a request up to its signature: the provider it names (`None`: the only one
/// configured), the body's size, and the signature header (parsed, its timestamp within
/// tolerance). What is left is the MAC of each key of the provider's ring over
/// [`Pending::message`]: [`settle`] computes them with hookvault-core's HMAC, the Worker
/// with the runtime's WebCrypto; both offer them to [`Pending::offer`] in ring order.
pub fn prepare<'c, 'r>(
    cfg: &'c EdgeConfig,
    provider_name: Option<&str>,
    headers: &'r [(String, String)],
    body: &'r [u8],
    now_ms: u64,
) -> Result<(&'c Provider, Pending<'r>), Rejection> {
    let p = target(cfg, provider_name)?;
    if body.len() > cfg.max_body {
        return Err(too_large(cfg.max_body));
    }
    let opts = VerifyOptions {
        now: i64::try_from(now_ms / 1000).unwrap_or(i64::MAX),
        tolerance: cfg.tolerance,
    };
    let pending = p.scheme.prepare(headers, body, &opts).map_err(refused)?;
    Ok((p, pending))
}

/// The refusal for a request that does not verify.
pub fn refused(e: VerifyError) -> Rejection {
    Rejection::new(e.status(), e.code(), e.to_string())
}

/// Finishes [`prepare`] with hookvault-core's HMAC-SHA256 ([`Pending::finish`]).
pub fn settle(p: &Provider, pending: Pending<'_>) -> Result<Verified, Rejection> {
    pending.finish(&p.ring).map_err(refused)
}

/// What the envelope records of a verified request besides its body: the provider, the
/// key that matched, the scheme's headers as received (the evidence), the request's
/// `Content-Type` (kept only up to 256 bytes: it is not evidence), the time.
pub fn received<'a>(
    p: &'a Provider,
    verified: &'a Verified,
    signature_headers: &'a [(String, String)],
    content_type: Option<&'a str>,
    now_ms: u64,
) -> Received<'a> {
    Received {
        provider: &p.name,
        scheme: p.scheme,
        verified,
        signature_headers,
        content_type: content_type.filter(|c| c.len() <= 256),
        received_at_ms: i64::try_from(now_ms).unwrap_or(i64::MAX),
    }
}

/// 503 when SQS does not take the message: the sender retries. (Once the signature
/// verified, nothing is refused for its content; a message too large for the queue is a
/// configuration fault, logged with its reason.)
pub fn queue_failure(_err: &SqsError, retry_after: u32) -> Rejection {
    Rejection {
        retry_after: Some(retry_after),
        ..Rejection::new(
            503,
            "queue_unavailable",
            "the event could not be queued; retry later",
        )
    }
}

/// 503 when S3 does not take a claim-checked body: the sender retries.
pub fn claim_check_failure(_err: &S3Error, retry_after: u32) -> Rejection {
    Rejection {
        retry_after: Some(retry_after),
        ..Rejection::new(
            503,
            "claim_check_unavailable",
            "the event could not be stored; retry later",
        )
    }
}

/// The 202 body of an event SQS did not take and the spool did: it will be queued from
/// there.
pub fn spooled_body(event_id: &str) -> String {
    serde_json::json!({ "status": "spooled", "event_id": event_id }).to_string()
}

/// The 202 body.
pub fn accepted_body(event_id: &str, message_id: &str) -> String {
    serde_json::json!({ "status": "queued", "event_id": event_id, "message_id": message_id })
        .to_string()
}

#[cfg(test)]
mod tests;
