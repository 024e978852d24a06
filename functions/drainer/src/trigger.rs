//! What an invocation asks for, read from its payload.
//!
//! * **An S3 event notification** (`{"Records": [{"eventSource": "aws:s3", "s3": {"bucket":
//!   {"name"}, "object": {"key"}}}, …]}`, `aws_lambda_events`' `S3Event`): drain those keys.
//!   S3 writes the key URL-encoded, spaces as `+`
//!   (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html>),
//!   decoded here.
//! * **EventBridge's "Object Created"** (`{"source": "aws.s3", "detail-type": "Object
//!   Created", "detail": {"bucket": {"name"}, "object": {"key"}}}`,
//!   <https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html>): what the
//!   template wires (the archive bucket sends its events to EventBridge; an S3
//!   notification to the function would make the bucket depend on the function, whose
//!   role names the bucket: a circular dependency). The key is taken as written.
//! * **EventBridge's "Scheduled Event"** (`{"source": "aws.events", "detail-type":
//!   "Scheduled Event"}`, the template's `rate(1 minute)`), or `{"sweep": true}` by hand:
//!   list `spool/` and drain every key (the backstop for a lost or failed event).
//!
//! Keys outside `spool/` and events for another bucket are dropped (logged). Whatever
//! key an event names, the sweep drains it later if the event was lost or misread: an
//! event is only a hint to drain early.

use aws_lambda_events::event::s3::S3Event;
use serde::Deserialize;
use serde_json::Value;

use crate::config::SPOOL_PREFIX;

/// What to drain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// These keys (from object-created events), deduplicated, in order.
    Keys(Vec<String>),
    /// Every key under `spool/`.
    Sweep,
}

/// The payload is none of the shapes above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the drainer does not know this event: {0}")]
pub struct UnknownEvent(pub String);

#[derive(Deserialize)]
struct EventBridge {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    #[serde(default)]
    detail: Value,
}

impl Trigger {
    /// Reads `payload`, keeping the keys of `bucket` under `spool/`. Errors: a payload of
    /// no known shape ([`UnknownEvent`], its first 200 characters).
    pub fn from_payload(payload: &Value, bucket: &str) -> Result<Trigger, UnknownEvent> {
        let unknown = || {
            let text = payload.to_string();
            UnknownEvent(text.chars().take(200).collect())
        };
        if payload.get("Records").is_some() {
            let event: S3Event = serde_json::from_value(payload.clone()).map_err(|_| unknown())?;
            let keys = event.records.iter().filter_map(|r| {
                let key = r.s3.object.key.as_deref()?;
                keep(r.s3.bucket.name.as_deref(), bucket, decode_key(key))
            });
            return Ok(Trigger::Keys(dedup(keys)));
        }
        if payload.get("sweep").and_then(Value::as_bool) == Some(true) {
            return Ok(Trigger::Sweep);
        }
        let event: EventBridge = serde_json::from_value(payload.clone()).map_err(|_| unknown())?;
        match (event.source.as_str(), event.detail_type.as_str()) {
            ("aws.events", "Scheduled Event") => Ok(Trigger::Sweep),
            ("aws.s3", "Object Created") => {
                let name = event.detail["bucket"]["name"].as_str();
                let key = event.detail["object"]["key"].as_str().map(str::to_owned);
                Ok(Trigger::Keys(dedup(
                    key.and_then(|k| keep(name, bucket, k)).into_iter(),
                )))
            }
            _ => Err(unknown()),
        }
    }
}

/// `key` if it is under `spool/` of `bucket`; logged and dropped otherwise.
fn keep(name: Option<&str>, bucket: &str, key: String) -> Option<String> {
    if name != Some(bucket) {
        tracing::warn!(bucket = ?name, key, "an event for another bucket: ignored");
        return None;
    }
    if !key.starts_with(SPOOL_PREFIX) {
        tracing::warn!(key, "an event outside spool/: ignored");
        return None;
    }
    Some(key)
}

fn dedup(keys: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in keys {
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// An S3 notification's key, decoded: `+` is a space, `%XX` a byte (a sequence that is
/// not UTF-8 is kept lossily; no spool key has one, the edge writes
/// `spool/{provider}/{hex}` with provider names of `A-Z a-z 0-9 - _`).
pub fn decode_key(key: &str) -> String {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s3_record(bucket: &str, key: &str) -> Value {
        json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
            "eventTime": "2026-12-06T00:00:00.000Z", "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:X"},
            "requestParameters": {"sourceIPAddress": "1.2.3.4"},
            "responseElements": {},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "spool",
                   "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                   "object": {"key": key, "size": 10, "sequencer": "00"}}
        })
    }

    #[test]
    fn s3_notifications_name_decoded_spool_keys_of_the_bucket() {
        let payload = json!({"Records": [
            s3_record("spool-b", "spool/sky%2Dtells/ab+cd"),
            s3_record("spool-b", "spool/sky%2Dtells/ab+cd"),
            s3_record("other", "spool/x/1"),
            s3_record("spool-b", "raw/1"),
        ]});
        assert_eq!(
            Trigger::from_payload(&payload, "spool-b"),
            Ok(Trigger::Keys(vec!["spool/sky-tells/ab cd".into()]))
        );
    }

    #[test]
    fn eventbridge_object_created_and_schedules_are_read() {
        let created = json!({
            "version": "0", "id": "1", "source": "aws.s3", "detail-type": "Object Created",
            "account": "1", "time": "2026-12-06T00:00:00Z", "region": "eu-west-1",
            "resources": ["arn:aws:s3:::spool-b"],
            "detail": {"version": "0", "bucket": {"name": "spool-b"},
                       "object": {"key": "spool/skytells/abc", "size": 5}, "reason": "PutObject"}
        });
        assert_eq!(
            Trigger::from_payload(&created, "spool-b"),
            Ok(Trigger::Keys(vec!["spool/skytells/abc".into()]))
        );
        assert_eq!(
            Trigger::from_payload(&created, "another"),
            Ok(Trigger::Keys(vec![]))
        );
        let scheduled = json!({"version": "0", "id": "2", "source": "aws.events",
            "detail-type": "Scheduled Event", "detail": {}});
        assert_eq!(
            Trigger::from_payload(&scheduled, "spool-b"),
            Ok(Trigger::Sweep)
        );
        assert_eq!(
            Trigger::from_payload(&json!({"sweep": true}), "b"),
            Ok(Trigger::Sweep)
        );
        assert!(Trigger::from_payload(&json!({"hello": 1}), "b").is_err());
        assert!(Trigger::from_payload(&json!({"Records": 3}), "b").is_err());
    }
}
