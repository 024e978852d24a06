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

/// The forms a MAC could leak in: lowercase and uppercase hex, and base64.
fn leak_forms(mac: &[u8]) -> Vec<String> {
    use base64::Engine as _;
    vec![
        hex::encode(mac),
        hex::encode_upper(mac),
        base64::engine::general_purpose::STANDARD.encode(mac),
    ]
}

/// What the sender signs for `body` under `scheme` at NOW (the scheme's prefix, then the
/// body), MAC'd with `key`.
fn expected_mac(scheme: Scheme, key: &[u8], body: &[u8]) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
    match scheme {
        Scheme::Standard => m.update(format!("msg_2Lw8vN0abc.{NOW}.").as_bytes()),
        Scheme::Stripe => m.update(format!("{NOW}.").as_bytes()),
        Scheme::Skytells | Scheme::GitHub => {}
    }
    m.update(body);
    m.finalize().into_bytes().to_vec()
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
        // The MAC of the good body, in every form it could be written in; it must be
        // what the header carries (so this check looks for the right thing).
        let good_mac = expected_mac(scheme, &key, &sample_body());
        assert!(
            leak_forms(&good_mac)
                .iter()
                .any(|f| expected_sig.contains(f.as_str())),
            "{scheme}: the MAC computed here is not the one signed"
        );
        for case in bad_inputs(scheme, secret(scheme), NOW) {
            let err = scheme
                .verify(&ring, &case.headers, &case.body, &VerifyOptions::at(NOW))
                .unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(!text.contains(secret(scheme)), "{text}");
            assert!(!text.contains(expected_sig.as_str()), "{text}");
            // Nor the MAC of the good body or of the case's own (altered) body, in hex of
            // either case or base64.
            let case_mac = expected_mac(scheme, &key, &case.body);
            for leak in leak_forms(&good_mac)
                .into_iter()
                .chain(leak_forms(&case_mac))
            {
                assert!(!text.contains(&leak), "{}: {text}", case.name);
            }
        }
    }
}
