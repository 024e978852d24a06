//! The versioned queue envelope: what the edge puts on SQS and the archiver reads.
//!
//! Version 2 (written since the lossless-ingestion work; the format is documented in
//! `docs/envelope.md`):
//!
//! ```json
//! {"v":2,"provider":"skytells","scheme":"skytells","event_id":"skytells:pred_abc:succeeded",
//!  "received_at_ms":1764000000000,"key_id":"2026-11","key_slot":"current",
//!  "signature_headers":[["x-skytells-signature","sha256=…"]],
//!  "content_type":"application/json",
//!  "body_sha256":"…","body_bytes":1234,
//!  "body_base64":"eyJpZCI6…",
//!  "trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}
//! ```
//! `trace_id` ([`crate::trace`]) and `replay` (set by `hookvault replay`) are optional:
//! readers of version 2 that predate them ignore them.
//! or, for a body too large for one SQS message, `"body_s3":{"bucket":"…","key":"raw/<sha256>"}`
//! in place of `body_base64` (the claim check: the edge wrote the exact bytes there first).
//!
//! * The body is carried **byte for byte, whatever it is**: base64 (RFC 4648, standard
//!   alphabet, padded) round-trips every byte sequence, including a BOM, surrounding
//!   whitespace and bytes that are not UTF-8. The alternative, the body as a JSON string,
//!   cannot carry bytes that are not UTF-8 at all; `docs/envelope.md` has the measured
//!   comparison of size and speed.
//! * `body_sha256` is the SHA-256 of exactly those bytes; the reader checks it.
//! * `signature_headers` are the scheme's headers as received and `key_id` the key that
//!   matched: with the secret, `hookvault verify` checks an archived event again.
//! * The message is written as **ASCII only** (every other character as a `\u` escape), so
//!   it never holds a character outside SQS's allowed set, whatever the event id or a
//!   header held (see [`Envelope::to_json`]).
//!
//! Version 1 (`"payload"`: the body as a JSON raw value, `"payload_sha256"`) is still read,
//! for messages in flight during an upgrade.
//!
//! **Reconciled events** (issue 23): the reconciler (`functions/reconciler`) fetches a
//! prediction whose webhook never came from the provider's API and queues it as a version 2
//! envelope with one more member, `"reconciled": {"url", "fetched_at_ms", "request_id",
//! "body_sha256"}` ([`Reconciled`]): the body is the API's answer, byte for byte, and the
//! evidence is where and when it was fetched instead of a signature
//! ([`Envelope::reconciled`], [`Envelope::to_json_reconciled`], read back by
//! [`Reconciled::from_message`]). Readers that predate it ignore the member.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::keyring::KeySlot;
use crate::scheme::{Scheme, Verified};

/// The envelope version this code writes. [`Envelope::from_json`] reads it and version 1.
pub const ENVELOPE_VERSION: u32 = 2;

/// The longest event id kept as it is; a longer one, or one with a character that is not
/// printable ASCII, is replaced by its SHA-256 ([`event_id`]).
pub const MAX_EVENT_ID_LEN: usize = 256;

/// Bytes of a queue message that are not the base64 body, at most: the envelope's other
/// fields (the signature headers are capped at 4,096 bytes each by the schemes' parsers,
/// and a scheme reads at most three headers) and the `SendMessage` attributes. A body whose
/// base64 plus this does not fit the queue's message size goes by claim check
/// ([`needs_claim_check`]).
pub const ENVELOPE_RESERVE: usize = 16 * 1024;

/// The `key_id` of a reconciled envelope ([`Envelope::reconciled`]): no key verified it.
pub const RECONCILED_KEY_ID: &str = "reconciled";

/// The FIFO group id's longest length (SQS: 128 characters).
const MAX_GROUP_ID_LEN: usize = 128;

/// Where a claim-checked body is: an S3 object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Object {
    /// The bucket.
    pub bucket: String,
    /// The key, `raw/{sha256}` ([`crate::archive::claim_check_key`]).
    pub key: String,
}

/// Where the signed bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// In the message itself (`body_base64` on the wire).
    Inline(Vec<u8>),
    /// In S3, written by the edge before the message was sent (`body_s3`).
    S3(S3Object),
}

