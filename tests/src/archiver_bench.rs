//! The archiver's benchmark: one output of `size` bytes (1 GiB by default) from the
//! stand-in CDN into S3 (moto), through the **release** `archiver` binary running against
//! cargo-lambda's Lambda runtime API (`cargo lambda watch --only-lambda-apis`), with its
//! peak RSS read from `/proc/{pid}/status` (`VmHWM`). Beside it, in the same run:
//!
//! * a plain download of the same bytes to nowhere (the ceiling: no S3 at all);
//! * the seed's approach: boto3 `upload_fileobj` of the streamed response, into the same
//!   moto (`scripts/bench/seed_archive.py`);
//! * the binary's size and its start-to-first-answer time on an empty batch.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tokio::process::Command;

use crate::moto::Moto;
use crate::provider::{content_sha256, Provider};
use crate::{paths, s3, StackError};

fn err(e: impl std::fmt::Display) -> StackError {
    StackError::Start(e.to_string())
}

/// Peak resident memory of a process, KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

async fn invoke(url: &str, payload: &serde_json::Value) -> Result<serde_json::Value, StackError> {
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(payload.to_string())
        .timeout(Duration::from_secs(1800))
        .send()
        .await
        .map_err(err)?;
    let text = resp.text().await.map_err(err)?;
    serde_json::from_str(&text).map_err(|e| err(format!("{e}: {text}")))
}

fn record(body: String) -> serde_json::Value {
    json!({ "Records": [{ "messageId": "bench-1", "body": body }] })
}

/// Runs the benchmark; returns a Markdown report.
pub async fn run(size: u64) -> Result<String, StackError> {
    let binary = paths::root().join("target/release/archiver");
    if !binary.exists() {
        return Err(StackError::Missing {
            what: "the release archiver",
            path: binary.display().to_string(),
        });
    }
    let moto = Moto::start(None).await?;
    let store = s3::client(&moto.endpoint);
    s3::create_bucket(&store, "bench").await?;
    let cdn = Provider::start().await?;
    let url = format!("{}/files/big.mp4?size={size}", cdn.url);
    let mib = |bytes: u64, secs: f64| bytes as f64 / secs / 1048576.0;
    let mut report = String::new();

    // 1. Plain download, nothing stored.
    let t = Instant::now();
    let mut stream = reqwest::get(&url).await.map_err(err)?.bytes_stream();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        n += chunk.map_err(err)?.len() as u64;
    }
    let plain = t.elapsed().as_secs_f64();

    // 2. The release archiver against cargo-lambda's runtime API.
    let emulator = crate::lambda::RuntimeApi::start().await?;
    let dir = &emulator.dir;
    let mut fn_cmd = emulator.function(
        &binary,
        &crate::lambda::archiver_env(&moto.endpoint, "bench", &[]),
    );
    // The upload knobs pass through, to measure their effect.
    for knob in ["UPLOAD_PART_BYTES", "UPLOAD_PARTS_IN_FLIGHT"] {
        if let Ok(v) = std::env::var(knob) {
            fn_cmd.env(knob, v);
        }
    }
    let spawned = Instant::now();
    let function = fn_cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.0.join("function.log"))?)
        .spawn()
        .map_err(err)?;
    let pid = function.id().unwrap_or_default();
    let invoke_url = emulator.invoke_url();
    invoke(&invoke_url, &json!({ "Records": [] })).await?;
    let first_answer = spawned.elapsed();
    let verified = hookvault_core::Verified {
        key_id: "k".into(),
        slot: hookvault_core::KeySlot::Current,
        delivery_id: None,
        timestamp: None,
    };
    let payload = format!(r#"{{"id":"pred_bench","status":"succeeded","output":["{url}"]}}"#);
    let envelope = hookvault_core::envelope::Envelope::new(
        &hookvault_core::envelope::Received {
            provider: "skytells",
            scheme: hookvault_core::Scheme::Skytells,
            verified: &verified,
            signature_headers: &[],
            content_type: Some("application/json"),
            received_at_ms: 0,
        },
        payload.as_bytes(),
    )
    .to_json();
    let t = Instant::now();
    let answer = invoke(&invoke_url, &record(envelope)).await?;
    let archived = t.elapsed().as_secs_f64();
    let rss = peak_rss_kib(pid).unwrap_or(0);
    let manifest = s3::get(&store, "bench", "predictions/pred_bench/manifest.json").await?;
    let ok = manifest
        .as_ref()
        .is_some_and(|(b, _)| String::from_utf8_lossy(b).contains(&content_sha256(size)));
    drop(function);

    // 3. The seed's boto3 approach into the same moto.
    let t = Instant::now();
    let seed = Command::new(paths::tools().join("venv/bin/python"))
        .arg(paths::root().join("scripts/bench/seed_archive.py"))
        .args([&url, &moto.endpoint, "bench", "seed/big.mp4"])
        .output()
        .await
        .map_err(err)?;
    let seed_secs = t.elapsed().as_secs_f64();
    let seed_out = String::from_utf8_lossy(&seed.stdout).trim().to_owned();

    let size_bytes = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
    let knob = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let _ = writeln!(
        report,
        "output: {size} bytes ({:.0} MiB) from the stand-in CDN into moto S3; archiver UPLOAD_PART_BYTES={} UPLOAD_PARTS_IN_FLIGHT={}",
        size as f64 / 1048576.0,
        knob("UPLOAD_PART_BYTES", "8388608 (default)"),
        knob("UPLOAD_PARTS_IN_FLIGHT", "2 (default)")
    );
    let _ = writeln!(
        report,
        "\n| path | time | throughput | peak RSS | notes |\n|---|---|---|---|---|"
    );
    let _ = writeln!(
        report,
        "| plain download, discarded (ceiling) | {plain:.2} s | {:.0} MiB/s | — | {n} bytes |",
        mib(n, plain)
    );
    let _ = writeln!(
        report,
        "| archiver (release, under cargo-lambda's runtime API) | {archived:.2} s | {:.0} MiB/s | **{:.1} MiB** | manifest sha256 correct: {ok}; answer {answer} |",
        mib(size, archived),
        rss as f64 / 1024.0
    );
    let _ = writeln!(report, "| seed: boto3 `upload_fileobj` of the streamed response | {seed_secs:.2} s | {:.0} MiB/s | {seed_out} | exit {} |", mib(size, seed_secs), seed.status);
    let _ = writeln!(
        report,
        "\narchiver / plain download: **{:.2}×** throughput",
        plain / archived
    );
    let _ = writeln!(report, "release binary: {size_bytes} bytes ({:.2} MiB); spawn to first answered invoke (empty batch): {:.0} ms", size_bytes as f64 / 1048576.0, first_answer.as_secs_f64() * 1000.0);
    Ok(report)
}
