//! The claim check's rate: webhooks too large for one SQS message (5 MB by default) sent
//! to the edge, which verifies each, writes it to S3 with a SigV4 `PutObject` and queues
//! the envelope that points at it, beside a plain `PutObject` of the same bytes with the
//! AWS SDK (which retries a 5xx; the edge answers 503 and the sender retries), against the
//! same moto in the same run. Building and signing each body is in both loops. Rounds alternate (a busy moment hits
//! both). Also reports workerd's peak resident memory (the whole runtime, an upper bound of
//! the isolate's), against a Worker's 128 MB.
//!
//! `hookvault-dev bench-claim-check [--mb 5] [--seconds 10] [--rounds 3] [--connections 2]`

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use hookvault_core::Scheme;

use crate::moto::Moto;
use crate::workerd::Edge;
use crate::{s3, sqs, StackError};

/// Request headers, as `(name, value)` pairs.
type Headers = Vec<(String, String)>;

/// The `n`th signed prediction webhook of `bytes` bytes, and its headers. Every one is
/// different, as distinct events are (the claim check's key is the body's digest).
fn webhook(n: u64, bytes: usize, secret: &str) -> (bytes::Bytes, Headers) {
    let head = format!(r#"{{"id":"pred_bench_{n:012}","status":"succeeded","output":[],"logs":""#);
    let tail = "\"}";
    let pad = bytes.saturating_sub(head.len() + tail.len());
    let body = format!("{head}{}{tail}", "x".repeat(pad)).into_bytes();
    let headers =
        hookvault_core::corpus::signed(Scheme::Skytells, secret, &body, 0).unwrap_or_default();
    (body.into(), headers)
}

/// Runs `connections` loops of `one` for `seconds`; requests per second that succeeded,
/// and the failures.
async fn load<F, Fut>(seconds: u64, connections: usize, one: F) -> (f64, u64)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let one = Arc::new(one);
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (one, ok, failed) = (Arc::clone(&one), Arc::clone(&ok), Arc::clone(&failed));
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let counter = if one().await { &ok } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = started.elapsed().as_secs_f64();
    (
        ok.load(Ordering::Relaxed) as f64 / secs,
        failed.load(Ordering::Relaxed),
    )
}

/// Runs the benchmark; returns a Markdown table.
pub async fn run(
    mb: u64,
    seconds: u64,
    rounds: usize,
    connections: usize,
) -> Result<String, StackError> {
    let secret = "bench-claim-check-secret";
    let bytes = usize::try_from(mb * 1_000_000).unwrap_or(usize::MAX);
    let next = Arc::new(AtomicU64::new(0));
    let moto = Moto::start(None).await?;
    let sqs_client = sqs::client(&moto.endpoint);
    let queue = sqs::create_queue(&sqs_client, "bench-claim-check").await?;
    let s3_client = s3::client(&moto.endpoint);
    s3::create_bucket(&s3_client, "bench").await?;
    let bindings = crate::workerd::local_bindings(
        &moto.endpoint,
        &queue,
        &[
            ("WEBHOOK_SECRETS", secret.to_owned()),
            ("CLAIM_CHECK_BUCKET", "bench".to_owned()),
            ("SQS_TIMEOUT_MS", "30000".to_owned()),
        ],
    );
    let edge = Edge::start(&bindings, None).await?;
    let before_kib = edge.peak_rss_kib();
    let http = reqwest::Client::new();
    let url = format!("{}/webhooks/skytells", edge.url);

    let (mut through_edge, mut plain) = (Vec::new(), Vec::new());
    let (mut edge_failed, mut plain_failed) = (0, 0);
    for _ in 0..rounds {
        let (http, url, n) = (http.clone(), url.clone(), Arc::clone(&next));
        let (rate, failed) = load(seconds, connections, move || {
            let (body, headers) = webhook(n.fetch_add(1, Ordering::Relaxed), bytes, secret);
            let mut req = http.post(&url).body(body);
            for (k, v) in &headers {
                req = req.header(k.as_str(), v.as_str());
            }
            async move {
                match req.send().await {
                    Ok(r) if r.status().as_u16() == 202 => true,
                    Ok(r) => {
                        let status = r.status().as_u16();
                        eprintln!("edge: HTTP {status} {}", r.text().await.unwrap_or_default());
                        false
                    }
                    Err(e) => {
                        eprintln!("edge: {e}");
                        false
                    }
                }
            }
        })
        .await;
        through_edge.push(rate);
        edge_failed += failed;
        sqs::purge(&sqs_client, &queue).await?;
        let (client, n) = (s3_client.clone(), Arc::clone(&next));
        let (rate, failed) = load(seconds, connections, move || {
            let i = n.fetch_add(1, Ordering::Relaxed);
            let (body, _) = webhook(i, bytes, secret);
            let req = client
                .put_object()
                .bucket("bench")
                .key(format!("plain/{i}"))
                .body(ByteStream::from(body));
            async move { req.send().await.is_ok() }
        })
        .await;
        plain.push(rate);
        plain_failed += failed;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let rates = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (e_all, p_all) = (rates(&through_edge), rates(&plain));
    let (e, p) = (median(&mut through_edge), median(&mut plain));
    let mbps = |r: f64| r * bytes as f64 / 1e6;
    let mut table = format!(
        "{bytes} B signed webhooks, each different (as distinct events are), {connections} connections, {rounds} rounds of {seconds} s, alternating; the median round\n\n| path | req/s | MB/s | req/s, every round | failed |\n|---|---|---|---|---|\n"
    );
    let _ = writeln!(
        table,
        "| edge: verify, PutObject (claim check), SendMessage | {e:.1} | {:.0} | {e_all} | {edge_failed} |",
        mbps(e)
    );
    let _ = writeln!(
        table,
        "| plain PutObject of the same bytes (aws-sdk-s3) | {p:.1} | {:.0} | {p_all} | {plain_failed} |",
        mbps(p)
    );
    let _ = writeln!(
        table,
        "\nedge / plain: **{:.2}×**. workerd peak RSS: {} KiB before the load, {} KiB after (the whole runtime process).",
        e / p.max(f64::MIN_POSITIVE),
        before_kib.map_or("?".into(), |k| k.to_string()),
        edge.peak_rss_kib().map_or("?".into(), |k| k.to_string()),
    );
    let wasm_peak = edge
        .logs()
        .lines()
        .filter_map(|l| l.split("\"wasm_memory_bytes\":").nth(1))
        .filter_map(|rest| rest.split([',', '}']).next()?.parse::<u64>().ok())
        .max();
    let _ = writeln!(
        table,
        "The edge's WASM linear memory (which grows to hold the bodies handled at once and never shrinks) peaked at {} bytes.",
        wasm_peak.map_or("?".into(), |b| b.to_string())
    );
    let reasons: Vec<String> = edge
        .logs()
        .lines()
        .filter(|l| l.contains("\"status\":503"))
        .take(3)
        .map(str::to_owned)
        .collect();
    if !reasons.is_empty() {
        let _ = writeln!(
            table,
            "\nThe edge's 503s, the first three:\n\n```\n{}\n```",
            reasons.join("\n")
        );
    }
    Ok(table)
}