/// One verified webhook, ready for the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The version it was read as (or [`ENVELOPE_VERSION`] for a new one).
    pub v: u32,
    /// The provider's name, from the edge's route (`/webhooks/{provider}`).
    pub provider: String,
    /// The scheme that verified it.
    pub scheme: Scheme,
    /// A stable id for deduplication (see [`event_id`]): printable ASCII, at most
    /// [`MAX_EVENT_ID_LEN`] bytes.
    pub event_id: String,
    /// When the edge received it, Unix milliseconds.
    pub received_at_ms: i64,
    /// The id of the key that matched.
    pub key_id: String,
    /// The slot of the key that matched.
    pub key_slot: KeySlot,
    /// The scheme's headers as received (`(lowercase name, value)`), the evidence to verify
    /// the event again later. Empty for version 1 messages.
    pub signature_headers: Vec<(String, String)>,
    /// The request's `Content-Type`, if it had one.
    pub content_type: Option<String>,
    /// Lowercase hex SHA-256 of the body bytes.
    pub body_sha256: String,
    /// The body's length in bytes.
    pub body_bytes: u64,
    /// The body, or where it is.
    pub body: Body,
    /// The trace id ([`crate::trace`]): from the request's `traceparent`, or made by the
    /// edge. `None` in messages written before it existed; a reader drops an invalid one.
    pub trace_id: Option<String>,
    /// Set when `hookvault replay` queued this message again, rather than the edge.
    pub replay: Option<Replay>,
}

/// The SQS message attribute the drainer (`functions/drainer`) adds to an envelope it
/// queues from the edge's spool: its value is the spool object's key. The archiver records
/// it in the event log ([`crate::records::IndexEntry::spooled`]), so an operator sees which
/// events SQS refused at the edge. The envelope itself is the edge's, unchanged.
pub const SPOOLED_ATTRIBUTE: &str = "Spooled";

/// What `hookvault replay` adds to an envelope it queues again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replay {
    /// When the operator replayed it, Unix milliseconds.
    pub at_ms: i64,
    /// Archive again even when the prediction's manifest exists (`--force`); otherwise an
    /// existing manifest means done, as for any redelivery.
    #[serde(default)]
    pub force: bool,
}

/// The suffix of a reconciled event's id: `{provider}:{prediction id}:{status}:reconciled`
/// ([`reconciled_event_id`]), which no webhook's id has, so the fetched event and the
/// signed webhook of one outcome are two events in the log.
pub const RECONCILED_SUFFIX: &str = ":reconciled";

/// The evidence of a reconciled event (issue 23): the reconciler fetched the prediction
/// from the provider's API (`GET /v1/predictions/{id}`) because no webhook had brought its
/// terminal status. Carried as the envelope's `reconciled` member and kept in the raw
/// event's `event.json` ([`crate::records::EventRecord::reconciled`]).
///
/// ```json
/// {"url":"https://api.skytells.ai/v1/predictions/pred_abc","fetched_at_ms":1764000000000,
///  "request_id":"req_123","body_sha256":"…"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciled {
    /// The URL fetched (no query string, no credentials: the key went in a header).
    pub url: String,
    /// When the answer was read, Unix milliseconds.
    pub fetched_at_ms: i64,
    /// The answer's request id (`x-request-id`, else `request-id`), when it had one.
    pub request_id: Option<String>,
    /// Lowercase hex SHA-256 of the answer's body: the envelope's `body_sha256`.
    pub body_sha256: String,
}

impl Reconciled {
    /// The `reconciled` member of a queue message, when it has one that reads and whose
    /// `body_sha256` is the envelope's (`envelope_sha256`). Anything else, including a
    /// member of another shape, is `None`: the event is then taken as signed, which is
    /// what every envelope was before issue 23.
    pub fn from_message(text: &str, envelope_sha256: &str) -> Option<Self> {
        #[derive(Deserialize)]
        struct Member {
            #[serde(default)]
            reconciled: Option<Reconciled>,
        }
        let member: Member = serde_json::from_str(text).ok()?;
        member
            .reconciled
            .filter(|r| r.body_sha256 == envelope_sha256)
    }
}

