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
use serde_json::Value;
use sha2::Sha256;

use crate::json_string;
use crate::sigv4::PostSigner;

/// The message attribute that carries the trace id (`TraceId`).
const TRACE_ID: &str = hookvault_core::trace::SQS_ATTRIBUTE;

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
    /// The message (the envelope) the body carries: SQS answers with its MD5.
    pub message: String,
}

impl UnsignedRequest {
    /// MD5 of the message, by the `md-5` crate (the Worker takes it from WebCrypto).
    pub fn message_md5(&self) -> [u8; 16] {
        Md5::digest(self.message.as_bytes()).into()
    }
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
    /// The envelope and its attributes are larger than the queue takes
    /// (`SQS_MAX_MESSAGE_BYTES`).
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

/// Appends `"name":` and `value` as a JSON string.
fn field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    json_string::push(out, value);
}

/// Appends a `String` message attribute.
fn string_attribute(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(br#"":{"DataType":"String","#);
    field(out, "StringValue", value);
    out.push(b'}');
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
    let message_md5 = unsigned.message_md5();
    sign_send_message(
        target,
        target.signer().as_ref(),
        unsigned,
        &body_sha256,
        &message_md5,
        now_ms,
    )
}

/// The `SendMessage` body for `envelope`: the queue, the envelope as the message (ASCII
/// only: [`Envelope::to_json`]), the event id and provider as attributes (printable ASCII,
/// so within SQS's allowed characters), the trace id, when the envelope has one, as the
/// attribute [`hookvault_core::trace::SQS_ATTRIBUTE`] (32 hex digits), and on a FIFO queue
/// the event id as group id and the body's digest as deduplication id
/// ([`Envelope::dedup_id`]; the trace id is not part of it, so a retry with another trace
/// is still the same message). `TooLarge` when the message and its attributes are over
/// `max_message` bytes (the caller then sends the body by claim check).
pub fn unsigned_send_message(
    target: &SqsTarget,
    envelope: &Envelope,
    max_message: usize,
) -> Result<UnsignedRequest, SqsError> {
    let message = envelope.to_json();
    // SQS counts the message attributes (name, data type, value) toward the size limit
    // (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html).
    let trace_id = envelope.trace_id.as_deref();
    let attributes = [
        "event_id",
        "String",
        &envelope.event_id,
        "provider",
        "String",
        &envelope.provider,
        trace_id.map_or("", |_| TRACE_ID),
        trace_id.map_or("", |_| "String"),
        trace_id.unwrap_or_default(),
    ]
    .iter()
    .map(|s| s.len())
    .sum::<usize>();
    let size = message.len() + attributes;
    if size > max_message {
        return Err(SqsError::TooLarge {
            size,
            max: max_message,
        });
    }
    let fifo = target
        .is_fifo()
        .then(|| (envelope.group_id(), envelope.dedup_id()));
    // Sized once: the message grows by its escapes (about one byte in ten for JSON).
    let mut body = Vec::with_capacity(message.len() + message.len() / 8 + 512);
    body.push(b'{');
    field(&mut body, "QueueUrl", &target.queue_url);
    body.push(b',');
    field(&mut body, "MessageBody", &message);
    body.extend_from_slice(br#","MessageAttributes":{"#);
    string_attribute(&mut body, "event_id", &envelope.event_id);
    body.push(b',');
    string_attribute(&mut body, "provider", &envelope.provider);
    if let Some(trace_id) = trace_id {
        body.push(b',');
        string_attribute(&mut body, TRACE_ID, trace_id);
    }
    body.push(b'}');
    if let Some((group, dedup)) = &fifo {
        body.push(b',');
        field(&mut body, "MessageGroupId", group);
        body.push(b',');
        field(&mut body, "MessageDeduplicationId", dedup);
    }
    body.push(b'}');
    // Only whole UTF-8 strings and ASCII were written.
    let body = String::from_utf8(body).map_err(|e| SqsError::Sign(e.to_string()))?;
    Ok(UnsignedRequest { body, message })
}

/// Signs `unsigned` with SigV4 at `now_ms`, with `signer` if there is one (it must be
/// `target.signer()`), else with `aws-sigv4` in full; `body_sha256` is the SHA-256 of its
/// body (SigV4's payload hash: if it is wrong, SQS refuses the signature) and
/// `message_md5` the MD5 of its message (SQS's answer is checked against it).
pub fn sign_send_message(
    target: &SqsTarget,
    signer: Option<&PostSigner>,
    unsigned: UnsignedRequest,
    body_sha256: &[u8; 32],
    message_md5: &[u8; 16],
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
        message_md5: hex::encode(message_md5),
    })
}

/// Signs a POST with SigV4 (SQS's settings); returns `headers` plus the signature's own
/// headers.
pub fn sign_v4(
    target: &SqsTarget,
    service: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: SignableBody<'_>,
    now_ms: u64,
) -> Result<Vec<(String, String)>, SqsError> {
    sign_request(
        target,
        &Signing {
            method: "POST",
            service,
            region: None,
            settings: SigningSettings::default(),
        },
        url,
        headers,
        body,
        now_ms,
    )
    .map_err(SqsError::Sign)
}

/// What a request is signed as: its method, the service, and the service's SigV4 settings
/// (S3 differs from the other services: single URI encoding, no path normalisation).
pub struct Signing<'a> {
    /// `POST`, `PUT`.
    pub method: &'a str,
    /// `sqs`, `s3`.
    pub service: &'a str,
    /// The signing region, when not the target's (a spool bucket in another region).
    pub region: Option<&'a str>,
    /// `aws-sigv4`'s settings.
    pub settings: SigningSettings,
}

/// Signs a request with SigV4 with `target`'s credentials, in `signing.region` or else
/// `target`'s region; returns `headers`
/// plus the signature's own headers, or why it could not be signed.
pub fn sign_request(
    target: &SqsTarget,
    signing: &Signing<'_>,
    url: &str,
    headers: &[(&str, &str)],
    body: SignableBody<'_>,
    now_ms: u64,
) -> Result<Vec<(String, String)>, String> {
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
        .region(signing.region.unwrap_or(&target.region))
        .name(signing.service)
        .time(time)
        .settings(signing.settings.clone())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(signing.method, url, headers.iter().copied(), body)
        .map_err(|e| e.to_string())?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| e.to_string())?
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
