//! Every case of the bad-input corpus is refused with its documented status and code,
//! and the corpus's own good request is accepted (so the corpus cannot pass vacuously).
#![allow(missing_docs, clippy::unwrap_used)]

use hookvault_core::corpus::{bad_inputs, sample_body};
use hookvault_core::scheme::{SignParams, ALL_SCHEMES};
use hookvault_core::{KeyRing, Scheme, VerifyOptions};

const NOW: i64 = 1_800_000_000;

fn secret(scheme: Scheme) -> &'static str {
    hookvault_core::corpus::example_secret(scheme)
}

#[test]
fn every_corpus_case_is_refused_with_its_status_and_code() {
    let mut seen = 0;
    for scheme in ALL_SCHEMES {
        let ring = KeyRing::single(scheme, secret(scheme)).unwrap();
        let cases = bad_inputs(scheme, secret(scheme), NOW);
        assert!(cases.len() >= 12, "{scheme}: only {} cases", cases.len());
        for case in cases {
            let err = scheme
                .verify(&ring, &case.headers, &case.body, &VerifyOptions::at(NOW))
                .expect_err(&case.name);
            assert_eq!(
                (err.status(), err.code()),
                (case.status, case.code),
                "{}: {err}",
                case.name
            );
            seen += 1;
        }
        // The unaltered request the corpus mutates is accepted.
        let key = scheme.decode_secret(secret(scheme)).unwrap();
        let params = SignParams {
            id: Some("msg_2Lw8vN0abc".into()),
            timestamp: Some(NOW),
        };
        let good = scheme.sign(&key, &sample_body(), &params).unwrap();
        scheme
            .verify(&ring, &good, &sample_body(), &VerifyOptions::at(NOW))
            .unwrap();
    }
    assert!(seen > 50);
}

#[test]
fn error_messages_never_contain_the_secret_or_the_expected_signature() {
    for scheme in ALL_SCHEMES {
        let ring = KeyRing::single(scheme, secret(scheme)).unwrap();
        let key = scheme.decode_secret(secret(scheme)).unwrap();
        let params = SignParams {
            id: Some("msg_2Lw8vN0abc".into()),
            timestamp: Some(NOW),
        };
        let good = scheme.sign(&key, &sample_body(), &params).unwrap();
        let expected_sig = &good
            .iter()
            .find(|(k, _)| *k == scheme.signature_header())
            .unwrap()
            .1;
        for case in bad_inputs(scheme, secret(scheme), NOW) {
            let err = scheme
                .verify(&ring, &case.headers, &case.body, &VerifyOptions::at(NOW))
                .unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(!text.contains(secret(scheme)), "{text}");
            assert!(!text.contains(expected_sig.as_str()), "{text}");
        }
    }
}