/// What the reconciler knows of one fetch of a prediction ([`Envelope::reconciled`]).
#[derive(Debug, Clone, Copy)]
pub struct Fetch<'a> {
    /// The provider's name (the check's: the edge's route segment, `skytells`).
    pub provider: &'a str,
    /// The prediction id (a safe key segment, [`crate::archive::check_id`]).
    pub prediction_id: &'a str,
    /// The status the answer holds ([`crate::event::PredictionStatus::as_str`]).
    pub status: &'a str,
    /// The URL fetched.
    pub url: &'a str,
    /// When the answer was read, Unix milliseconds.
    pub fetched_at_ms: i64,
    /// The answer's request id, when it had one.
    pub request_id: Option<&'a str>,
}

/// The event id of a reconciled event: `{provider}:{prediction id}:{status}:reconciled`,
/// made safe as [`event_id`] makes every id (printable ASCII, at most
/// [`MAX_EVENT_ID_LEN`] bytes, else `sha256:{hex}`).
pub fn reconciled_event_id(provider: &str, prediction_id: &str, status: &str) -> String {
    safe_event_id(format!(
        "{provider}:{prediction_id}:{status}{RECONCILED_SUFFIX}"
    ))
}

/// Why an envelope could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// A queue message is not an envelope.
    #[error("queue message is not a hookvault envelope: {0}")]
    Malformed(String),
    /// A queue message carries a version this code does not read.
    #[error("envelope version {0} is not supported (this build reads versions 1 and 2)")]
    UnsupportedVersion(u32),
    /// The body's hash or length does not match `body_sha256` / `body_bytes`.
    #[error("the body does not match its sha256 and length")]
    Corrupt,
}

/// What the edge knows of a verified request, besides its body.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// The provider's name (the route's segment).
    pub provider: &'a str,
    /// The scheme that verified it.
    pub scheme: Scheme,
    /// What verification found.
    pub verified: &'a Verified,
    /// The scheme's headers as received.
    pub signature_headers: &'a [(String, String)],
    /// The request's `Content-Type`.
    pub content_type: Option<&'a str>,
    /// When it arrived, Unix milliseconds.
    pub received_at_ms: i64,
}

/// The length of `n` bytes in padded base64.
pub fn base64_len(n: usize) -> usize {
    n.div_ceil(3).saturating_mul(4)
}

/// True when a body of `body_len` bytes does not fit, as base64 with
/// [`ENVELOPE_RESERVE`] for the rest, in a queue message of `max_message` bytes: the
/// edge then writes it to S3 and queues a claim check.
pub fn needs_claim_check(body_len: usize, max_message: usize) -> bool {
    base64_len(body_len).saturating_add(ENVELOPE_RESERVE) > max_message
}

impl Envelope {
    /// The envelope of a verified body, carried inline. Never fails: every byte sequence
    /// can be carried, whatever its encoding or shape.
    pub fn new(received: &Received<'_>, body: &[u8]) -> Self {
        let digest: [u8; 32] = Sha256::digest(body).into();
        Self::with_digest(received, body, &digest, None)
    }

    /// [`Envelope::new`] with the body's SHA-256 computed by the caller (the edge uses the
    /// runtime's WebCrypto), and with `claim_check` the S3 object that holds the body (it
    /// is then not carried inline). `body_sha256` must be the digest of `body`: the reader
    /// checks it, so a wrong one makes the message unreadable downstream, never a
    /// different body.
    pub fn with_digest(
        received: &Received<'_>,
        body: &[u8],
        body_sha256: &[u8; 32],
        claim_check: Option<S3Object>,
    ) -> Self {
        let body_sha256_hex = hex::encode(body_sha256);
        let event_id = event_id(
            received.provider,
            received.scheme,
            received.verified,
            body,
            &body_sha256_hex,
        );
        Envelope {
            v: ENVELOPE_VERSION,
            provider: received.provider.to_owned(),
            scheme: received.scheme,
            event_id,
            received_at_ms: received.received_at_ms,
            key_id: received.verified.key_id.clone(),
            key_slot: received.verified.slot,
            signature_headers: received.signature_headers.to_vec(),
            content_type: received.content_type.map(str::to_owned),
            body_sha256: body_sha256_hex,
            body_bytes: body.len() as u64,
            body: match claim_check {
                Some(object) => Body::S3(object),
                None => Body::Inline(body.to_vec()),
            },
            trace_id: None,
            replay: None,
        }
    }

