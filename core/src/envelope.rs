//! The versioned queue envelope: what the edge puts on SQS and the archiver reads.
//!
//! ```json
//! {"v":1,"provider":"skytells","scheme":"skytells","event_id":"skytells:pred_abc:succeeded",
//!  "received_at_ms":1764000000000,"key_id":"2026-11","key_slot":"current",
//!  "payload_sha256":"…","payload":{…the raw body, byte for byte…}}
//! ```
//! `payload` is the request body verbatim (a JSON raw value, never re-serialised), so the
//! archiver sees exactly the bytes whose signature was checked.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::event::{EventError, WebhookEvent};
use crate::keyring::KeySlot;
use crate::scheme::{Scheme, Verified};

/// The envelope version this code writes and reads.
pub const ENVELOPE_VERSION: u32 = 1;

/// The longest a FIFO queue's deduplication id may be.
const MAX_DEDUP_ID_LEN: usize = 128;

/// One verified webhook, ready for the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// Envelope version ([`ENVELOPE_VERSION`]).
    pub v: u32,
    /// The provider's name, from the edge's route (`/webhooks/{provider}`).
    pub provider: String,
    /// The scheme that verified it.
    pub scheme: Scheme,
    /// A stable id for deduplication (see [`event_id`]).
    pub event_id: String,
    /// When the edge received it, Unix milliseconds.
    pub received_at_ms: i64,
    /// The id of the key that matched.
    pub key_id: String,
    /// The slot of the key that matched.
    pub key_slot: KeySlot,
    /// Lowercase hex SHA-256 of the payload bytes.
    pub payload_sha256: String,
    /// The request body, verbatim.
    pub payload: Box<RawValue>,
}

/// Why an envelope could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The webhook body is not JSON.
    #[error("body is not JSON: {0}")]
    BodyNotJson(String),
    /// The provider's body is JSON but not a prediction webhook.
    #[error(transparent)]
    Event(#[from] EventError),
    /// A queue message is not an envelope.
    #[error("queue message is not a hookvault envelope: {0}")]
    Malformed(String),
    /// A queue message carries a version this code does not read.
    #[error("envelope version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u32),
    /// The payload's hash does not match `payload_sha256`.
    #[error("payload does not match its sha256")]
    Corrupt,
}

impl Envelope {
    /// Builds the envelope for a verified body. The Skytells scheme's body must be a
    /// prediction webhook; other schemes' bodies must be JSON.
    pub fn new(
        provider: &str,
        scheme: Scheme,
        verified: &Verified,
        body: &[u8],
        received_at_ms: i64,
    ) -> Result<Self, EnvelopeError> {
        let digest: [u8; 32] = Sha256::digest(body).into();
        Self::with_digest(provider, scheme, verified, body, received_at_ms, &digest)
    }

