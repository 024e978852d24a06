//! The archiver's limits, observed end to end (workerd → moto's SQS → archiver → moto's
//! S3) against a CDN of this test's own that counts what it is asked: `DOWNLOAD_MAX_BYTES`
//! refuses an output by its declared size and, when the CDN declares none (chunked), by
//! the running total of what it streamed; `OUTPUTS_IN_FLIGHT` bounds how many outputs of
//! one prediction download at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookvault_core::records::{FailureRecord, Manifest};
use hookvault_core::Scheme;
use hookvault_localstack::provider::content_sha256;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::e2e_lossless::Rig;
use crate::utils::{now, sign};

const SECRET: &str = "limits-secret";

/// A CDN on loopback, raw HTTP/1.1 (one request per connection): every GET is answered
/// after `delay` with `size` bytes of the stand-in's content, with `Content-Length`, or
/// chunked with none. It counts requests and the most in flight at once.
struct Cdn {
    url: String,
    hits: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

async fn cdn(size: usize, chunked: bool, delay: Duration) -> Cdn {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let (h, f, m) = (hits.clone(), in_flight.clone(), max_in_flight.clone());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (h, f, m) = (h.clone(), f.clone(), m.clone());
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                let body = hookvault_localstack::provider::content(0, size);
                let head = if chunked {
                    "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_owned()
                } else {
                    format!("HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n")
                };
                let mut out = head.into_bytes();
                if chunked {
                    for chunk in body.chunks(16 * 1024) {
                        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                        out.extend_from_slice(chunk);
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b"0\r\n\r\n");
                } else {
                    out.extend_from_slice(&body);
                }
                let _ = conn.write_all(&out).await;
                let _ = conn.shutdown().await;
                f.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Cdn {
        url,
        hits,
        max_in_flight,
    }
}

/// Sends a succeeded webhook for `id` with `urls` as its output and archives it.
async fn archive(rig: &Rig, id: &str, urls: &[String]) {
    let body =
        serde_json::to_vec(&json!({"id": id, "status": "succeeded", "output": urls})).unwrap();
    let (status, text) = rig
        .send_with(&body, &sign(Scheme::Skytells, SECRET, &body, now()))
        .await;
    assert_eq!(status, 202, "{text}");
    let (envelopes, redeliver) = rig.archive_queue().await;
    assert_eq!((envelopes.len(), redeliver.len()), (1, 0), "{redeliver:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_max_bytes_refuses_by_declared_size_and_by_running_total() {
    let rig = Rig::start_configured("limits-size", SECRET, |c| c.max_output_bytes = 100_000).await;
    let declared = cdn(200_000, false, Duration::ZERO).await;
    let undeclared = cdn(200_000, true, Duration::ZERO).await;
    let within = cdn(60_000, true, Duration::ZERO).await;
    for (id, cdn) in [
        ("pred_declared", &declared),
        ("pred_undeclared", &undeclared),
    ] {
        archive(&rig, id, &[format!("{}/o.png", cdn.url)]).await;
        let f: FailureRecord = rig.json(&format!("predictions/{id}/failure.json")).await;
        assert_eq!(f.error_id.as_deref(), Some("OUTPUT_TOO_LARGE"), "{id}");
        assert!(
            rig.object(&format!("predictions/{id}/0.png"))
                .await
                .is_none(),
            "{id}"
        );
        assert!(
            rig.object(&format!("predictions/{id}/manifest.json"))
                .await
                .is_none(),
            "{id}"
        );
        assert_eq!(
            cdn.hits.load(Ordering::SeqCst),
            1,
            "{id}: a refusal is not retried"
        );
    }
    // Under the cap, streamed without a declared size: archived whole.
    archive(&rig, "pred_within", &[format!("{}/o.png", within.url)]).await;
    let m: Manifest = rig.json("predictions/pred_within/manifest.json").await;
    assert_eq!(
        (m.outputs[0].bytes, m.outputs[0].sha256.as_str()),
        (60_000, content_sha256(60_000).as_str())
    );
    assert_eq!(
        hookvault_localstack::s3::open_uploads(&rig.stack.s3, crate::utils::BUCKET)
            .await
            .unwrap(),
        0,
        "no multipart upload left open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_in_flight_bounds_the_downloads_of_one_prediction() {
    for limit in [1usize, 3] {
        let rig = Rig::start_configured(&format!("limits-flight-{limit}"), SECRET, |c| {
            c.outputs_in_flight = limit;
        })
        .await;
        let slow = cdn(1_000, false, Duration::from_millis(300)).await;
        let urls: Vec<String> = (0..6).map(|i| format!("{}/o{i}.png", slow.url)).collect();
        archive(&rig, "pred_many", &urls).await;
        let m: Manifest = rig.json("predictions/pred_many/manifest.json").await;
        assert_eq!(m.outputs.len(), 6);
        assert_eq!(slow.hits.load(Ordering::SeqCst), 6);
        assert_eq!(
            slow.max_in_flight.load(Ordering::SeqCst),
            limit,
            "OUTPUTS_IN_FLIGHT={limit}: downloads at once"
        );
    }
}