    /// The queue message body: version 2, ASCII only. Every character outside ASCII is
    /// written as a `\u` escape, so the message never holds a character SQS refuses
    /// (`#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`,
    /// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>),
    /// such as U+FFFE in an event id, whatever the fields hold.
    pub fn to_json(&self) -> String {
        self.to_json_with(None)
    }

    fn to_json_with(&self, reconciled: Option<&Reconciled>) -> String {
        let (body_base64, body_s3) = match &self.body {
            Body::Inline(bytes) => (
                Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                None,
            ),
            Body::S3(object) => (None, Some(object)),
        };
        let wire = WireOut {
            v: ENVELOPE_VERSION,
            provider: &self.provider,
            scheme: self.scheme,
            event_id: &self.event_id,
            received_at_ms: self.received_at_ms,
            key_id: &self.key_id,
            key_slot: self.key_slot,
            signature_headers: &self.signature_headers,
            content_type: self.content_type.as_deref(),
            body_sha256: &self.body_sha256,
            body_bytes: self.body_bytes,
            body_base64: body_base64.as_deref(),
            body_s3,
            trace_id: self.trace_id.as_deref(),
            replay: self.replay.as_ref(),
            reconciled,
        };
        let mut out = Vec::with_capacity(body_base64.as_ref().map_or(0, String::len) + 512);
        let mut ser = serde_json::Serializer::with_formatter(&mut out, AsciiFormatter);
        // Serialising strings, numbers and sequences into a Vec cannot fail, and the
        // formatter writes ASCII only.
        if wire.serialize(&mut ser).is_err() {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// The envelope of a prediction the reconciler fetched from the provider's API
    /// (issue 23): `body` is the API's answer byte for byte (carried inline, or by
    /// `claim_check` when too large), the event id is [`reconciled_event_id`], and, as no
    /// signature verified it, `scheme` is the provider's ([`Scheme::Skytells`]), `key_id` is
    /// `reconciled`, `key_slot` is `current` and `signature_headers` is empty: the evidence
    /// is `evidence` instead, sent with [`Envelope::to_json_reconciled`].
    /// `received_at_ms` is when it was fetched. Returns the envelope and the evidence,
    /// whose `body_sha256` is the envelope's.
    pub fn reconciled(
        fetch: &Fetch<'_>,
        body: &[u8],
        claim_check: Option<S3Object>,
    ) -> (Self, Reconciled) {
        let Fetch {
            provider,
            prediction_id,
            status,
            url,
            fetched_at_ms,
            request_id,
        } = *fetch;
        let request_id = request_id.map(str::to_owned);
        let digest: [u8; 32] = Sha256::digest(body).into();
        // No signature verified it: the provider's scheme and a key id that says so.
        let verified = Verified {
            key_id: RECONCILED_KEY_ID.to_owned(),
            slot: KeySlot::Current,
            delivery_id: None,
            timestamp: None,
        };
        let received = Received {
            provider,
            scheme: Scheme::Skytells,
            verified: &verified,
            signature_headers: &[],
            content_type: Some("application/json"),
            received_at_ms: fetched_at_ms,
        };
        let mut envelope = Self::with_digest(&received, body, &digest, claim_check);
        envelope.event_id = reconciled_event_id(provider, prediction_id, status);
        let body_sha256 = envelope.body_sha256.clone();
        let evidence = Reconciled {
            url: url.to_owned(),
            fetched_at_ms,
            request_id,
            body_sha256,
        };
        (envelope, evidence)
    }

    /// [`Envelope::to_json`] with the `reconciled` member: the message of a reconciled
    /// event (or of its replay, from its `event.json`).
    pub fn to_json_reconciled(&self, evidence: &Reconciled) -> String {
        self.to_json_with(Some(evidence))
    }

    /// Reads a queue message of version 1 or 2, checking the inline body's hash and
    /// length. A claim-checked body is checked by [`Envelope::check_body`] once fetched.
    pub fn from_json(text: &str) -> Result<Self, EnvelopeError> {
        #[derive(Deserialize)]
        struct Version {
            v: u32,
        }
        let malformed = |e: serde_json::Error| EnvelopeError::Malformed(e.to_string());
        let Version { v } = serde_json::from_str(text).map_err(malformed)?;
        let env = match v {
            1 => {
                let w: WireV1 = serde_json::from_str(text).map_err(malformed)?;
                let bytes = w.payload.get().as_bytes().to_vec();
                Envelope {
                    v,
                    provider: w.provider,
                    scheme: w.scheme,
                    event_id: w.event_id,
                    received_at_ms: w.received_at_ms,
                    key_id: w.key_id,
                    key_slot: w.key_slot,
                    signature_headers: Vec::new(),
                    content_type: None,
                    body_sha256: w.payload_sha256,
                    body_bytes: bytes.len() as u64,
                    body: Body::Inline(bytes),
                    trace_id: None,
                    replay: None,
                }
            }
            ENVELOPE_VERSION => {
                let w: WireIn = serde_json::from_str(text).map_err(malformed)?;
                let body = match (w.body_base64, w.body_s3) {
                    (Some(b64), None) => Body::Inline(
                        base64::engine::general_purpose::STANDARD
                            .decode(b64)
                            .map_err(|e| EnvelopeError::Malformed(format!("body_base64: {e}")))?,
                    ),
                    (None, Some(object)) => Body::S3(object),
                    _ => {
                        return Err(EnvelopeError::Malformed(
                            "exactly one of body_base64 and body_s3 is expected".into(),
                        ))
                    }
                };
                Envelope {
                    v,
                    provider: w.provider,
                    scheme: w.scheme,
                    event_id: w.event_id,
                    received_at_ms: w.received_at_ms,
                    key_id: w.key_id,
                    key_slot: w.key_slot,
                    signature_headers: w.signature_headers,
                    content_type: w.content_type,
                    body_sha256: w.body_sha256,
                    body_bytes: w.body_bytes,
                    body,
                    trace_id: crate::trace::checked(w.trace_id),
                    replay: w.replay,
                }
            }
            other => return Err(EnvelopeError::UnsupportedVersion(other)),
        };
        if let Body::Inline(bytes) = &env.body {
            env.check_body(bytes)?;
        }
        Ok(env)
    }

    /// The envelope of an archived event, rebuilt from its evidence (`event.json`) for
    /// `hookvault replay`: the same provider, scheme, event id, receipt time, key and
    /// headers, with `body` (inline, or a claim check the caller wrote first) and `replay`
    /// set. The reader checks the body against the record's `body_sha256`, so a body that
    /// is not the archived one is refused downstream.
    pub fn from_record(record: &crate::records::EventRecord, body: Body, replay: Replay) -> Self {
        Envelope {
            v: ENVELOPE_VERSION,
            provider: record.provider.clone(),
            scheme: record.scheme,
            event_id: record.event_id.clone(),
            received_at_ms: record.received_at_ms,
            key_id: record.key_id.clone(),
            key_slot: record.key_slot,
            signature_headers: record.signature_headers.clone(),
            content_type: record.content_type.clone(),
            body_sha256: record.body_sha256.clone(),
            body_bytes: record.body_bytes,
            body,
            trace_id: crate::trace::checked(record.trace_id.clone()),
            replay: Some(replay),
        }
    }

    /// Checks that `bytes` are the body this envelope announces (length and SHA-256).
    pub fn check_body(&self, bytes: &[u8]) -> Result<(), EnvelopeError> {
        if bytes.len() as u64 != self.body_bytes
            || hex::encode(Sha256::digest(bytes)) != self.body_sha256
        {
            return Err(EnvelopeError::Corrupt);
        }
        Ok(())
    }

    /// The body, when it is carried inline.
    pub fn inline_body(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Inline(bytes) => Some(bytes),
            Body::S3(_) => None,
        }
    }

    /// A FIFO `MessageGroupId`: the event id (printable ASCII, cut to SQS's 128
    /// characters by hashing when longer).
    pub fn group_id(&self) -> String {
        if self.event_id.len() <= MAX_GROUP_ID_LEN {
            self.event_id.clone()
        } else {
            hex::encode(Sha256::digest(self.event_id.as_bytes()))
        }
    }

    /// A FIFO `MessageDeduplicationId`: SHA-256 of the provider and the body's SHA-256, so
    /// a sender's retry of the same bytes is one message, and two different bodies are
    /// never taken for one (even with the same event id).
    pub fn dedup_id(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.provider.as_bytes());
        h.update(b"\n");
        h.update(self.body_sha256.as_bytes());
        hex::encode(h.finalize())
    }
}

