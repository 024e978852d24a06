//! Issue 24, item 2, end to end: while SQS refuses, verified webhooks are answered 202 and
//! spooled by the edge (workerd); once SQS is back, the drainer (under cargo-lambda, as
//! deployed) queues them as the edge would have, with no action by an operator, the
//! archiver keeps each one byte for byte, and the spool is empty.

use hookvault_core::envelope::Envelope;
use hookvault_core::Scheme;
use hookvault_localstack::lambda::{local_aws_env, LambdaFunction};
use hookvault_localstack::{s3, sqs};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::e2e_lossless::Rig;
use crate::utils::{now, sign, BUCKET};

const SECRET: &str = "spool-secret";

/// An S3 event notification for `key` in [`BUCKET`], as S3 sends it to Lambda.
fn object_created(key: &str) -> Value {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-12-06T00:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:EDGE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "spool",
               "bucket": {"name": BUCKET, "arn": format!("arn:aws:s3:::{BUCKET}")},
               "object": {"key": key, "size": 1, "sequencer": "00"}}
    }]})
}

/// S3's "Object Created" on EventBridge for `key` in [`BUCKET`] (what the template wires).
fn object_created_on_eventbridge(key: &str) -> Value {
    json!({"version": "0", "id": "created", "detail-type": "Object Created",
           "source": "aws.s3", "account": "123456789012",
           "time": "2026-12-06T00:00:01Z", "region": "us-east-1",
           "resources": [format!("arn:aws:s3:::{BUCKET}")],
           "detail": {"version": "0", "bucket": {"name": BUCKET},
                      "object": {"key": key, "size": 1, "etag": "e", "sequencer": "00"},
                      "request-id": "r", "requester": "123456789012",
                      "source-ip-address": "127.0.0.1", "reason": "PutObject"}})
}