    /// [`Envelope::new`] with the body's SHA-256 computed by the caller (the edge uses the
    /// runtime's WebCrypto, native where this crate's would run as WASM). It must be the
    /// digest of `body`: [`Envelope::from_json`] checks it, so a wrong one makes the
    /// message unreadable downstream, never a different payload.
    pub fn with_digest(
        provider: &str,
        scheme: Scheme,
        verified: &Verified,
        body: &[u8],
        received_at_ms: i64,
        body_sha256: &[u8; 32],
    ) -> Result<Self, EnvelopeError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| EnvelopeError::BodyNotJson("not UTF-8".into()))?;
        let payload = RawValue::from_string(text.to_owned())
            .map_err(|e| EnvelopeError::BodyNotJson(e.to_string()))?;
        let event_id = event_id(provider, scheme, verified, body)?;
        Ok(Envelope {
            v: ENVELOPE_VERSION,
            provider: provider.to_owned(),
            scheme,
            event_id,
            received_at_ms,
            key_id: verified.key_id.clone(),
            key_slot: verified.slot,
            payload_sha256: hex::encode(body_sha256),
            payload,
        })
    }

    /// The queue message body.
    pub fn to_json(&self) -> String {
        // Sized once: the payload plus the envelope's own fields.
        let mut out = Vec::with_capacity(self.payload.get().len() + 512);
        // Serialising a struct of strings, numbers and a raw value cannot fail, and
        // serde_json writes UTF-8.
        if serde_json::to_writer(&mut out, self).is_err() {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Reads a queue message, checking the version and the payload's hash.
    pub fn from_json(text: &str) -> Result<Self, EnvelopeError> {
        #[derive(Deserialize)]
        struct Version {
            v: u32,
        }
        let Version { v } =
            serde_json::from_str(text).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if v != ENVELOPE_VERSION {
            return Err(EnvelopeError::UnsupportedVersion(v));
        }
        let env: Envelope =
            serde_json::from_str(text).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if hex::encode(Sha256::digest(env.payload.get().as_bytes())) != env.payload_sha256 {
            return Err(EnvelopeError::Corrupt);
        }
        Ok(env)
    }

    /// The payload as the provider's webhook event.
    pub fn event(&self) -> Result<WebhookEvent, EnvelopeError> {
        Ok(WebhookEvent::parse(self.payload.get().as_bytes())?)
    }

    /// A FIFO `MessageDeduplicationId`: the event id if it fits SQS's rules (at most 128
    /// visible ASCII characters), else its SHA-256.
    pub fn dedup_id(&self) -> String {
        let id = &self.event_id;
        if id.len() <= MAX_DEDUP_ID_LEN && id.bytes().all(|c| c.is_ascii_graphic()) {
            id.clone()
        } else {
            hex::encode(Sha256::digest(id.as_bytes()))
        }
    }
}

/// The event id used to deduplicate: the sender's delivery id where the scheme has one;
/// for Skytells `{provider}:{prediction id}:{status}` (a duplicate webhook of the same
/// outcome gets the same id); for Stripe the event's `id`; else the body's SHA-256.
pub fn event_id(
    provider: &str,
    scheme: Scheme,
    verified: &Verified,
    body: &[u8],
) -> Result<String, EnvelopeError> {
    if let Some(id) = &verified.delivery_id {
        return Ok(format!("{provider}:{id}"));
    }
    match scheme {
        Scheme::Skytells => {
            let ev = WebhookEvent::parse(body)?;
            Ok(format!(
                "{provider}:{}:{}",
                ev.prediction.id,
                ev.prediction.status.as_str()
            ))
        }
        _ => {
            let value: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| EnvelopeError::BodyNotJson(e.to_string()))?;
            Ok(match value.get("id").and_then(serde_json::Value::as_str) {
                Some(id) if scheme == Scheme::Stripe => format!("{provider}:{id}"),
                _ => format!("{provider}:sha256:{}", hex::encode(Sha256::digest(body))),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(delivery: Option<&str>) -> Verified {
        Verified {
            key_id: "k1".into(),
            slot: KeySlot::Current,
            delivery_id: delivery.map(str::to_owned),
            timestamp: None,
        }
    }

    #[test]
    fn round_trip_keeps_payload_bytes_exactly() {
        let body = br#"{ "id" : "pred_1", "status":"succeeded", "output":["https://x/y.mp4"], "n": 1.000 }"#;
        let env = Envelope::new(
            "skytells",
            Scheme::Skytells,
            &verified(None),
            body,
            1_700_000_000_123,
        )
        .unwrap();
        assert_eq!(env.event_id, "skytells:pred_1:succeeded");
        let back = Envelope::from_json(&env.to_json()).unwrap();
        assert_eq!(back.payload.get().as_bytes(), body);
        assert_eq!(back.event().unwrap().prediction.id, "pred_1");
        assert_eq!(back.received_at_ms, 1_700_000_000_123);
    }

    #[test]
    fn a_digest_from_elsewhere_is_kept_and_checked_downstream() {
        let body = br#"{"id":"pred_2","status":"failed"}"#;
        let v = verified(None);
        let digest: [u8; 32] = Sha256::digest(body).into();
        let given = Envelope::with_digest("skytells", Scheme::Skytells, &v, body, 5, &digest);
        let computed = Envelope::new("skytells", Scheme::Skytells, &v, body, 5);
        assert_eq!(given.unwrap().to_json(), computed.unwrap().to_json());
        // A wrong digest never passes for the payload: the reader refuses the message.
        let wrong = Envelope::with_digest("skytells", Scheme::Skytells, &v, body, 5, &[0; 32]);
        assert_eq!(
            Envelope::from_json(&wrong.unwrap().to_json()).unwrap_err(),
            EnvelopeError::Corrupt
        );
    }

    #[test]
    fn refuses_non_json_non_prediction_and_other_versions() {
        assert!(matches!(
            Envelope::new(
                "skytells",
                Scheme::Skytells,
                &verified(None),
                b"not json",
                0
            ),
            Err(EnvelopeError::BodyNotJson(_))
        ));
        assert!(matches!(
            Envelope::new(
                "skytells",
                Scheme::Skytells,
                &verified(None),
                b"{\"a\":1}",
                0
            ),
            Err(EnvelopeError::Event(_))
        ));
        let env = Envelope::new(
            "gh",
            Scheme::GitHub,
            &verified(Some("d-1")),
            b"{\"a\":1}",
            0,
        )
        .unwrap();
        assert_eq!(env.event_id, "gh:d-1");
        let v2 = env.to_json().replacen("\"v\":1", "\"v\":2", 1);
        assert_eq!(
            Envelope::from_json(&v2).unwrap_err(),
            EnvelopeError::UnsupportedVersion(2)
        );
        let tampered = env.to_json().replace("\"a\":1", "\"a\":2");
        assert_eq!(
            Envelope::from_json(&tampered).unwrap_err(),
            EnvelopeError::Corrupt
        );
    }

    #[test]
    fn dedup_id_fits_sqs_rules() {
        let long = "x".repeat(300);
        let env = Envelope::new("p", Scheme::Standard, &verified(Some(&long)), b"{}", 0).unwrap();
        assert_eq!(env.dedup_id().len(), 64);
        let env = Envelope::new(
            "p",
            Scheme::Stripe,
            &verified(None),
            br#"{"id":"evt_1"}"#,
            0,
        )
        .unwrap();
        assert_eq!(env.dedup_id(), "p:evt_1");
    }
}