#[derive(Serialize)]
struct WireOut<'a> {
    v: u32,
    provider: &'a str,
    scheme: Scheme,
    event_id: &'a str,
    received_at_ms: i64,
    key_id: &'a str,
    key_slot: KeySlot,
    signature_headers: &'a [(String, String)],
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    body_sha256: &'a str,
    body_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_s3: Option<&'a S3Object>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replay: Option<&'a Replay>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reconciled: Option<&'a Reconciled>,
}

#[derive(Deserialize)]
struct WireIn {
    provider: String,
    scheme: Scheme,
    event_id: String,
    received_at_ms: i64,
    key_id: String,
    key_slot: KeySlot,
    #[serde(default)]
    signature_headers: Vec<(String, String)>,
    #[serde(default)]
    content_type: Option<String>,
    body_sha256: String,
    body_bytes: u64,
    #[serde(default)]
    body_base64: Option<String>,
    #[serde(default)]
    body_s3: Option<S3Object>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    replay: Option<Replay>,
}

/// Version 1: the body as a JSON raw value (which could only carry JSON, and whose
/// surrounding whitespace serde trimmed: the fault version 2 fixes).
#[derive(Deserialize)]
struct WireV1 {
    provider: String,
    scheme: Scheme,
    event_id: String,
    received_at_ms: i64,
    key_id: String,
    key_slot: KeySlot,
    payload_sha256: String,
    payload: Box<RawValue>,
}

