use super::*;
use hookvault_core::envelope::Received;
use hookvault_core::keyring::KeySlot;
use hookvault_core::{Scheme, Verified};

fn target(queue_url: &str) -> SqsTarget {
    SqsTarget {
        queue_url: queue_url.to_owned(),
        endpoint: "http://127.0.0.1:4566/".to_owned(),
        region: "us-east-1".to_owned(),
        access_key_id: "AKIDEXAMPLE".to_owned(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
        session_token: None,
    }
}

fn envelope() -> Envelope {
    let verified = Verified {
        key_id: "k1".into(),
        slot: KeySlot::Current,
        delivery_id: None,
        timestamp: None,
    };
    let body = br#"{"id":"pred_1","status":"succeeded","output":["https://cdn/x.png"]}"#;
    Envelope::new(
        &Received {
            provider: "skytells",
            scheme: Scheme::Skytells,
            verified: &verified,
            signature_headers: &[],
            content_type: None,
            received_at_ms: 1_440_938_160_000,
        },
        body,
    )
}

/// AWS's SigV4 test suite, `post-vanilla` (aws-sig-v4-test-suite, as shipped with the AWS
/// SDKs' signers, e.g. smithy-rs `aws/rust-runtime/aws-sigv4/aws-sig-v4-test-suite/`):
/// POST https://example.amazonaws.com/ at 20150830T123600Z, region us-east-1, service
/// `service`, no body.
#[test]
fn signs_the_published_post_vanilla_vector() {
    let t = target("unused");
    let headers = sign_v4(
        &t,
        "service",
        "https://example.amazonaws.com/",
        &[],
        SignableBody::Bytes(b""),
        1_440_938_160_000,
    )
    .unwrap();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("x-amz-date"), Some("20150830T123600Z"));
    assert_eq!(
        get("authorization"),
        Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
    );
}

#[test]
fn standard_queue_message_carries_the_event_id_as_an_attribute() {
    let env = envelope();
    let req = send_message(
        &target("http://127.0.0.1:4566/000000000000/events"),
        &env,
        262_144,
        1_440_938_160_000,
    )
    .unwrap();
    let body: Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(
        body["QueueUrl"],
        "http://127.0.0.1:4566/000000000000/events"
    );
    assert_eq!(
        body["MessageAttributes"]["event_id"]["StringValue"],
        "skytells:pred_1:succeeded"
    );
    assert!(body.get("MessageGroupId").is_none());
    let back = Envelope::from_json(body["MessageBody"].as_str().unwrap()).unwrap();
    assert_eq!(back, env);
    let names: Vec<&str> = req.headers.iter().map(|(k, _)| k.as_str()).collect();
    for h in [
        "content-type",
        "x-amz-target",
        "x-amz-date",
        "authorization",
    ] {
        assert!(names.contains(&h), "{h} missing from {names:?}");
    }
    let auth = &req
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap()
        .1;
    assert!(auth.contains("/us-east-1/sqs/aws4_request"), "{auth}");
    assert!(
        auth.contains("content-type;host;x-amz-date;x-amz-target"),
        "{auth}"
    );
    assert!(
        !auth.contains("wJalrXUtnFEMI"),
        "the secret key must never be sent"
    );
}

#[test]
fn fifo_queue_message_gets_group_and_deduplication_ids() {
    let req = send_message(
        &target("https://sqs.us-east-1.amazonaws.com/1/events.fifo"),
        &envelope(),
        262_144,
        0,
    )
    .unwrap();
    let body: Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(body["MessageGroupId"], "skytells:pred_1:succeeded");
    assert_eq!(body["MessageDeduplicationId"], envelope().dedup_id());
}

#[test]
fn refuses_envelopes_over_the_limit() {
    assert!(matches!(
        send_message(&target("q"), &envelope(), 100, 0),
        Err(SqsError::TooLarge { max: 100, .. })
    ));
}

