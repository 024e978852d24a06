//! SQS `SendMessage` over the JSON protocol, signed with SigV4 (the `aws-sigv4` crate,
//! which builds for wasm32 and takes the time as an argument).
//!
//! [`send_message`] builds the signed request ([`unsigned_send_message`], then
//! [`sign_send_message`] with the body's SHA-256, which the Worker takes from WebCrypto,
//! and the target's [`PostSigner`] when the endpoint has a shape it takes);
//! the Worker glue sends it; [`parse_response`] checks the answer, including
//! `MD5OfMessageBody` as the AWS SDKs do.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
pub use aws_sigv4::http_request::SignableBody;
use aws_sigv4::http_request::{sign, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use hookvault_core::envelope::Envelope;
use md5::{Digest, Md5};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

use crate::sigv4::PostSigner;

/// The headers a `SendMessage` is sent with, besides SigV4's own.
pub const SEND_MESSAGE_HEADERS: [(&str, &str); 2] = [
    ("content-type", "application/x-amz-json-1.0"),
    ("x-amz-target", "AmazonSQS.SendMessage"),
];

/// The queue and the send-only credentials.
#[derive(Clone)]
pub struct SqsTarget {
    /// The queue URL.
    pub queue_url: String,
    /// The endpoint requests go to.
    pub endpoint: String,
    /// The signing region.
    pub region: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// A session token, for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for SqsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsTarget")
            .field("queue_url", &self.queue_url)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl SqsTarget {
    /// True for a FIFO queue.
    pub fn is_fifo(&self) -> bool {
        self.queue_url.ends_with(".fifo")
    }

    /// The signer that keeps the day's signing key, if the endpoint has a shape it
    /// signs (`None`: [`sign_v4`] signs each request in full).
    pub fn signer(&self) -> Option<PostSigner> {
        PostSigner::new(
            &self.endpoint,
            &self.region,
            "sqs",
            (
                &self.access_key_id,
                &self.secret_access_key,
                self.session_token.as_deref(),
            ),
            &SEND_MESSAGE_HEADERS,
        )
    }
}

/// A `SendMessage` body, not signed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedRequest {
    /// The JSON body.
    pub body: String,
    /// MD5 of the message body (hex), to check SQS's `MD5OfMessageBody` against.
    pub message_md5: String,
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// Where to POST.
    pub url: String,
    /// Every header, the signature's included.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: String,
    /// MD5 of the message body (hex).
    pub message_md5: String,
}

/// Why a message was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqsError {
    /// The request could not be signed.
    #[error("cannot sign the SQS request: {0}")]
    Sign(String),
    /// The envelope is larger than SQS takes.
    #[error("the queue message would be {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// The envelope's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// SQS answered with an error.
    #[error("SQS refused the message: HTTP {status} {kind}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The error's `__type`, e.g. `com.amazonaws.sqs#QueueDoesNotExist`.
        kind: String,
    },
    /// SQS answered 2xx with something that is not a SendMessage result.
    #[error("SQS answered without a MessageId")]
    BadResponse,
    /// The body SQS received is not the body sent.
    #[error("SQS's MD5OfMessageBody does not match the message sent")]
    Md5Mismatch,
    /// No answer (network error, timeout).
    #[error("SQS did not answer: {0}")]
    Unreachable(String),
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SendMessage<'a> {
    queue_url: &'a str,
    message_body: &'a str,
    message_attributes: Attributes<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_group_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_deduplication_id: Option<&'a str>,
}

#[derive(Serialize)]
struct Attributes<'a> {
    event_id: StringAttr<'a>,
    provider: StringAttr<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StringAttr<'a> {
    data_type: &'static str,
    string_value: &'a str,
}

fn attr(v: &str) -> StringAttr<'_> {
    StringAttr {
        data_type: "String",
        string_value: v,
    }
}

/// The SigV4-signed `SendMessage` for `envelope`, at `now_ms` (Unix milliseconds).
pub fn send_message(
    target: &SqsTarget,
    envelope: &Envelope,
    max_message: usize,
    now_ms: u64,
) -> Result<SignedRequest, SqsError> {
    let unsigned = unsigned_send_message(target, envelope, max_message)?;
    let body_sha256: [u8; 32] = Sha256::digest(unsigned.body.as_bytes()).into();
    sign_send_message(
        target,
        target.signer().as_ref(),
        unsigned,
        &body_sha256,
        now_ms,
    )
}

