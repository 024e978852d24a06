//! Property tests: verification never panics on any input, and never accepts a body that
//! differs from the one signed.
#![allow(missing_docs, clippy::unwrap_used)]

use hookvault_core::scheme::{SignParams, ALL_SCHEMES};
use hookvault_core::{KeyRing, Scheme, VerifyOptions};
use proptest::prelude::*;

const NOW: i64 = 1_800_000_000;

fn secret(scheme: Scheme) -> &'static str {
    hookvault_core::corpus::example_secret(scheme)
}

fn scheme() -> impl Strategy<Value = Scheme> {
    prop::sample::select(ALL_SCHEMES.to_vec())
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("x-skytells-signature".to_owned()),
        Just("X-Hub-Signature-256".to_owned()),
        Just("webhook-id".to_owned()),
        Just("webhook-timestamp".to_owned()),
        Just("webhook-signature".to_owned()),
        Just("Stripe-Signature".to_owned()),
        "[a-zA-Z-]{1,20}",
    ]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        "(sha256=|v1,|t=[0-9]{0,20},v1=)[0-9a-fA-F+/=,. ]{0,80}".prop_map(String::into_bytes),
        "[0-9]{0,25}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn verification_never_panics(
        scheme in scheme(),
        headers in prop::collection::vec((header_name(), header_value()), 0..6),
        body in prop::collection::vec(any::<u8>(), 0..300),
        now in any::<i64>(),
        tolerance in any::<u64>(),
    ) {
        let ring = KeyRing::single(scheme, secret(scheme)).unwrap();
        let _ = scheme.verify(&ring, &headers, &body, &VerifyOptions { now, tolerance });
    }

    #[test]
    fn a_mutated_body_is_never_accepted(
        scheme in scheme(),
        body in prop::collection::vec(any::<u8>(), 0..500),
        edit in prop_oneof![
            (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, x)| (0u8, Some(i), x)),
            any::<u8>().prop_map(|x| (1u8, None, x)),
            any::<prop::sample::Index>().prop_map(|i| (2u8, Some(i), 0)),
        ],
    ) {
        let ring = KeyRing::single(scheme, secret(scheme)).unwrap();
        let key = scheme.decode_secret(secret(scheme)).unwrap();
        let params = SignParams { id: Some("msg_prop".into()), timestamp: Some(NOW) };
        let headers = scheme.sign(&key, &body, &params).unwrap();
        let opts = VerifyOptions::at(NOW);
        prop_assert!(scheme.verify(&ring, &headers, &body, &opts).is_ok());
        let mut mutated = body.clone();
        match edit {
            (0, Some(i), x) if !mutated.is_empty() => { let i = i.index(mutated.len()); mutated[i] ^= x; }
            (1, _, x) => mutated.push(x),
            (2, Some(i), _) if !mutated.is_empty() => { mutated.remove(i.index(mutated.len())); }
            _ => mutated.push(b'!'),
        }
        prop_assert_ne!(&mutated, &body);
        prop_assert!(scheme.verify(&ring, &headers, &mutated, &opts).is_err());
    }
}
