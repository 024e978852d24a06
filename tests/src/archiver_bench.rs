//! The archiver's benchmark: one output of `size` bytes (1 GiB by default) from the
//! stand-in CDN into S3, through the **release** `archiver` binary running against
//! cargo-lambda's Lambda runtime API (`cargo lambda watch --only-lambda-apis`), with its
//! peak RSS read from `/proc/{pid}/status` (`VmHWM`). The S3 is moto, or **s3s-fs** (an S3
//! implementation over the file system, `scripts/lib/tools.sh` `hv_s3s_fs`), which runs at
//! disk speed where moto (Python) bounds every writer at ~100-130 MiB/s. Beside it, in
//! the same run:
//!
//! * a plain download of the same bytes to nowhere (the ceiling: no S3 at all);
//! * a **plain copy**: the download to a file, then one `PutObject` of that file with the
//!   SDK's own streaming body (`ByteStream::from_path`), timed together; then the same file
//!   as a multipart upload, with `CompleteMultipartUpload` timed alone (s3s-fs reads,
//!   hashes and writes every part again there; S3 does not copy data on completion);
//! * the seed's approach: boto3 `upload_fileobj` of the streamed response, into the same
//!   S3 (`scripts/bench/seed_archive.py`);
//! * the binary's size and its start-to-first-answer time on an empty batch;
//! * with `sweep`, the archiver again for each part size and parts in flight of
//!   [`SWEEP`].

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::moto::Moto;
use crate::process::{free_port, Service, TempDir};
use crate::provider::{content_sha256, Provider};
use crate::workerd::LOCAL_AWS_SECRET;
use crate::{paths, s3, StackError};

/// (MiB per part, parts in flight) tried by `--sweep`.
pub const SWEEP: &[(u64, u64)] = &[(8, 1), (8, 2), (8, 4), (16, 2), (16, 4), (32, 1), (32, 2)];

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

/// Which S3 the benchmark writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// moto (Python): bounds every writer.
    Moto,
    /// s3s-fs over a temporary folder: disk speed.
    S3sFs,
}

/// A running S3: its endpoint, and what keeps it up.
struct S3 {
    endpoint: String,
    name: &'static str,
    _moto: Option<Moto>,
    _s3s: Option<(Service, TempDir)>,
}

impl S3 {
    async fn start(target: Target) -> Result<Self, StackError> {
        match target {
            Target::Moto => {
                let moto = Moto::start(None).await?;
                Ok(S3 {
                    endpoint: moto.endpoint.clone(),
                    name: "moto",
                    _moto: Some(moto),
                    _s3s: None,
                })
            }
            Target::S3sFs => {
                let bin = paths::tools().join("cargo/bin/s3s-fs");
                if !bin.exists() {
                    return Err(StackError::Missing {
                        what: "s3s-fs (scripts/bench-archiver.sh --s3 s3s-fs installs it)",
                        path: bin.display().to_string(),
                    });
                }
                let dir = TempDir::new("s3s-fs")?;
                let root = dir.0.join("data");
                std::fs::create_dir_all(&root)?;
                let port = free_port()?;
                let mut cmd = Command::new(bin);
                cmd.args(["--host", "127.0.0.1", "--port"])
                    .arg(port.to_string())
                    .args(["--access-key", "testing", "--secret-key", LOCAL_AWS_SECRET])
                    .arg(&root);
                let mut service = Service::spawn(cmd, dir.0.join("s3s-fs.log"))?;
                service.wait_port(port, Duration::from_secs(20)).await?;
                Ok(S3 {
                    endpoint: format!("http://127.0.0.1:{port}"),
                    name: "s3s-fs",
                    _moto: None,
                    _s3s: Some((service, dir)),
                })
            }
        }
    }

    /// A client with the credentials every writer here uses.
    fn client(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&crate::moto::sdk_config(&self.endpoint))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing",
                LOCAL_AWS_SECRET,
                None,
                None,
                "bench",
            ))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

/// One archiver run: seconds, peak RSS (KiB), the manifest's digest correct.
struct Archived {
    secs: f64,
    rss_kib: u64,
    ok: bool,
    answer: serde_json::Value,
    first_answer: Duration,
}

