use super::*;

fn verified(delivery: Option<&str>) -> Verified {
    Verified {
        key_id: "k1".into(),
        slot: KeySlot::Current,
        delivery_id: delivery.map(str::to_owned),
        timestamp: None,
    }
}

fn headers() -> Vec<(String, String)> {
    vec![("x-skytells-signature".into(), "sha256=00ff".into())]
}

fn envelope(provider: &str, scheme: Scheme, delivery: Option<&str>, body: &[u8]) -> Envelope {
    let v = verified(delivery);
    let h = headers();
    Envelope::new(
        &Received {
            provider,
            scheme,
            verified: &v,
            signature_headers: &h,
            content_type: Some("application/json"),
            received_at_ms: 1_700_000_000_123,
        },
        body,
    )
}

#[test]
fn every_byte_sequence_round_trips_exactly() {
    let bodies: Vec<Vec<u8>> = vec![
        br#"{ "id" : "pred_1", "status":"succeeded", "n": 1.000 }"#.to_vec(),
        b"{\"id\":\"pred_1\",\"status\":\"succeeded\"}\n".to_vec(),
        b"  {\"id\":\"pred_1\",\"status\":\"failed\"}\r\n".to_vec(),
        b"\xEF\xBB\xBF{\"id\":\"pred_1\",\"status\":\"succeeded\"}".to_vec(),
        b"{\"id\":\"pred_1\",\"x\":\"\xff\xfe\"}".to_vec(),
        "{\"id\":\"pred_\u{FFFE}\",\"status\":\"succeeded\"}"
            .as_bytes()
            .to_vec(),
        b"payload=%7B%22a%22%3A1%7D".to_vec(),
        Vec::new(),
        (0..=255u8).collect(),
    ];
    for body in bodies {
        let env = envelope("skytells", Scheme::Skytells, None, &body);
        let json = env.to_json();
        assert!(json.is_ascii(), "the message is ASCII only: {json}");
        let back = Envelope::from_json(&json).unwrap();
        assert_eq!(back.inline_body(), Some(body.as_slice()));
        assert_eq!(back, env);
        assert_eq!(back.body_bytes, body.len() as u64);
        assert_eq!(back.signature_headers, headers());
        assert_eq!(back.content_type.as_deref(), Some("application/json"));
    }
}

