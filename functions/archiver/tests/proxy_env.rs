//! The downloader ignores the proxy variables.
//!
//! reqwest honours `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` by default, and a proxy
//! would make the connection (and resolve the name) out of the URL guard's reach. This
//! test sets them all to a listener that records connections, builds the `Downloader` and,
//! as the control, a default reqwest client, then downloads through both.
//!
//! Why a test binary of its own: the variables are process-wide and read when a client is
//! built, so any other test building a client at that moment would pick them up. This file
//! holds this one test only, so its process has no other test to disturb; the variables
//! are also removed as soon as both clients are built.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hookvault_archiver::download::Downloader;
use hookvault_archiver::ArchiverConfig;
use hookvault_core::url_guard::UrlGuard;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const VARS: [&str; 6] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

/// A server that counts its connections and answers each with `answer`.
async fn server(answer: &'static [u8]) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let _ = conn.write_all(answer).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), count)
}

#[tokio::test]
async fn downloads_never_go_through_a_proxy_from_the_environment() {
    let (origin, origin_hits) = server(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
    )
    .await;
    let (proxy, proxy_hits) =
        server(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
    let cfg = ArchiverConfig {
        bucket: "unused".into(),
        guard: UrlGuard::new(["127.0.0.1"])
            .allow_http(true)
            .allow_loopback(true),
        max_output_bytes: 1024,
        max_event_bytes: 1024,
        connect_timeout_ms: 2_000,
        read_timeout_ms: 2_000,
        part_bytes: 5 * 1024 * 1024,
        parts_in_flight: 1,
        outputs_in_flight: 1,
    };

    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");
    for var in VARS {
        std::env::set_var(var, &proxy);
    }
    let downloader = Downloader::new(&cfg).unwrap();
    let control = reqwest::Client::new();
    for var in VARS {
        std::env::remove_var(var);
    }

    let download = downloader
        .open(&format!("{origin}/x.txt"), None)
        .await
        .expect("downloaded directly");
    assert_eq!(download.response.bytes().await.unwrap().as_ref(), b"hello");
    assert_eq!(origin_hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        proxy_hits.load(Ordering::SeqCst),
        0,
        "the downloader connected to the proxy"
    );

    // The control: a client built with the same environment does use the proxy, so the
    // variables were in force when the downloader was built.
    let via_proxy = control.get(format!("{origin}/x.txt")).send().await.unwrap();
    assert_eq!(via_proxy.status(), 502);
    assert_eq!(proxy_hits.load(Ordering::SeqCst), 1);
    assert_eq!(origin_hits.load(Ordering::SeqCst), 1);
}