/// The `SendMessage` body for `envelope`: the queue, the envelope as the message, the event
/// id as an attribute (and as group and deduplication id on a FIFO queue).
pub fn unsigned_send_message(
    target: &SqsTarget,
    envelope: &Envelope,
    max_message: usize,
) -> Result<UnsignedRequest, SqsError> {
    let message = envelope.to_json();
    if message.len() > max_message {
        return Err(SqsError::TooLarge {
            size: message.len(),
            max: max_message,
        });
    }
    let dedup = target.is_fifo().then(|| envelope.dedup_id());
    // Sized once: the message grows by its escapes (about one byte in ten for JSON).
    let mut body = Vec::with_capacity(message.len() + message.len() / 8 + 512);
    serde_json::to_writer(
        &mut body,
        &SendMessage {
            queue_url: &target.queue_url,
            message_body: &message,
            message_attributes: Attributes {
                event_id: attr(&envelope.event_id),
                provider: attr(&envelope.provider),
            },
            message_group_id: dedup.as_deref(),
            message_deduplication_id: dedup.as_deref(),
        },
    )
    .map_err(|e| SqsError::Sign(e.to_string()))?;
    let body = String::from_utf8(body).map_err(|e| SqsError::Sign(e.to_string()))?;
    Ok(UnsignedRequest {
        body,
        message_md5: hex::encode(Md5::digest(message.as_bytes())),
    })
}

/// Signs `unsigned` with SigV4 at `now_ms`, with `signer` if there is one (it must be
/// `target.signer()`), else with `aws-sigv4` in full; `body_sha256` is the SHA-256 of its
/// body (SigV4's payload hash: if it is wrong, SQS refuses the signature).
pub fn sign_send_message(
    target: &SqsTarget,
    signer: Option<&PostSigner>,
    unsigned: UnsignedRequest,
    body_sha256: &[u8; 32],
    now_ms: u64,
) -> Result<SignedRequest, SqsError> {
    let payload_hash = hex::encode(body_sha256);
    let headers = match signer {
        Some(signer) => signer.sign(&payload_hash, now_ms),
        None => sign_v4(
            target,
            "sqs",
            &target.endpoint,
            &SEND_MESSAGE_HEADERS,
            SignableBody::Precomputed(payload_hash),
            now_ms,
        )?,
    };
    Ok(SignedRequest {
        url: target.endpoint.clone(),
        headers,
        body: unsigned.body,
        message_md5: unsigned.message_md5,
    })
}

/// Signs a POST with SigV4; returns `headers` plus the signature's own headers.
pub fn sign_v4(
    target: &SqsTarget,
    service: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: SignableBody<'_>,
    now_ms: u64,
) -> Result<Vec<(String, String)>, SqsError> {
    let identity = Credentials::new(
        &target.access_key_id,
        &target.secret_access_key,
        target.session_token.clone(),
        None,
        "hookvault-edge",
    )
    .into();
    let time: SystemTime = UNIX_EPOCH + Duration::from_millis(now_ms);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&target.region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SqsError::Sign(e.to_string()))?
        .into();
    let request = SignableRequest::new("POST", url, headers.iter().copied(), body)
        .map_err(|e| SqsError::Sign(e.to_string()))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| SqsError::Sign(e.to_string()))?
        .into_parts();
    let mut out: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    out.extend(
        instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    Ok(out)
}

/// Checks SQS's answer to `sent` (the `SendMessage` body); returns the message id.
pub fn parse_response(status: u16, body: &str, sent: &SignedRequest) -> Result<String, SqsError> {
    let json: Option<Value> = serde_json::from_str(body).ok();
    if !(200..300).contains(&status) {
        let kind = json
            .as_ref()
            .and_then(|j| j.get("__type"))
            .and_then(Value::as_str)
            .unwrap_or("unknown error")
            .to_owned();
        return Err(SqsError::Refused { status, kind });
    }
    let json = json.ok_or(SqsError::BadResponse)?;
    let id = json
        .get("MessageId")
        .and_then(Value::as_str)
        .ok_or(SqsError::BadResponse)?;
    if let Some(md5) = json.get("MD5OfMessageBody").and_then(Value::as_str) {
        if md5 != sent.message_md5 {
            return Err(SqsError::Md5Mismatch);
        }
    }
    Ok(id.to_owned())
}

#[cfg(test)]
mod tests;
