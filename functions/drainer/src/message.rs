//! The `SendMessage` the edge would have made for a spooled envelope.
//!
//! The edge (`edge/src/sqs.rs`, `unsigned_send_message`) sends:
//!
//! * `MessageBody`: the envelope's JSON, [`Envelope::to_json`] (ASCII only). The spool
//!   object holds exactly that text (the edge writes the same string to
//!   `spool/{provider}/{body_sha256}`), so the drainer sends the object's text as it is,
//!   once it has checked that it parses as an envelope;
//! * `MessageAttributes`, each of type `String`: [`EVENT_ID_ATTRIBUTE`] (the envelope's
//!   event id), [`PROVIDER_ATTRIBUTE`] (its provider) and, when the envelope has a trace
//!   id, [`hookvault_core::trace::SQS_ATTRIBUTE`] (`TraceId`, 32 hex digits);
//! * on a FIFO queue, `MessageGroupId` = [`Envelope::group_id`] and
//!   `MessageDeduplicationId` = [`Envelope::dedup_id`] (provider and body digest, so a
//!   message the edge queued after all and the drainer's copy are one message within
//!   SQS's 5-minute deduplication interval,
//!   <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html>).
//!
//! The drainer adds one attribute of its own, [`SPOOLED_ATTRIBUTE`] (the spool object's
//! key), which the archiver records in the event log (`spooled`).
//!
//! A unit test builds the edge's own request for the same envelope and checks that the
//! two agree field for field, the drainer's own attribute aside.

use hookvault_core::envelope::Envelope;
pub use hookvault_core::envelope::SPOOLED_ATTRIBUTE;

/// The attribute that carries the event id (the edge's name).
pub const EVENT_ID_ATTRIBUTE: &str = "event_id";

/// The attribute that carries the provider (the edge's name).
pub const PROVIDER_ATTRIBUTE: &str = "provider";

/// One `SendMessage`, before the SDK builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The message body: the envelope's JSON, exactly as spooled.
    pub body: String,
    /// `(name, value)` of each `String` message attribute, in the edge's order.
    pub attributes: Vec<(&'static str, String)>,
    /// `(MessageGroupId, MessageDeduplicationId)` on a FIFO queue.
    pub fifo: Option<(String, String)>,
    /// The event id, for logs.
    pub event_id: String,
    /// The trace id, for logs.
    pub trace_id: Option<String>,
}

impl Message {
    /// The message for `envelope`, read from the spooled text `json` (sent as it is) at
    /// `spool_key`; `fifo` when the queue is a FIFO queue.
    pub fn new(json: String, envelope: &Envelope, fifo: bool, spool_key: &str) -> Self {
        let mut attributes = vec![
            (EVENT_ID_ATTRIBUTE, envelope.event_id.clone()),
            (PROVIDER_ATTRIBUTE, envelope.provider.clone()),
        ];
        if let Some(t) = &envelope.trace_id {
            attributes.push((hookvault_core::trace::SQS_ATTRIBUTE, t.clone()));
        }
        attributes.push((SPOOLED_ATTRIBUTE, spool_key.to_owned()));
        Message {
            body: json,
            attributes,
            fifo: fifo.then(|| (envelope.group_id(), envelope.dedup_id())),
            event_id: envelope.event_id.clone(),
            trace_id: envelope.trace_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookvault_core::envelope::Body;
    use hookvault_core::{KeySlot, Scheme};
    use hookvault_edge::sqs::{unsigned_send_message, SqsTarget};
    use serde_json::Value;

    pub(crate) fn envelope(trace: Option<&str>) -> Envelope {
        let body = br#"{"id":"pred_1","status":"succeeded"}"#.to_vec();
        Envelope {
            v: hookvault_core::envelope::ENVELOPE_VERSION,
            provider: "skytells".into(),
            scheme: Scheme::Skytells,
            event_id: "pred_1:succeeded".into(),
            received_at_ms: 1_764_435_600_000,
            key_id: "k1".into(),
            key_slot: KeySlot::Current,
            signature_headers: vec![("x-skytells-signature".into(), "ab".repeat(32))],
            content_type: Some("application/json".into()),
            body_sha256: hex_sha256(&body),
            body_bytes: body.len() as u64,
            body: Body::Inline(body),
            trace_id: trace.map(str::to_owned),
            replay: None,
        }
    }

    fn hex_sha256(bytes: &[u8]) -> String {
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
    }

    fn target(queue_url: &str) -> SqsTarget {
        SqsTarget {
            queue_url: queue_url.to_owned(),
            endpoint: "https://sqs.eu-west-1.amazonaws.com/".into(),
            region: "eu-west-1".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        }
    }

    /// The edge's SendMessage body, as the drainer's `Message`.
    fn edges(queue_url: &str, envelope: &Envelope) -> Message {
        let req = unsigned_send_message(&target(queue_url), envelope, 1 << 20)
            .unwrap_or_else(|e| panic!("{e}"));
        let v: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
        let attrs = v["MessageAttributes"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut attributes = Vec::new();
        for (name, a) in &attrs {
            assert_eq!(a["DataType"], "String");
            let name: &'static str = match name.as_str() {
                EVENT_ID_ATTRIBUTE => EVENT_ID_ATTRIBUTE,
                PROVIDER_ATTRIBUTE => PROVIDER_ATTRIBUTE,
                hookvault_core::trace::SQS_ATTRIBUTE => hookvault_core::trace::SQS_ATTRIBUTE,
                other => panic!("an attribute the drainer does not send: {other}"),
            };
            attributes.push((name, a["StringValue"].as_str().unwrap_or("").to_owned()));
        }
        let fifo = v.get("MessageGroupId").map(|g| {
            (
                g.as_str().unwrap_or("").to_owned(),
                v["MessageDeduplicationId"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        });
        Message {
            body: v["MessageBody"].as_str().unwrap_or("").to_owned(),
            attributes,
            fifo,
            event_id: envelope.event_id.clone(),
            trace_id: envelope.trace_id.clone(),
        }
    }

    fn sorted(mut m: Message) -> Message {
        m.attributes.sort();
        m
    }

    #[test]
    fn the_message_is_the_edges_on_standard_and_fifo_queues() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        for (queue, fifo) in [
            ("https://sqs.eu-west-1.amazonaws.com/1/events", false),
            ("https://sqs.eu-west-1.amazonaws.com/1/events.fifo", true),
        ] {
            for e in [envelope(Some(trace)), envelope(None)] {
                let key = "spool/skytells/abc";
                let ours = Message::new(e.to_json(), &e, fifo, key);
                // The drainer's own attribute names the spool key; the rest is the edge's.
                let mut edge_s = ours.clone();
                edge_s.attributes.retain(|(n, _)| *n != SPOOLED_ATTRIBUTE);
                assert_eq!(sorted(edge_s), sorted(edges(queue, &e)), "{queue}");
                assert!(ours
                    .attributes
                    .contains(&(SPOOLED_ATTRIBUTE, key.to_owned())));
                assert_eq!(ours.fifo.is_some(), fifo);
                assert_eq!(
                    ours.attributes.len(),
                    if e.trace_id.is_some() { 4 } else { 3 }
                );
            }
        }
    }
}