/// EventBridge's scheduled event (the template's `rate(5 minutes)`).
fn scheduled() -> Value {
    json!({"version": "0", "id": "sweep", "detail-type": "Scheduled Event",
           "source": "aws.events", "account": "123456789012",
           "time": "2026-12-06T00:05:00Z", "region": "us-east-1",
           "resources": ["arn:aws:events:us-east-1:123456789012:rule/drainer-sweep"],
           "detail": {}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_webhooks_reach_the_archive_byte_for_byte_once_sqs_is_back() {
    let rig = Rig::start_keyed("events", SECRET).await;
    // SQS refuses: the queue is gone (QueueDoesNotExist, a refusal no retry fixes).
    rig.stack
        .sqs
        .delete_queue()
        .queue_url(&rig.stack.queue_url)
        .send()
        .await
        .unwrap();
    let bodies: Vec<Vec<u8>> = vec![
        br#"{"id":"pred_spool_1","status":"succeeded","model":"m","output":"text only"}"#.to_vec(),
        b"\xef\xbb\xbf{\"id\":\"pred_spool_2\",\"status\":\"processing\"}\r\n".to_vec(),
        b"payload=not%20json&bytes=\xff\xfe".to_vec(),
        br#"{"id":"pred_spool_3","status":"failed","error":"boom"}"#.to_vec(),
    ];
    let mut spooled = Vec::new();
    for body in &bodies {
        let headers = sign(Scheme::Skytells, SECRET, body, now());
        let (status, text) = rig.send_with(body, &headers).await;
        assert_eq!(status, 202, "{text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["status"], "spooled", "{answer}");
        let key = format!("spool/skytells/{}", hex::encode(Sha256::digest(body)));
        let (json, _) = s3::get(&rig.stack.s3, BUCKET, &key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("nothing at {key}"));
        spooled.push((key, String::from_utf8(json).unwrap()));
    }
    assert_eq!(
        s3::keys(&rig.stack.s3, BUCKET, "spool/")
            .await
            .unwrap()
            .len(),
        bodies.len()
    );

    // SQS is back (the same queue URL), and the drainer runs as Lambda runs it.
    let queue_url = sqs::create_queue(&rig.stack.sqs, "events").await.unwrap();
    assert_eq!(queue_url, rig.stack.queue_url);
    let env = local_aws_env(
        &rig.stack.moto.endpoint,
        &[("SPOOL_BUCKET", BUCKET), ("QUEUE_URL", &queue_url)],
    );
    let drainer = LambdaFunction::start("functions/drainer", "drainer", &env)
        .await
        .unwrap();
    // The first object's created event (as an S3 notification) drains it, the second's
    // (as EventBridge delivers it) the second; the schedule's sweep the rest.
    let first = drainer
        .invoke(&object_created(&spooled[0].0))
        .await
        .unwrap();
    assert_eq!(first["queued"].as_array().map(Vec::len), Some(1), "{first}");
    let second = drainer
        .invoke(&object_created_on_eventbridge(&spooled[1].0))
        .await
        .unwrap();
    assert_eq!(
        second["queued"].as_array().map(Vec::len),
        Some(1),
        "{second}"
    );
    let swept = drainer.invoke(&scheduled()).await.unwrap();
    assert_eq!(
        swept["queued"].as_array().map(Vec::len),
        Some(bodies.len() - 2),
        "{swept}"
    );
    assert!(
        s3::keys(&rig.stack.s3, BUCKET, "spool/")
            .await
            .unwrap()
            .is_empty(),
        "the spool is empty"
    );

    // On the queue: each spooled envelope, the same text, with the edge's attributes.
    let messages = rig.stack.drain().await;
    assert_eq!(messages.len(), bodies.len());
    let mut envelopes = Vec::new();
    for (key, json) in &spooled {
        let m = messages
            .iter()
            .find(|m| m.body.as_deref() == Some(json.as_str()))
            .unwrap_or_else(|| panic!("{key} was not queued as spooled"));
        let envelope = Envelope::from_json(json).unwrap();
        let attrs = m.message_attributes.clone().unwrap_or_default();
        let attr = |name: &str| attrs.get(name).and_then(|a| a.string_value.clone());
        assert_eq!(
            attr("event_id").as_deref(),
            Some(envelope.event_id.as_str())
        );
        assert_eq!(attr("provider").as_deref(), Some("skytells"));
        assert_eq!(
            attr(hookvault_core::trace::SQS_ATTRIBUTE),
            envelope.trace_id.clone()
        );
        assert!(envelope.trace_id.is_some(), "the edge's trace id travels");
        // The drainer's own mark: the spool key it came from.
        assert_eq!(
            attr(hookvault_core::envelope::SPOOLED_ATTRIBUTE).as_deref(),
            Some(key.as_str())
        );
        envelopes.push((envelope, key.clone()));
    }

    // The archiver keeps each exact body; a second delivery (a drain whose delete failed)
    // changes nothing.
    for (i, ((envelope, key), body)) in envelopes.iter().zip(&bodies).enumerate() {
        let failed = rig
            .archive_envelope_with(
                envelope,
                &format!("spooled-{i}"),
                &[(hookvault_core::envelope::SPOOLED_ATTRIBUTE, key)],
            )
            .await;
        assert!(failed.is_empty(), "{failed:?}");
        rig.assert_raw_event_kept(body, &format!("spooled body {i}"))
            .await;
        // The event log shows it came through the spool.
        let entries = s3::keys(
            &rig.stack.s3,
            BUCKET,
            &hookvault_core::archive::index_id_prefix(&envelope.event_id),
        )
        .await
        .unwrap();
        assert_eq!(entries.len(), 1, "{}", envelope.event_id);
        let entry: hookvault_core::records::IndexEntry = rig.json(&entries[0]).await;
        assert!(entry.spooled, "{}: not marked spooled", envelope.event_id);
    }
    let before = s3::keys(&rig.stack.s3, BUCKET, "events/").await.unwrap();
    assert!(rig
        .archive_envelope(&envelopes[0].0, "again")
        .await
        .is_empty());
    assert_eq!(
        s3::keys(&rig.stack.s3, BUCKET, "events/").await.unwrap(),
        before
    );

    // The drainer logged each event id and counted it (EMF `SpooledEvents`).
    let logs = drainer.logs();
    for (envelope, _) in &envelopes {
        assert!(logs.contains(&envelope.event_id), "{logs}");
    }
    assert_eq!(
        logs.matches("\"SpooledEvents\":1.0").count(),
        bodies.len(),
        "{logs}"
    );
}