#[test]
fn the_event_id_comes_from_the_prediction_the_delivery_id_or_the_body_digest() {
    let e = envelope(
        "skytells",
        Scheme::Skytells,
        None,
        b"\xEF\xBB\xBF {\"id\":\"pred_1\",\"status\":\"succeeded\",\"output\":{\"a\":1}}\n",
    );
    assert_eq!(e.event_id, "skytells:pred_1:succeeded");
    let e = envelope(
        "skytells",
        Scheme::Skytells,
        None,
        br#"{"type":"prediction.completed","data":{"status":"canceled","logs":"x","id":"pred_w"}}"#,
    );
    assert_eq!(e.event_id, "skytells:pred_w:cancelled");
    for not_a_prediction in [
        &br#"{"id":"p","status":3}"#[..],
        br#"{"id":"","status":"failed"}"#,
        br#"{"id":"p"}"#,
        br#"["p"]"#,
        br#"{"id":"p","id":"q","status":"failed"}"#,
    ] {
        let e = envelope("skytells", Scheme::Skytells, None, not_a_prediction);
        assert_eq!(
            e.event_id,
            format!("skytells:sha256:{}", e.body_sha256),
            "{not_a_prediction:?}"
        );
    }
    let e = envelope("gh", Scheme::GitHub, Some("d-1"), b"payload=x");
    assert_eq!(e.event_id, "gh:d-1");
    let e = envelope("st", Scheme::Stripe, None, br#"{"id":"evt_1"}"#);
    assert_eq!(e.event_id, "st:evt_1");
    let e = envelope("skytells", Scheme::Skytells, None, b"not json \xff");
    assert_eq!(e.event_id, format!("skytells:sha256:{}", e.body_sha256));
    // Characters SQS refuses, or any non-printable, never reach an attribute.
    let e = envelope(
        "skytells",
        Scheme::Skytells,
        None,
        "{\"id\":\"pred_\u{FFFE}\",\"status\":\"succeeded\"}".as_bytes(),
    );
    assert!(e.event_id.starts_with("sha256:") && e.event_id.len() == 71);
    let long = "x".repeat(300);
    let e = envelope("p", Scheme::Standard, Some(&long), b"{}");
    assert!(e.event_id.starts_with("sha256:"));
    assert_eq!(e.group_id(), e.event_id);
}

#[test]
fn a_digest_from_elsewhere_is_kept_and_checked_downstream() {
    let body = br#"{"id":"pred_2","status":"failed"}"#;
    let v = verified(None);
    let h = headers();
    let received = Received {
        provider: "skytells",
        scheme: Scheme::Skytells,
        verified: &v,
        signature_headers: &h,
        content_type: None,
        received_at_ms: 5,
    };
    let digest: [u8; 32] = Sha256::digest(body).into();
    let given = Envelope::with_digest(&received, body, &digest, None);
    assert_eq!(given, Envelope::new(&received, body));
    // A wrong digest never passes for the body: the reader refuses the message.
    let wrong = Envelope::with_digest(&received, body, &[0; 32], None);
    assert_eq!(
        Envelope::from_json(&wrong.to_json()).unwrap_err(),
        EnvelopeError::Corrupt
    );
}

#[test]
fn a_claim_check_carries_the_object_and_is_checked_once_fetched() {
    let body = vec![b'x'; 2000];
    let v = verified(None);
    let received = Received {
        provider: "skytells",
        scheme: Scheme::Skytells,
        verified: &v,
        signature_headers: &[],
        content_type: None,
        received_at_ms: 5,
    };
    let digest: [u8; 32] = Sha256::digest(&body).into();
    let object = S3Object {
        bucket: "b".into(),
        key: crate::archive::claim_check_key(&hex::encode(digest)),
    };
    let env = Envelope::with_digest(&received, &body, &digest, Some(object.clone()));
    let json = env.to_json();
    assert!(!json.contains("body_base64") && json.len() < 600, "{json}");
    let back = Envelope::from_json(&json).unwrap();
    assert_eq!(back.body, Body::S3(object));
    assert_eq!(back.inline_body(), None);
    assert!(back.check_body(&body).is_ok());
    let mut other = body.clone();
    other[0] = b'y';
    assert_eq!(back.check_body(&other), Err(EnvelopeError::Corrupt));
    assert_eq!(back.check_body(&body[1..]), Err(EnvelopeError::Corrupt));
}

#[test]
fn version_1_is_still_read_and_other_versions_are_refused() {
    let payload = r#"{"id":"pred_v1","status":"succeeded","output":["https://x/y.png"]}"#;
    let v1 = format!(
        r#"{{"v":1,"provider":"skytells","scheme":"skytells","event_id":"skytells:pred_v1:succeeded","received_at_ms":7,"key_id":"k","key_slot":"current","payload_sha256":"{}","payload":{payload}}}"#,
        hex::encode(Sha256::digest(payload.as_bytes()))
    );
    let env = Envelope::from_json(&v1).unwrap();
    assert_eq!(env.v, 1);
    assert_eq!(env.inline_body(), Some(payload.as_bytes()));
    assert!(env.signature_headers.is_empty());
    let tampered = v1.replace("y.png", "z.png");
    assert_eq!(
        Envelope::from_json(&tampered).unwrap_err(),
        EnvelopeError::Corrupt
    );
    let json = envelope("p", Scheme::GitHub, Some("d"), b"{}").to_json();
    let v3 = json.replacen("\"v\":2", "\"v\":3", 1);
    assert_eq!(
        Envelope::from_json(&v3).unwrap_err(),
        EnvelopeError::UnsupportedVersion(3)
    );
    for broken in [
        json.replacen("\"body_base64\"", "\"body_b64\"", 1),
        json.replacen("\"body_base64\":\"", "\"body_base64\":\"!", 1),
        "[]".to_owned(),
    ] {
        assert!(
            matches!(
                Envelope::from_json(&broken),
                Err(EnvelopeError::Malformed(_))
            ),
            "{broken}"
        );
    }
}

#[test]
fn dedup_ids_tell_different_bodies_apart_and_fit_sqs_rules() {
    let a = envelope(
        "p",
        Scheme::Skytells,
        None,
        b"{\"id\":\"x\",\"status\":\"failed\"}",
    );
    let b = envelope(
        "p",
        Scheme::Skytells,
        None,
        b"{\"id\":\"x\",\"status\":\"failed\"}\n",
    );
    assert_eq!(a.event_id, b.event_id);
    assert_ne!(a.dedup_id(), b.dedup_id());
    assert_eq!(
        a.dedup_id(),
        envelope(
            "p",
            Scheme::Skytells,
            None,
            b"{\"id\":\"x\",\"status\":\"failed\"}"
        )
        .dedup_id()
    );
    assert_eq!(a.dedup_id().len(), 64);
}

#[test]
fn the_claim_check_threshold_leaves_room_for_the_envelope() {
    assert_eq!(base64_len(0), 0);
    assert_eq!(base64_len(1), 4);
    assert_eq!(base64_len(3), 4);
    assert_eq!(base64_len(4), 8);
    let max = 1_048_576;
    let largest_inline = (0..max)
        .rev()
        .find(|n| !needs_claim_check(*n, max))
        .unwrap();
    assert!(needs_claim_check(largest_inline + 3, max));
    assert!(base64_len(largest_inline) + ENVELOPE_RESERVE <= max);
    assert!(largest_inline > 750_000, "{largest_inline}");
}

#[test]
fn non_ascii_in_any_field_is_escaped() {
    let v = verified(Some("id\u{FFFE}"));
    let h = vec![("x-skytells-signature".to_owned(), "é\u{1F600}".to_owned())];
    let env = Envelope::new(
        &Received {
            provider: "prövider",
            scheme: Scheme::Skytells,
            verified: &v,
            signature_headers: &h,
            content_type: Some("text/plain; charset=\u{FFFF}"),
            received_at_ms: 0,
        },
        b"{}",
    );
    let json = env.to_json();
    assert!(json.is_ascii(), "{json}");
    assert!(
        json.contains("\\ud83d\\ude00") && json.contains("\\u00e9"),
        "{json}"
    );
    assert_eq!(Envelope::from_json(&json).unwrap(), env);
}

#[test]
fn trace_id_and_replay_round_trip_and_a_bad_trace_id_is_dropped() {
    let mut env = envelope("skytells", Scheme::Skytells, None, b"{\"id\":\"p\"}");
    let plain = env.to_json();
    assert!(
        !plain.contains("trace_id") && !plain.contains("replay"),
        "{plain}"
    );
    env.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
    env.replay = Some(Replay {
        at_ms: 1_800_000_000_000,
        force: true,
    });
    let back = Envelope::from_json(&env.to_json()).unwrap();
    assert_eq!(back, env);
    let forged = env
        .to_json()
        .replace("4bf92f3577b34da6a3ce929d0e0e4736", "not-a-trace-id");
    assert_eq!(Envelope::from_json(&forged).unwrap().trace_id, None);
}

#[test]
fn a_replayed_envelope_is_the_archived_event_again() {
    let body = b"{\"id\":\"p\",\"status\":\"succeeded\"}";
    let mut original = envelope("skytells", Scheme::Skytells, None, body);
    original.trace_id = Some("ab".repeat(16));
    let record = crate::records::EventRecord {
        envelope_version: 2,
        provider: original.provider.clone(),
        scheme: original.scheme,
        event_id: original.event_id.clone(),
        received_at_ms: original.received_at_ms,
        key_id: original.key_id.clone(),
        key_slot: original.key_slot,
        signature_headers: original.signature_headers.clone(),
        content_type: original.content_type.clone(),
        body_sha256: original.body_sha256.clone(),
        body_bytes: original.body_bytes,
        body_key: "events/skytells/x/body".into(),
        prediction_id: Some("p".into()),
        status: Some("succeeded".into()),
        message_id: "m".into(),
        archived_at: "2026-11-29T00:00:00Z".into(),
        trace_id: original.trace_id.clone(),
        reconciled: None,
    };
    let replay = Replay {
        at_ms: 1,
        force: false,
    };
    let again = Envelope::from_record(&record, Body::Inline(body.to_vec()), replay);
    assert_eq!(
        Envelope {
            replay: None,
            ..again.clone()
        },
        original
    );
    let read = Envelope::from_json(&again.to_json()).unwrap();
    assert_eq!(read.replay, Some(replay));
    // A body that is not the archived one is refused by the reader.
    let wrong = Envelope::from_record(&record, Body::Inline(b"{}".to_vec()), replay);
    assert_eq!(
        Envelope::from_json(&wrong.to_json()),
        Err(EnvelopeError::Corrupt)
    );
}

#[test]
fn a_reconciled_event_carries_the_exact_answer_and_its_evidence() {
    let body = b"\xEF\xBB\xBF{\"id\":\"pred_1\",\"status\":\"succeeded\",\"output\":\"https://cdn/x.png\"}\n";
    let fetch = Fetch {
        provider: "skytells",
        prediction_id: "pred_1",
        status: "succeeded",
        url: "https://api.skytells.ai/v1/predictions/pred_1",
        fetched_at_ms: 1_764_000_000_000,
        request_id: Some("req_1"),
    };
    let (env, evidence) = Envelope::reconciled(&fetch, body, None);
    assert_eq!(env.event_id, "skytells:pred_1:succeeded:reconciled");
    assert!(env.signature_headers.is_empty());
    assert_eq!(env.key_id, RECONCILED_KEY_ID);
    assert_eq!(env.received_at_ms, 1_764_000_000_000);
    assert_eq!(evidence.body_sha256, env.body_sha256);
    assert_eq!(evidence.request_id.as_deref(), Some("req_1"));
    let text = env.to_json_reconciled(&evidence);
    assert!(text.is_ascii());
    // The envelope reads as any other (older readers ignore the member), body exact.
    let read = Envelope::from_json(&text).unwrap();
    assert_eq!(read, env);
    assert_eq!(read.inline_body(), Some(&body[..]));
    assert_eq!(
        Reconciled::from_message(&text, &read.body_sha256),
        Some(evidence.clone())
    );
    // A plain envelope has none; evidence for another body is not taken.
    assert_eq!(
        Reconciled::from_message(&env.to_json(), &env.body_sha256),
        None
    );
    assert_eq!(Reconciled::from_message(&text, &"0".repeat(64)), None);
    // A webhook of the same outcome has another id (the log keeps both).
    let webhook = envelope(
        "skytells",
        Scheme::Skytells,
        None,
        br#"{"id":"pred_1","status":"succeeded"}"#,
    );
    assert_eq!(webhook.event_id, "skytells:pred_1:succeeded");
    assert_ne!(webhook.event_id, env.event_id);
    // A claim check goes by reference.
    let object = S3Object {
        bucket: "b".into(),
        key: crate::archive::claim_check_key(&env.body_sha256),
    };
    let (big, _) = Envelope::reconciled(&fetch, body, Some(object.clone()));
    assert_eq!(big.body, Body::S3(object));
    // Ids stay safe whatever they hold.
    let long = reconciled_event_id(&"p".repeat(300), "x", "succeeded");
    assert!(long.starts_with("sha256:") && long.len() == 71, "{long}");
    // The evidence record keeps it (event.json), and reads without it.
    let json = serde_json::to_value(&evidence).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"url": "https://api.skytells.ai/v1/predictions/pred_1",
            "fetched_at_ms": 1_764_000_000_000i64, "request_id": "req_1",
            "body_sha256": env.body_sha256})
    );
}
