//! The claim check's rate: webhooks too large for one SQS message (5 MB by default) sent
//! to the edge, which verifies each, writes it to S3 with a SigV4 `PutObject` and queues
//! the envelope that points at it, beside a plain `PutObject` of the same bytes with the
//! AWS SDK, against the same moto in the same run. Rounds alternate (a busy moment hits
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

/// A signed prediction webhook of `bytes` bytes and its headers.
fn webhook(bytes: usize, secret: &str) -> Result<(Vec<u8>, Headers), StackError> {
    let head = r#"{"id":"pred_bench_big","status":"succeeded","output":[],"logs":""#;
    let tail = "\"}";
    let pad = bytes.saturating_sub(head.len() + tail.len());
    let body = format!("{head}{}{tail}", "x".repeat(pad)).into_bytes();
    let headers = hookvault_core::corpus::signed(Scheme::Skytells, secret, &body, 0)
        .map_err(|e| StackError::Start(e.to_string()))?;
    Ok((body, headers))
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
    let (body, headers) = webhook(bytes, secret)?;
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
    let body = bytes::Bytes::from(body);

    let (mut through_edge, mut plain) = (Vec::new(), Vec::new());
    let (mut edge_failed, mut plain_failed) = (0, 0);
    for _ in 0..rounds {
        let (http, url, body_e, headers) =
            (http.clone(), url.clone(), body.clone(), headers.clone());
        let (rate, failed) = load(seconds, connections, move || {
            let mut req = http.post(&url).body(body_e.clone());
            for (k, v) in &headers {
                req = req.header(k.as_str(), v.as_str());
            }
            async move { req.send().await.is_ok_and(|r| r.status().as_u16() == 202) }
        })
        .await;
        through_edge.push(rate);
        edge_failed += failed;
        sqs::purge(&sqs_client, &queue).await?;
        let (client, body_p) = (s3_client.clone(), body.clone());
        let (rate, failed) = load(seconds, connections, move || {
            let req = client
                .put_object()
                .bucket("bench")
                .key("plain/body")
                .body(ByteStream::from(body_p.clone()));
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
    let mbps = |r: f64| r * body.len() as f64 / 1e6;
    let mut table = format!(
        "{} B signed webhook, {connections} connections, {rounds} rounds of {seconds} s, alternating; the median round\n\n| path | req/s | MB/s | req/s, every round | failed |\n|---|---|---|---|---|\n",
        body.len()
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
    Ok(table)
}