/// Archives the output at `url` once with the release binary, as prediction `id`.
async fn archive_once(
    binary: &std::path::Path,
    s3: &S3,
    url: &str,
    id: &str,
    size: u64,
    knobs: &[(&str, String)],
) -> Result<Archived, StackError> {
    let emulator = crate::lambda::RuntimeApi::start().await?;
    let dir = &emulator.dir;
    let mut fn_cmd = emulator.function(
        binary,
        &crate::lambda::archiver_env(&s3.endpoint, "bench", &[]),
    );
    for (k, v) in knobs {
        fn_cmd.env(k, v);
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
    let payload = format!(r#"{{"id":"{id}","status":"succeeded","output":["{url}"]}}"#);
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
    let secs = t.elapsed().as_secs_f64();
    let rss_kib = peak_rss_kib(pid).unwrap_or(0);
    let store = s3.client();
    let manifest = s3::get(&store, "bench", &format!("predictions/{id}/manifest.json")).await?;
    let ok = manifest
        .as_ref()
        .is_some_and(|(b, _)| String::from_utf8_lossy(b).contains(&content_sha256(size)));
    drop(function);
    // Free the disk (s3s-fs keeps 1 GiB per run).
    for key in s3::keys(&store, "bench", &format!("predictions/{id}/")).await? {
        let _ = store.delete_object().bucket("bench").key(key).send().await;
    }
    Ok(Archived {
        secs,
        rss_kib,
        ok,
        answer,
        first_answer,
    })
}

/// What the plain copy measured.
struct Copied {
    /// Download to a file, then one `PutObject` of it.
    secs: f64,
    /// The `PutObject` alone.
    put_secs: f64,
    /// The same file as a multipart upload (8 MiB parts, one at a time): the parts...
    parts_secs: f64,
    /// ...and `CompleteMultipartUpload` alone, which a server may make expensive (s3s-fs
    /// reads, hashes and writes every part again).
    complete_secs: f64,
}

/// The file at `path` as a multipart upload of 8 MiB parts, one at a time: seconds for
/// the parts, and for `CompleteMultipartUpload`.
async fn multipart_from_file(
    store: &aws_sdk_s3::Client,
    path: &std::path::Path,
    size: u64,
) -> Result<(f64, f64), StackError> {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    const PART: u64 = 8 << 20;
    let sdk = |e: aws_sdk_s3::Error| err(aws_sdk_s3::error::DisplayErrorContext(e));
    let key = "plain/multipart.bin";
    let t = Instant::now();
    let upload = store
        .create_multipart_upload()
        .bucket("bench")
        .key(key)
        .send()
        .await
        .map_err(|e| sdk(e.into()))?;
    let id = upload.upload_id().unwrap_or_default().to_owned();
    let mut parts = Vec::new();
    let mut offset = 0;
    let mut n = 1;
    while offset < size {
        let len = PART.min(size - offset);
        let body = aws_sdk_s3::primitives::ByteStream::read_from()
            .path(path)
            .offset(offset)
            .length(aws_sdk_s3::primitives::Length::Exact(len))
            .build()
            .await
            .map_err(err)?;
        let out = store
            .upload_part()
            .bucket("bench")
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(body)
            .send()
            .await
            .map_err(|e| sdk(e.into()))?;
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
        offset += len;
        n += 1;
    }
    let parts_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    store
        .complete_multipart_upload()
        .bucket("bench")
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(|e| sdk(e.into()))?;
    let complete_secs = t.elapsed().as_secs_f64();
    let _ = store.delete_object().bucket("bench").key(key).send().await;
    Ok((parts_secs, complete_secs))
}

/// The plain copy: the download to a file, then one `PutObject` of the file with the
/// SDK's streaming body; then the same file as a multipart upload, to time its
/// completion.
async fn plain_copy(s3: &S3, url: &str, size: u64) -> Result<Copied, StackError> {
    let dir = TempDir::new("plain-copy")?;
    let path = dir.0.join("output.bin");
    let t = Instant::now();
    let mut file = tokio::fs::File::create(&path).await?;
    let mut stream = reqwest::get(url).await.map_err(err)?.bytes_stream();
    while let Some(chunk) = stream.next().await {
        file.write_all(&chunk.map_err(err)?).await?;
    }
    file.flush().await?;
    drop(file);
    let body = aws_sdk_s3::primitives::ByteStream::from_path(&path)
        .await
        .map_err(err)?;
    let store = s3.client();
    let put = Instant::now();
    store
        .put_object()
        .bucket("bench")
        .key("plain/output.bin")
        .body(body)
        .send()
        .await
        .map_err(|e| err(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    let secs = t.elapsed().as_secs_f64();
    let put_secs = put.elapsed().as_secs_f64();
    let _ = store
        .delete_object()
        .bucket("bench")
        .key("plain/output.bin")
        .send()
        .await;
    let (parts_secs, complete_secs) = multipart_from_file(&store, &path, size).await?;
    Ok(Copied {
        secs,
        put_secs,
        parts_secs,
        complete_secs,
    })
}

/// Runs the benchmark against `target`; with `sweep`, also every setting of [`SWEEP`].
/// Returns a Markdown report.
pub async fn run(size: u64, target: Target, sweep: bool) -> Result<String, StackError> {
    let binary = paths::root().join("target/release/archiver");
    if !binary.exists() {
        return Err(StackError::Missing {
            what: "the release archiver",
            path: binary.display().to_string(),
        });
    }
    let s3 = S3::start(target).await?;
    s3::create_bucket(&s3.client(), "bench").await?;
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

    // 2. The plain copy.
    let copied = plain_copy(&s3, &url, size).await?;
    let copy = copied.secs;

    // 3. The release archiver, with the knobs of the environment (or its defaults).
    let env_knobs: Vec<(&str, String)> = ["UPLOAD_PART_BYTES", "UPLOAD_PARTS_IN_FLIGHT"]
        .into_iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k, v)))
        .collect();
    let main = archive_once(&binary, &s3, &url, "pred_bench", size, &env_knobs).await?;

    // 4. The seed's boto3 approach into the same S3.
    let t = Instant::now();
    let seed = Command::new(paths::tools().join("venv/bin/python"))
        .arg(paths::root().join("scripts/bench/seed_archive.py"))
        .args([&url, &s3.endpoint, "bench", "seed/big.mp4"])
        .env("AWS_SECRET_ACCESS_KEY", LOCAL_AWS_SECRET)
        .output()
        .await
        .map_err(err)?;
    let seed_secs = t.elapsed().as_secs_f64();
    let seed_out = String::from_utf8_lossy(&seed.stdout).trim().to_owned();
    let _ = s3
        .client()
        .delete_object()
        .bucket("bench")
        .key("seed/big.mp4")
        .send()
        .await;

    let size_bytes = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
    let knob = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let _ = writeln!(
        report,
        "output: {size} bytes ({:.0} MiB) from the stand-in CDN into {} S3; archiver UPLOAD_PART_BYTES={} UPLOAD_PARTS_IN_FLIGHT={}",
        size as f64 / 1048576.0,
        s3.name,
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
        "| plain copy: download to a file, then one `PutObject` of it | {copy:.2} s | {:.0} MiB/s | — | SDK `ByteStream::from_path`; the `PutObject` alone {:.2} s |",
        mib(size, copy),
        copied.put_secs
    );
    let _ = writeln!(
        report,
        "| the same file as a multipart upload (8 MiB parts, one at a time) | {:.2} s | {:.0} MiB/s | — | parts {:.2} s, then `CompleteMultipartUpload` alone **{:.2} s** |",
        copied.parts_secs + copied.complete_secs,
        mib(size, copied.parts_secs + copied.complete_secs),
        copied.parts_secs,
        copied.complete_secs
    );
    let _ = writeln!(
        report,
        "| archiver (release, under cargo-lambda's runtime API) | {:.2} s | {:.0} MiB/s | **{:.1} MiB** | manifest sha256 correct: {}; answer {} |",
        main.secs,
        mib(size, main.secs),
        main.rss_kib as f64 / 1024.0,
        main.ok,
        main.answer
    );
    let _ = writeln!(report, "| seed: boto3 `upload_fileobj` of the streamed response | {seed_secs:.2} s | {:.0} MiB/s | {seed_out} | exit {} |", mib(size, seed_secs), seed.status);
    let _ = writeln!(
        report,
        "\narchiver / plain copy: **{:.2}×**; archiver / seed: **{:.2}×**; archiver / plain download: {:.2}× (throughput)",
        copy / main.secs,
        seed_secs / main.secs,
        plain / main.secs
    );
    let _ = writeln!(report, "release binary: {size_bytes} bytes ({:.2} MiB); spawn to first answered invoke (empty batch): {:.0} ms", size_bytes as f64 / 1048576.0, main.first_answer.as_secs_f64() * 1000.0);

    if sweep {
        let _ = writeln!(
            report,
            "\n| part size | parts in flight | time | throughput | / plain copy | / seed | peak RSS | digest |\n|---|---|---|---|---|---|---|---|"
        );
        for (i, (part_mib, in_flight)) in SWEEP.iter().enumerate() {
            let knobs = [
                ("UPLOAD_PART_BYTES", (part_mib << 20).to_string()),
                ("UPLOAD_PARTS_IN_FLIGHT", in_flight.to_string()),
            ];
            let a =
                archive_once(&binary, &s3, &url, &format!("pred_sweep_{i}"), size, &knobs).await?;
            let _ = writeln!(
                report,
                "| {part_mib} MiB | {in_flight} | {:.2} s | {:.0} MiB/s | {:.2}× | {:.2}× | {:.1} MiB | {} |",
                a.secs,
                mib(size, a.secs),
                copy / a.secs,
                seed_secs / a.secs,
                a.rss_kib as f64 / 1024.0,
                if a.ok { "ok" } else { "WRONG" }
            );
        }
    }
    Ok(report)
}
