//! The envelope's body encoding, measured: version 2 carries the body as base64; the
//! alternative the lossless-ingestion issue named is the body as a JSON string. Both are
//! written and read here for a 4 KiB and a 256 KiB prediction webhook, and the sizes of the
//! queue message and of the `SendMessage` request that carries it (where the message is a
//! JSON string once more) are printed. Figures go to `docs/envelope.md`.
//!
//! `cargo bench -p hookvault-core --bench envelope`
#![allow(missing_docs, clippy::unwrap_used)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hookvault_core::envelope::{Envelope, Received};
use hookvault_core::{KeySlot, Scheme, Verified};

/// A prediction webhook of about `len` bytes: JSON with quotes, as the provider sends.
fn body(len: usize) -> Vec<u8> {
    let mut logs = String::new();
    while logs.len() + 120 < len {
        logs.push_str("step 12/50 \"denoise\" took 0.41 s; ");
    }
    format!(
        r#"{{"id":"pred_abc123","status":"succeeded","model":"stable-video-6s","output":["https://cdn.skytells.ai/x.mp4"],"logs":"{logs}"}}"#
    )
    .into_bytes()
}

fn verified() -> Verified {
    Verified {
        key_id: "2026-11".into(),
        slot: KeySlot::Current,
        delivery_id: None,
        timestamp: None,
    }
}

/// The alternative: the body as a JSON string (only possible for UTF-8 bodies).
fn as_json_string(body: &[u8]) -> String {
    let text = std::str::from_utf8(body).unwrap();
    format!(
        r#"{{"v":2,"provider":"skytells","body_sha256":"{}","body":{}}}"#,
        "0".repeat(64),
        serde_json::to_string(text).unwrap()
    )
}

fn encodings(c: &mut Criterion) {
    let headers = vec![(
        "x-skytells-signature".to_owned(),
        format!("sha256={}", "ab".repeat(32)),
    )];
    let v = verified();
    let received = Received {
        provider: "skytells",
        scheme: Scheme::Skytells,
        verified: &v,
        signature_headers: &headers,
        content_type: Some("application/json"),
        received_at_ms: 1_800_000_000_000,
    };
    let mut group = c.benchmark_group("envelope");
    for (label, len) in [("4KiB", 4096), ("256KiB", 256 * 1024)] {
        let body = body(len);
        let envelope = Envelope::new(&received, &body);
        let base64_message = envelope.to_json();
        let string_message = as_json_string(&body);
        let in_request = |m: &str| serde_json::to_string(m).unwrap().len();
        eprintln!(
            "envelope/{label}: body {} B; message as base64 {} B ({:.2}x), as a JSON string {} B ({:.2}x); in the SendMessage request {} B ({:.2}x) vs {} B ({:.2}x)",
            body.len(),
            base64_message.len(),
            base64_message.len() as f64 / body.len() as f64,
            string_message.len(),
            string_message.len() as f64 / body.len() as f64,
            in_request(&base64_message),
            in_request(&base64_message) as f64 / body.len() as f64,
            in_request(&string_message),
            in_request(&string_message) as f64 / body.len() as f64,
        );
        group.throughput(Throughput::Bytes(body.len() as u64));
        // The encodings alone: what differs between the two designs.
        let text = std::str::from_utf8(&body).unwrap();
        let encoded = STANDARD.encode(&body);
        let escaped = serde_json::to_string(text).unwrap();
        group.bench_function(BenchmarkId::new("encode/base64", label), |b| {
            b.iter(|| STANDARD.encode(black_box(&body)))
        });
        group.bench_function(BenchmarkId::new("encode/json-string", label), |b| {
            b.iter(|| serde_json::to_string(black_box(text)).unwrap())
        });
        group.bench_function(BenchmarkId::new("decode/base64", label), |b| {
            b.iter(|| STANDARD.decode(black_box(&encoded)).unwrap())
        });
        group.bench_function(BenchmarkId::new("decode/json-string", label), |b| {
            b.iter(|| serde_json::from_str::<String>(black_box(&escaped)).unwrap())
        });
        // The whole envelope as the edge writes it and the archiver reads it (the event id
        // read from the body, the digest checked).
        group.bench_function(BenchmarkId::new("envelope/write", label), |b| {
            b.iter(|| Envelope::new(black_box(&received), black_box(&body)).to_json())
        });
        group.bench_function(BenchmarkId::new("envelope/read", label), |b| {
            b.iter(|| Envelope::from_json(black_box(&base64_message)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, encodings);
criterion_main!(benches);