#[test]
fn checks_the_answer_and_its_md5() {
    let req = send_message(&target("q"), &envelope(), 262_144, 0).unwrap();
    let message: Value = serde_json::from_str(&req.body).unwrap();
    let md5 = hex::encode(Md5::digest(
        message["MessageBody"].as_str().unwrap().as_bytes(),
    ));
    let ok = format!(r#"{{"MD5OfMessageBody":"{md5}","MessageId":"m-1"}}"#);
    assert_eq!(parse_response(200, &ok, &req), Ok("m-1".to_owned()));
    let bad = r#"{"MD5OfMessageBody":"00000000000000000000000000000000","MessageId":"m-1"}"#;
    assert_eq!(parse_response(200, bad, &req), Err(SqsError::Md5Mismatch));
    assert_eq!(
        parse_response(200, "<html/>", &req),
        Err(SqsError::BadResponse)
    );
    assert_eq!(
        parse_response(
            400,
            r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"x"}"#,
            &req
        ),
        Err(SqsError::Refused {
            status: 400,
            kind: "com.amazonaws.sqs#QueueDoesNotExist".into()
        })
    );
}

#[test]
fn a_precomputed_payload_hash_signs_exactly_like_the_body() {
    let t = target("https://sqs.us-east-1.amazonaws.com/1/events");
    let body = br#"{"QueueUrl":"q","MessageBody":"m"}"#;
    let base = [("content-type", "application/x-amz-json-1.0")];
    let from_body = sign_v4(
        &t,
        "sqs",
        &t.endpoint,
        &base,
        SignableBody::Bytes(body),
        1_440_938_160_000,
    )
    .unwrap();
    let digest: [u8; 32] = Sha256::digest(body).into();
    let precomputed = sign_v4(
        &t,
        "sqs",
        &t.endpoint,
        &base,
        SignableBody::Precomputed(hex::encode(digest)),
        1_440_938_160_000,
    )
    .unwrap();
    assert_eq!(from_body, precomputed);
    // And a wrong hash is a different signature (SQS would refuse it).
    let wrong = sign_v4(
        &t,
        "sqs",
        &t.endpoint,
        &base,
        SignableBody::Precomputed(hex::encode([0u8; 32])),
        1_440_938_160_000,
    )
    .unwrap();
    assert_ne!(from_body, wrong);
}

#[test]
fn the_kept_key_signer_and_the_crate_send_the_same_request() {
    for endpoint in [
        "http://127.0.0.1:4566/",
        "https://sqs.us-east-1.amazonaws.com/",
    ] {
        let mut t = target("https://sqs.us-east-1.amazonaws.com/1/events");
        t.endpoint = endpoint.to_owned();
        t.session_token = Some("session-token".to_owned());
        let unsigned = unsigned_send_message(&t, &envelope(), 262_144).unwrap();
        let digest: [u8; 32] = Sha256::digest(unsigned.body.as_bytes()).into();
        let md5 = unsigned.message_md5();
        let signer = t.signer().unwrap();
        let sort = |mut r: SignedRequest| {
            r.headers.sort();
            r
        };
        let kept = sign_send_message(
            &t,
            Some(&signer),
            unsigned.clone(),
            &digest,
            &md5,
            1_440_938_160_000,
        );
        let full = sign_send_message(&t, None, unsigned, &digest, &md5, 1_440_938_160_000);
        assert_eq!(kept.map(sort), full.map(sort), "{endpoint}");
    }
    // An endpoint the kept-key signer does not take is signed by the crate.
    let mut t = target("q");
    t.endpoint = "https://[::1]:4566/".to_owned();
    assert!(t.signer().is_none());
}

/// The body as serde_json writes it from a struct: what `unsigned_send_message` writes by
/// hand must be the same bytes.
fn reference_body(target: &SqsTarget, envelope: &Envelope) -> String {
    #[derive(serde::Serialize)]
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
    #[derive(serde::Serialize)]
    struct Attributes<'a> {
        event_id: StringAttr<'a>,
        provider: StringAttr<'a>,
        #[serde(rename = "TraceId", skip_serializing_if = "Option::is_none")]
        trace_id: Option<StringAttr<'a>>,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct StringAttr<'a> {
        data_type: &'static str,
        string_value: &'a str,
    }
    let attr = |v| StringAttr {
        data_type: "String",
        string_value: v,
    };
    let group = target.is_fifo().then(|| envelope.group_id());
    let dedup = target.is_fifo().then(|| envelope.dedup_id());
    serde_json::to_string(&SendMessage {
        queue_url: &target.queue_url,
        message_body: &envelope.to_json(),
        message_attributes: Attributes {
            event_id: attr(&envelope.event_id),
            provider: attr(&envelope.provider),
            trace_id: envelope.trace_id.as_deref().map(attr),
        },
        message_group_id: group.as_deref(),
        message_deduplication_id: dedup.as_deref(),
    })
    .unwrap()
}

