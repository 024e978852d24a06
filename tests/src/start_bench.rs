//! Start-to-ready of the three Lambdas (the bar: ≤ 20 ms each). Each **release** binary is
//! spawned against cargo-lambda's runtime API and invoked once with an event it answers
//! without touching the network: an empty SQS batch (archiver), a scheduled event with no
//! managed secrets (rotator), a Function URL request for an unknown path (api). The time
//! from spawn to the answer bounds start-to-ready from above (it includes the invoke's
//! round trip through the emulator). Each is repeated; min, median and max are reported.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::lambda::RuntimeApi;
use crate::{paths, StackError};

fn err(e: impl std::fmt::Display) -> StackError {
    StackError::Start(e.to_string())
}

/// A function's name, environment and the event it answers without network.
type Bench = (&'static str, Vec<(String, String)>, serde_json::Value);

/// A Function URL (HTTP API v2) event for `GET path`.
fn url_event(path: &str) -> serde_json::Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"host": "bench"}, "isBase64Encoded": false,
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench", "domainPrefix": "bench",
            "requestId": "bench", "routeKey": "$default", "stage": "$default",
            "time": "25/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"}
        }
    })
}

/// Runs the benchmark `runs` times per function; returns a Markdown table.
pub async fn run(runs: usize) -> Result<String, StackError> {
    let nowhere = "http://127.0.0.1:9";
    let functions: [Bench; 3] = [
        (
            "archiver",
            crate::lambda::archiver_env(nowhere, "bench", &[]),
            json!({"Records": []}),
        ),
        (
            "rotator",
            crate::lambda::local_aws_env(nowhere, &[]),
            json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
        ),
        (
            "api",
            crate::api::api_env(
                nowhere,
                nowhere,
                "bench",
                "https://edge.example/webhooks/skytells",
                &[],
            ),
            url_event("/bench"),
        ),
    ];
    let emulator = RuntimeApi::start().await?;
    let http = reqwest::Client::new();
    let mut table = String::from("| function | release binary | spawn → first answer: min | median | max | answer |\n|---|---|---|---|---|---|\n");
    for (name, env, event) in functions {
        let binary = paths::root().join("target/release").join(name);
        let size = std::fs::metadata(&binary)
            .map_err(|_| {
                err(format!(
                    "{} not built: run scripts/bench-start.sh",
                    binary.display()
                ))
            })?
            .len();
        let mut times = Vec::with_capacity(runs);
        let mut answer = String::new();
        for _ in 0..runs {
            let mut cmd = emulator.function(&binary, &env);
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            let spawned = Instant::now();
            let child = cmd.spawn().map_err(err)?;
            let resp = http
                .post(emulator.invoke_url())
                .header("content-type", "application/json")
                .body(event.to_string())
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map_err(err)?;
            let status = resp.status().as_u16();
            let text = resp.text().await.map_err(err)?;
            times.push(spawned.elapsed());
            answer = format!("{status} {}", text.chars().take(60).collect::<String>());
            drop(child);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let _ = writeln!(
            table,
            "| {name} | {size} B ({:.2} MiB) | {:.1} ms | {:.1} ms | {:.1} ms | `{}` |",
            size as f64 / 1048576.0,
            ms(times[0]),
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1]),
            answer.replace('|', "\\\\|")
        );
    }
    Ok(table)
}
