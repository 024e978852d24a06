//! Fuzzes the header parsers of every scheme: arbitrary header values and bodies must
//! never panic, and must never verify without the key.
//!
//!   cargo +nightly fuzz run verify_headers      (from core/; cargo install cargo-fuzz)
#![no_main]

use hookvault_core::scheme::ALL_SCHEMES;
use hookvault_core::{KeyRing, VerifyOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Layout: [scheme selector][n headers]{[name selector][len][value]}*[body…]
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let scheme = ALL_SCHEMES[sel as usize % ALL_SCHEMES.len()];
    let names = [
        "x-skytells-signature",
        "x-hub-signature-256",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "stripe-signature",
        "x-github-delivery",
    ];
    let Some((&n, mut rest)) = rest.split_first() else {
        return;
    };
    let mut headers: Vec<(&str, &[u8])> = Vec::new();
    for _ in 0..(n % 6) {
        let [name, len, tail @ ..] = rest else { break };
        let len = (*len as usize).min(tail.len());
        headers.push((names[*name as usize % names.len()], &tail[..len]));
        rest = &tail[len..];
    }
    let secret = if scheme == hookvault_core::Scheme::Standard {
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    } else {
        "fuzz-secret"
    };
    let Ok(ring) = KeyRing::single(scheme, secret) else {
        return;
    };
    // A random signature must not verify (2^-256); a success would be a bug.
    let now = 1_614_265_330;
    assert!(scheme
        .verify(&ring, headers.as_slice(), rest, &VerifyOptions::at(now))
        .is_err());
});