#[test]
fn the_body_is_what_serde_json_writes() {
    let verified = Verified {
        key_id: "k\"1".into(),
        slot: KeySlot::Previous,
        delivery_id: None,
        timestamp: None,
    };
    let bodies: [&[u8]; 3] = [
        br#"{"id":"pred_1","status":"succeeded","output":["https://cdn/x.png"]}"#,
        "{\"id\":\"pred_\\\"q\\\\\",\"status\":\"failed\",\"error_message\":\"line\\nbreak \\u0001 é 日本 🎉\",\n\t\"x\": [1, 2.5e3, null, true]}".as_bytes(),
        br#"{"type":"prediction.completed","data":{"id":"pred_2","status":"cancelled"}}"#,
    ];
    for body in bodies {
        let headers = vec![(
            "x-skytells-signature".to_owned(),
            "sha256=\"é\u{FFFE}".to_owned(),
        )];
        let env = Envelope::new(
            &Received {
                provider: "sky\"tells",
                scheme: Scheme::Skytells,
                verified: &verified,
                signature_headers: &headers,
                content_type: Some("application/json; charset=utf-8"),
                received_at_ms: 1,
            },
            body,
        );
        let traced = Envelope {
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            ..env.clone()
        };
        for queue in [
            "https://sqs.us-east-1.amazonaws.com/1/events",
            "https://sqs.us-east-1.amazonaws.com/1/events.fifo",
        ] {
            let t = target(queue);
            for env in [&env, &traced] {
                let ours = unsigned_send_message(&t, env, 262_144).unwrap();
                assert_eq!(ours.body, reference_body(&t, env), "{queue}");
                assert_eq!(ours.message, env.to_json());
            }
        }
    }
}

fn traced() -> Envelope {
    Envelope {
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        ..envelope()
    }
}

#[test]
fn the_trace_id_goes_in_the_envelope_and_in_the_trace_id_attribute() {
    let env = traced();
    let req = send_message(&target("q"), &env, 262_144, 0).unwrap();
    let body: Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(
        body["MessageAttributes"]["TraceId"],
        serde_json::json!({"DataType": "String", "StringValue": "4bf92f3577b34da6a3ce929d0e0e4736"})
    );
    let back = Envelope::from_json(body["MessageBody"].as_str().unwrap()).unwrap();
    assert_eq!(
        back.trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    // Without a trace id, no attribute (messages as before).
    let req = send_message(&target("q"), &envelope(), 262_144, 0).unwrap();
    let body: Value = serde_json::from_str(&req.body).unwrap();
    assert!(body["MessageAttributes"].get("TraceId").is_none());
    // FIFO: the trace id does not change the deduplication id.
    let fifo = target("https://sqs.us-east-1.amazonaws.com/1/events.fifo");
    let with = send_message(&fifo, &env, 262_144, 0).unwrap();
    let without = send_message(&fifo, &envelope(), 262_144, 0).unwrap();
    let dedup = |r: &SignedRequest| {
        serde_json::from_str::<Value>(&r.body).unwrap()["MessageDeduplicationId"].clone()
    };
    assert_eq!(dedup(&with), dedup(&without));
}

/// SQS counts every attribute's name, data type and value toward the message size
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html>):
/// the check counts the trace id's attribute too, to the byte.
#[test]
fn the_size_check_counts_the_trace_id_attribute() {
    for env in [envelope(), traced()] {
        let mut size = env.to_json().len();
        size += [
            "event_id",
            "String",
            &env.event_id,
            "provider",
            "String",
            &env.provider,
        ]
        .iter()
        .map(|s| s.len())
        .sum::<usize>();
        if let Some(t) = &env.trace_id {
            size += "TraceId".len() + "String".len() + t.len();
        }
        assert!(unsigned_send_message(&target("q"), &env, size).is_ok());
        assert_eq!(
            unsigned_send_message(&target("q"), &env, size - 1),
            Err(SqsError::TooLarge {
                size,
                max: size - 1
            })
        );
    }
    // The trace id's attribute adds its name, type and value, and the envelope's field.
    let grows = |e: &Envelope| match unsigned_send_message(&target("q"), e, 0) {
        Err(SqsError::TooLarge { size, .. }) => size,
        other => panic!("{other:?}"),
    };
    let field = r#","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736""#.len();
    assert_eq!(
        grows(&traced()) - grows(&envelope()),
        field + "TraceId".len() + "String".len() + 32
    );
}
