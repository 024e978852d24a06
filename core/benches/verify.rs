//! Verification speed per scheme at 1 KiB, 64 KiB and 1 MiB (criterion).
//!
//! Run with `scripts/bench-verify.sh`, which also times the seed's Python handler on the
//! same bodies and prints the ratio; figures go to `docs/benchmarks.md`.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hookvault_core::scheme::{SignParams, ALL_SCHEMES};
use hookvault_core::{KeyRing, Scheme, VerifyOptions};

const NOW: i64 = 1_800_000_000;

fn body(len: usize) -> Vec<u8> {
    // The same bytes the Python side builds: a JSON-ish pattern, repeated.
    let pattern =
        br#"{"id":"pred_abc123","status":"succeeded","output":["https://cdn.skytells.ai/x.mp4"]}"#;
    pattern.iter().copied().cycle().take(len).collect()
}

fn secret(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Standard => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        _ => "bench-secret-0123456789abcdef",
    }
}

fn verify(c: &mut Criterion) {
    for scheme in ALL_SCHEMES {
        let mut group = c.benchmark_group(format!("verify/{scheme}"));
        let ring = KeyRing::single(scheme, secret(scheme)).unwrap();
        let key = scheme.decode_secret(secret(scheme)).unwrap();
        for (label, len) in [("1KiB", 1024), ("64KiB", 64 * 1024), ("1MiB", 1024 * 1024)] {
            let body = body(len);
            let params = SignParams {
                id: Some("msg_bench".into()),
                timestamp: Some(NOW),
            };
            let headers = scheme.sign(&key, &body, &params).unwrap();
            let opts = VerifyOptions::at(NOW);
            group.throughput(Throughput::Bytes(len as u64));
            group.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.iter(|| {
                    scheme
                        .verify(&ring, black_box(&headers), black_box(&body), &opts)
                        .unwrap()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, verify);
criterion_main!(benches, floor_benches);

fn floor(c: &mut Criterion) {
    use hmac::{Hmac, KeyInit, Mac};
    let body = body(1024);
    let mac = Hmac::<sha2::Sha256>::new_from_slice(b"bench-secret-0123456789abcdef").unwrap();
    // The prepared state cloned per verification, as the key ring does (issue #16).
    c.bench_function("floor/hmac/1KiB", |b| {
        b.iter(|| {
            let mut m = mac.clone();
            m.update(black_box(&body));
            m.finalize().into_bytes()
        })
    });
    // The key set up for every HMAC (two SHA-256 blocks more), as before the key ring
    // kept prepared keys: what preparing saves.
    c.bench_function("floor/hmac-key-setup-each-time/1KiB", |b| {
        b.iter(|| {
            let mut m =
                Hmac::<sha2::Sha256>::new_from_slice(black_box(b"bench-secret-0123456789abcdef"))
                    .unwrap();
            m.update(black_box(&body));
            m.finalize().into_bytes()
        })
    });
}
criterion_group!(floor_benches, floor);
