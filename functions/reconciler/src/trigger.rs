//! What an invocation asks for, read from its payload.
//!
//! * **An SQS batch** from the check queue (`{"Records": [{"eventSource": "aws:sqs", …}]}`,
//!   `aws_lambda_events`' `SqsEvent`): one check per record; the answer is an
//!   `SqsBatchResponse` naming the records to deliver again (`batchItemFailures`: the
//!   event source mapping must have `ReportBatchItemFailures`).
//! * **EventBridge's "Scheduled Event"** (`{"source": "aws.events", "detail-type":
//!   "Scheduled Event"}`), or `{"sweep": true}` by hand: the sweep ([`crate::sweep`]),
//!   which does nothing unless `SWEEP_ENABLED`.

use aws_lambda_events::event::sqs::SqsEvent;
use serde::Deserialize;
use serde_json::Value;

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Check each record of the batch.
    Checks(SqsEvent),
    /// Sweep the provider's list.
    Sweep,
}

/// The payload is none of the shapes above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the reconciler does not know this event: {0}")]
pub struct UnknownEvent(pub String);

#[derive(Deserialize)]
struct EventBridge {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
}

impl Trigger {
    /// Reads `payload`. Errors: a payload of no known shape ([`UnknownEvent`], its first
    /// 200 characters).
    pub fn from_payload(payload: &Value) -> Result<Trigger, UnknownEvent> {
        let unknown = || UnknownEvent(payload.to_string().chars().take(200).collect());
        if payload.get("Records").is_some() {
            return serde_json::from_value(payload.clone())
                .map(Trigger::Checks)
                .map_err(|_| unknown());
        }
        if payload.get("sweep").and_then(Value::as_bool) == Some(true) {
            return Ok(Trigger::Sweep);
        }
        let event: EventBridge = serde_json::from_value(payload.clone()).map_err(|_| unknown())?;
        match (event.source.as_str(), event.detail_type.as_str()) {
            ("aws.events", "Scheduled Event") => Ok(Trigger::Sweep),
            _ => Err(unknown()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sqs_batches_and_schedules_are_read_and_anything_else_refused() {
        let batch = json!({"Records": [{"messageId": "m1", "receiptHandle": "r",
            "body": "{}", "attributes": {}, "messageAttributes": {}, "md5OfBody": "x",
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-west-1:1:checks",
            "awsRegion": "eu-west-1"}]});
        match Trigger::from_payload(&batch) {
            Ok(Trigger::Checks(e)) => {
                assert_eq!(e.records.len(), 1);
                assert_eq!(e.records[0].message_id.as_deref(), Some("m1"));
            }
            other => panic!("{other:?}"),
        }
        let scheduled = json!({"version": "0", "id": "2", "source": "aws.events",
            "detail-type": "Scheduled Event", "detail": {}});
        assert_eq!(Trigger::from_payload(&scheduled), Ok(Trigger::Sweep));
        assert_eq!(
            Trigger::from_payload(&json!({"sweep": true})),
            Ok(Trigger::Sweep)
        );
        assert!(Trigger::from_payload(&json!({"hello": 1})).is_err());
        assert!(Trigger::from_payload(&json!({"Records": 3})).is_err());
        assert!(Trigger::from_payload(
            &json!({"source": "aws.s3", "detail-type": "Object Created"})
        )
        .is_err());
    }
}