/// serde_json's compact formatter, writing every non-ASCII character of a string as a
/// `\u` escape (a surrogate pair above U+FFFF), as JSON allows (RFC 8259, section 7).
struct AsciiFormatter;

impl serde_json::ser::Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        if fragment.is_ascii() {
            return writer.write_all(fragment.as_bytes());
        }
        let mut units = [0u16; 2];
        for c in fragment.chars() {
            if c.is_ascii() {
                writer.write_all(&[c as u8])?;
            } else {
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// The event id used to deduplicate and to find an event:
///
/// * the sender's delivery id where the scheme has one (`webhook-id`, `X-GitHub-Delivery`):
///   `{provider}:{id}`;
/// * Skytells, when the body is a prediction webhook: `{provider}:{prediction id}:{status}`
///   (a duplicate webhook of the same outcome gets the same id);
/// * Stripe, when the body is JSON with a string `id`: `{provider}:{id}`;
/// * otherwise `{provider}:sha256:{body_sha256}`: a body that is not JSON, or not a
///   prediction, still gets a stable id.
///
/// An id that is longer than [`MAX_EVENT_ID_LEN`] or holds anything but printable ASCII
/// is replaced by `sha256:{hex of its SHA-256}`, so it is always safe as an SQS attribute,
/// a FIFO group id and a log field.
pub fn event_id(
    provider: &str,
    scheme: Scheme,
    verified: &Verified,
    body: &[u8],
    body_sha256_hex: &str,
) -> String {
    let id = match (&verified.delivery_id, scheme) {
        (Some(id), _) => Some(format!("{provider}:{id}")),
        (None, Scheme::Skytells) => crate::event::prediction_head(body)
            .map(|head| format!("{provider}:{}:{}", head.id, head.status.as_str())),
        (None, Scheme::Stripe) => {
            crate::event::Head::read(body).and_then(|head| Some(format!("{provider}:{}", head.id?)))
        }
        (None, _) => None,
    }
    .unwrap_or_else(|| format!("{provider}:sha256:{body_sha256_hex}"));
    safe_event_id(id)
}

/// `id` when it is printable ASCII of at most [`MAX_EVENT_ID_LEN`] bytes, else
/// `sha256:{hex of its SHA-256}`.
fn safe_event_id(id: String) -> String {
    if id.len() <= MAX_EVENT_ID_LEN && id.bytes().all(|c| c.is_ascii_graphic()) {
        id
    } else {
        format!("sha256:{}", hex::encode(Sha256::digest(id.as_bytes())))
    }
}

#[cfg(test)]
mod tests;
