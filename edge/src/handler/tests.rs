use super::*;
use hookvault_core::corpus::{bad_inputs, sample_body};
use hookvault_core::scheme::ALL_SCHEMES;
use hookvault_core::{KeySlot, Scheme};
use std::collections::HashMap;

const NOW_MS: u64 = 1_800_000_000_000;
const NOW: i64 = 1_800_000_000;

fn secret(scheme: Scheme) -> &'static str {
    hookvault_core::corpus::example_secret(scheme)
}

fn config() -> EdgeConfig {
    let secrets: serde_json::Map<String, serde_json::Value> = ALL_SCHEMES
        .iter()
        .map(|s| {
            (
                s.name().to_owned(),
                serde_json::json!([{ "id": "k1", "secret": secret(*s) }]),
            )
        })
        .collect();
    let providers: serde_json::Map<String, serde_json::Value> = ALL_SCHEMES
        .iter()
        .map(|s| (s.name().to_owned(), s.name().into()))
        .collect();
    let vars: HashMap<&str, String> = HashMap::from([
        (
            "WEBHOOK_SECRETS",
            serde_json::Value::Object(secrets).to_string(),
        ),
        (
            "PROVIDERS",
            serde_json::Value::Object(providers).to_string(),
        ),
        (
            "SQS_QUEUE_URL",
            "http://127.0.0.1:4566/000000000000/q".to_owned(),
        ),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("MAX_BODY_BYTES", "4096".to_owned()),
    ]);
    EdgeConfig::from_vars(&|k| vars.get(k).cloned()).unwrap()
}

fn signed(scheme: Scheme, body: &[u8]) -> Vec<(String, String)> {
    hookvault_core::corpus::signed(scheme, secret(scheme), body, NOW).unwrap()
}

#[test]
fn every_corpus_case_gets_its_documented_status() {
    let cfg = config();
    for scheme in ALL_SCHEMES {
        for case in bad_inputs(scheme, secret(scheme), NOW) {
            let err =
                accept_webhook(&cfg, scheme.name(), &case.headers, &case.body, NOW_MS).unwrap_err();
            assert_eq!(
                (err.status, err.code),
                (case.status, case.code),
                "{}",
                case.name
            );
        }
    }
}

#[test]
fn a_valid_webhook_becomes_an_envelope() {
    let cfg = config();
    for scheme in ALL_SCHEMES {
        let body = sample_body();
        let (v, env) =
            accept_webhook(&cfg, scheme.name(), &signed(scheme, &body), &body, NOW_MS).unwrap();
        assert_eq!((v.key_id.as_str(), v.slot), ("k1", KeySlot::Current));
        assert_eq!(env.inline_body(), Some(body.as_slice()));
        assert_eq!(env.signature_headers, signed(scheme, &body));
        assert_eq!(env.received_at_ms, 1_800_000_000_000);
        assert_eq!(env.provider, scheme.name());
    }
}

#[test]
fn refuses_unknown_providers_and_large_bodies_and_queues_every_verified_body() {
    let cfg = config();
    let body = sample_body();
    let h = signed(Scheme::Skytells, &body);
    assert_eq!(
        accept_webhook(&cfg, "nope", &h, &body, NOW_MS)
            .unwrap_err()
            .status,
        404
    );
    let big = vec![b' '; 4097];
    assert_eq!(
        accept_webhook(
            &cfg,
            "skytells",
            &signed(Scheme::Skytells, &big),
            &big,
            NOW_MS
        )
        .unwrap_err()
        .status,
        413
    );
    // Once the signature verifies, every body is queued, whatever it is.
    for body in [
        &b"not json"[..],
        br#"{"hello":"world"}"#,
        b"\xff\xfe",
        b"\xEF\xBB\xBF{\"id\":\"p\",\"status\":\"succeeded\"}\r\n",
        b"payload=%7B%22zen%22%3A%22x%22%7D",
        b"",
    ] {
        for scheme in ALL_SCHEMES {
            let (_, env) = accept_webhook(&cfg, scheme.name(), &signed(scheme, body), body, NOW_MS)
                .unwrap_or_else(|e| panic!("{scheme} {body:?}: {e:?}"));
            assert_eq!(env.inline_body(), Some(body), "{scheme} {body:?}");
            let back = hookvault_core::envelope::Envelope::from_json(&env.to_json()).unwrap();
            assert_eq!(back, env);
        }
    }
    assert_eq!(
        check_declared_length(Some("4097"), 4096)
            .unwrap_err()
            .status,
        413
    );
    assert_eq!(
        check_declared_length(Some("12x"), 4096).unwrap_err().status,
        400
    );
    assert!(check_declared_length(Some(" 4096 "), 4096).is_ok());
    assert!(check_declared_length(None, 4096).is_ok());
}

#[test]
fn probes_verify_without_building_an_envelope() {
    let cfg = config();
    let h = signed(Scheme::GitHub, b"probe");
    assert_eq!(
        accept_probe(&cfg, Some("github"), &h, b"probe", NOW_MS)
            .unwrap()
            .key_id,
        "k1"
    );
    assert_eq!(
        accept_probe(&cfg, Some("github"), &h, b"probe!", NOW_MS)
            .unwrap_err()
            .status,
        401
    );
    // Several providers: the probe must name one.
    assert_eq!(
        accept_probe(&cfg, None, &h, b"probe", NOW_MS)
            .unwrap_err()
            .status,
        404
    );
}

#[test]
fn rejection_bodies_are_json_with_code_and_message() {
    let r = queue_failure(&SqsError::Unreachable("connection refused".into()), 7);
    assert_eq!((r.status, r.retry_after), (503, Some(7)));
    let body: serde_json::Value = serde_json::from_str(&r.body()).unwrap();
    assert_eq!(body["error"], "queue_unavailable");
    assert_eq!(
        queue_failure(&SqsError::TooLarge { size: 2, max: 1 }, 7).status,
        503
    );
    let r = claim_check_failure(
        &crate::s3::S3Error::Refused {
            status: 403,
            code: "AccessDenied".into(),
        },
        7,
    );
    assert_eq!(
        (r.status, r.code, r.retry_after),
        (503, "claim_check_unavailable", Some(7))
    );
}
