//! The edge's load benchmark: the Rust Worker and the JavaScript/WebCrypto baseline
//! (`edge/bench/js-worker.mjs`) in the same workerd build, side by side in one run, under
//! `wrk` on loopback with signed 4 KiB webhooks.
//!
//! Routes, each for both Workers: `/healthz` (the runtime's floor), the probe
//! (verification alone, nothing queued), and the full webhook path (verify, envelope,
//! SigV4 `SendMessage`, 202) twice: to moto's SQS, which bounds both Workers alike (moto
//! is a Python server), and to an instant SQS sink (`sqs_sink`), where the Workers' own
//! cost of the whole path is what is measured.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::process::Command;

use crate::moto::Moto;
use crate::process::TempDir;
use crate::sqs_sink::SqsSink;
use crate::workerd::Edge;
use crate::{paths, sqs, StackError};

/// One wrk run's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Requests per second.
    pub rps: f64,
    /// Median latency as wrk prints it.
    pub p50: String,
    /// 99th percentile latency as wrk prints it.
    pub p99: String,
    /// Non-2xx answers.
    pub non_2xx: u64,
    /// Requests in all.
    pub requests: u64,
    /// The Worker's workerd process's CPU time per request, µs (all its threads: the
    /// Worker, the HTTP server, the console log), where it could be read.
    pub cpu_us: Option<f64>,
}

/// Parses wrk's summary.
pub fn parse_wrk(out: &str) -> Option<Figures> {
    let rps = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    let percentile = |p: &str| {
        out.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(p))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| "?".to_owned())
    };
    let (p50, p99) = (percentile("50%"), percentile("99%"));
    let non_2xx = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let requests = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(Figures {
        rps,
        p50,
        p99,
        non_2xx,
        requests,
        cpu_us: None,
    })
}

fn lua_str(s: &str) -> String {
    format!("{s:?}")
}

/// A signed 4 KiB Skytells webhook body and its signature header value.
pub fn webhook_4k(secret: &str) -> (Vec<u8>, String) {
    let head = r#"{"id":"pred_bench","status":"succeeded","model":"m","output":["https://cdn.skytells.ai/pred_bench/0.png"],"padding":""#;
    let mut body = head.to_owned();
    while body.len() < 4096 - 2 {
        body.push('x');
    }
    body.push_str("\"}");
    let headers = hookvault_core::Scheme::Skytells
        .sign(secret.as_bytes(), body.as_bytes(), &Default::default())
        .unwrap_or_default();
    let sig = headers
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .unwrap_or_default();
    (body.into_bytes(), sig)
}

/// wrk against `worker`'s `path`, with workerd's CPU time per request.
async fn wrk_worker(
    worker: &Edge,
    path: &str,
    script: Option<&std::path::Path>,
    seconds: u32,
    connections: u32,
) -> Result<Figures, StackError> {
    let before = worker.cpu_seconds();
    let mut f = wrk(
        &format!("{}{path}", worker.url),
        script,
        seconds,
        connections,
    )
    .await?;
    if let (Some(b), Some(a)) = (before, worker.cpu_seconds()) {
        f.cpu_us = (f.requests > 0).then(|| (a - b) * 1e6 / f.requests as f64);
    }
    Ok(f)
}

async fn wrk(
    url: &str,
    script: Option<&std::path::Path>,
    seconds: u32,
    connections: u32,
) -> Result<Figures, StackError> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    let out =
        cmd.arg(url).output().await.map_err(|e| {
            StackError::Start(format!("wrk: {e} (scripts/bench-edge.sh installs it)"))
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_wrk(&text).ok_or_else(|| StackError::Start(format!("unreadable wrk output:\n{text}")))
}

/// The run with the median rate among `runs` (the upper median for an even count).
pub fn median(runs: &[Figures]) -> Option<&Figures> {
    let mut sorted: Vec<&Figures> = runs.iter().collect();
    sorted.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    sorted.get(sorted.len() / 2).copied()
}

/// The median of the runs' CPU time per request, µs.
pub fn median_cpu(runs: &[Figures]) -> Option<f64> {
    let mut cpu: Vec<f64> = runs.iter().filter_map(|f| f.cpu_us).collect();
    cpu.sort_by(f64::total_cmp);
    cpu.get(cpu.len() / 2).copied()
}

/// The Rust edge and its peer, both sending to the SQS at `endpoint`: the JavaScript
/// baseline, or, with `baseline`, the Rust edge as built into that folder (another
/// commit's `edge/build`: the same run compares two builds).
async fn both_workers(
    endpoint: &str,
    queue_url: &str,
    secret: &str,
    baseline: Option<&Path>,
) -> Result<(Edge, Edge), StackError> {
    let bindings = crate::workerd::local_bindings(
        endpoint,
        queue_url,
        &[("WEBHOOK_SECRETS", secret.to_owned())],
    );
    let rust = Edge::start(&bindings, None).await?;
    let peer = match baseline {
        Some(dir) => {
            Edge::start_modules(dir, crate::workerd::RUST_EDGE_MODULES, &bindings, None).await?
        }
        None => {
            // The baseline and the aws4fetch it imports (pinned in edge/package.json,
            // installed by `npm ci` in edge/), side by side as workerd loads modules.
            let dir = TempDir::new("js-worker")?;
            std::fs::copy(
                paths::root().join("edge/bench/js-worker.mjs"),
                dir.0.join("js-worker.mjs"),
            )?;
            std::fs::copy(
                paths::root().join("edge/node_modules/aws4fetch/dist/aws4fetch.esm.mjs"),
                dir.0.join("aws4fetch.mjs"),
            )
            .map_err(|e| {
                StackError::Start(format!(
                    "edge/node_modules/aws4fetch ({e}): run `npm ci` in edge/ (scripts/bench-edge.sh does)"
                ))
            })?;
            Edge::start_modules(
                &dir.0,
                &[("js-worker.mjs", "esModule"), ("aws4fetch.mjs", "esModule")],
                &bindings,
                None,
            )
            .await?
        }
    };
    Ok((rust, peer))
}

/// The benchmark's routes, by the names `--routes` takes.
/// `floor` is the floor probes: small JavaScript Workers that show where the runtime's
/// per-request floor comes from.
pub const ROUTES: [&str; 5] = ["healthz", "probe", "moto", "sink", "floor"];

/// Runs the benchmark: for each route named in `routes` (all of [`ROUTES`] when empty),
/// `rounds` rounds of Rust then its peer (the JavaScript baseline, or the Rust edge built
/// into `baseline`), one after the other (a busy moment hits both, not one), each figure
/// the median round. Returns a Markdown table.
pub async fn run(
    seconds: u32,
    connections: u32,
    rounds: usize,
    routes: &[String],
    baseline: Option<&Path>,
) -> Result<String, StackError> {
    if let Some(unknown) = routes.iter().find(|r| !ROUTES.contains(&r.as_str())) {
        return Err(StackError::Start(format!(
            "unknown route {unknown:?}: --routes takes {}",
            ROUTES.join(",")
        )));
    }
    let wanted = |name: &str| routes.is_empty() || routes.iter().any(|r| r == name);
    let secret = "bench-webhook-secret";
    let moto = Moto::start(None).await?;
    let client = sqs::client(&moto.endpoint);
    let queue = sqs::create_queue(&client, "bench").await?;
    let (rust, js) = both_workers(&moto.endpoint, &queue, secret, baseline).await?;
    let sink = SqsSink::start().await?;
    let (rust_sink, js_sink) = both_workers(
        sink.endpoint.trim_end_matches('/'),
        &sink.queue_url(),
        secret,
        baseline,
    )
    .await?;

    let dir = TempDir::new("bench")?;
    let (body, sig) = webhook_4k(secret);
    let script = dir.0.join("post.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = {}\nwrk.headers[\"content-type\"] = \"application/json\"\nwrk.headers[\"x-skytells-signature\"] = {}\n",
            lua_str(&String::from_utf8_lossy(&body)),
            lua_str(&sig)
        ),
    )?;

    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let peer_name = match baseline {
        Some(_) => "Rust (baseline build)",
        None => "JavaScript (WebCrypto)",
    };
    let peer_short = if baseline.is_some() { "baseline" } else { "JS" };
    let mut table = format!(
        "wrk -t2 -c{connections} -d{seconds}s, signed 4 KiB webhook, compatibility date {} (Unix time {stamp}); {rounds} rounds, Rust and {peer_name} alternating; req/s, p50 and p99 from the median round, non-2xx and requests over all rounds; workerd CPU per request the median of the rounds\n\n| route | Worker | req/s | req/s, every round | p50 | p99 | non-2xx | requests | workerd CPU µs/req | req/s: Rust / {peer_short} | CPU/req: {peer_short} / Rust |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
        crate::workerd::COMPATIBILITY_DATE
    );
    let post = Some(script.as_path());
    for (name, route, path, script, (rust, js)) in [
        (
            "healthz",
            "GET /healthz (runtime floor)",
            "/healthz",
            None,
            (&rust, &js),
        ),
        (
            "probe",
            "probe (verify only)",
            "/_hookvault/probe",
            post,
            (&rust, &js),
        ),
        (
            "moto",
            "webhook (verify + SQS: moto)",
            "/webhooks/skytells",
            post,
            (&rust, &js),
        ),
        (
            "sink",
            "webhook (verify + SQS: instant sink)",
            "/webhooks/skytells",
            post,
            (&rust_sink, &js_sink),
        ),
    ] {
        if !wanted(name) {
            continue;
        }
        let (mut rs, mut js_runs) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            for (worker, runs) in [(rust, &mut rs), (js, &mut js_runs)] {
                // Every run starts on an empty queue: moto slows down as its queue fills.
                sqs::purge(&client, &queue).await?;
                runs.push(wrk_worker(worker, path, script, seconds, connections).await?);
            }
        }
        let (Some(r), Some(j)) = (median(&rs), median(&js_runs)) else {
            continue;
        };
        let (r_cpu, j_cpu) = (median_cpu(&rs), median_cpu(&js_runs));
        let ratio = format!("**{:.2}×**", r.rps / j.rps);
        let cpu_ratio = match (r_cpu, j_cpu) {
            (Some(r), Some(j)) => format!("**{:.2}×**", j / r),
            _ => "?".to_owned(),
        };
        for (name, f, all, cpu, ratio, cpu_ratio) in [
            (
                "Rust (hookvault-edge)",
                r,
                &rs,
                r_cpu,
                ratio.as_str(),
                cpu_ratio.as_str(),
            ),
            (peer_name, j, &js_runs, j_cpu, "", ""),
        ] {
            let rates: Vec<String> = all.iter().map(|f| format!("{:.0}", f.rps)).collect();
            let non_2xx: u64 = all.iter().map(|f| f.non_2xx).sum();
            let requests: u64 = all.iter().map(|f| f.requests).sum();
            let cpu = cpu.map_or_else(|| "?".to_owned(), |c| format!("{c:.0}"));
            let _ = writeln!(
                table,
                "| {route} | {name} | {:.0} | {} | {} | {} | {non_2xx} | {requests} | {cpu} | {ratio} | {cpu_ratio} |",
                f.rps,
                rates.join(", "),
                f.p50,
                f.p99,
            );
        }
    }
    if wanted("sink") {
        let _ = writeln!(
            table,
            "\nThe sink accepted {} messages (wrk counts only the answers that arrived before it stopped).",
            sink.accepted()
        );
    }
    if !wanted("floor") {
        return Ok(table);
    }
    // Where the floor comes from: the cheapest JavaScript Worker; the same one behind the
    // class-and-Proxy pattern of worker-build's shim (which edge/entry.mjs avoids); and
    // the two ways wasm-bindgen's executor can schedule a wake.
    let _ = writeln!(
        table,
        "\n| floor probe (GET, no work) | req/s | p50 | p99 |\n|---|---|---|---|"
    );
    for (name, file) in [
        ("plain JS module", "floor-plain.mjs"),
        ("JS behind worker-build's shim pattern", "floor-shim.mjs"),
        (
            "plain, + 20 queueMicrotask per request",
            "floor-microtask.mjs",
        ),
        ("plain, + 20 Promise.then per request", "floor-then.mjs"),
    ] {
        let w = Edge::start_modules(
            &paths::root().join("edge/bench"),
            &[(file, "esModule")],
            &[],
            None,
        )
        .await?;
        let f = wrk(&format!("{}/", w.url), None, seconds, connections).await?;
        let _ = writeln!(table, "| {name} | {:.0} | {} | {} |", f.rps, f.p50, f.p99);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let out = "Running 10s test @ http://127.0.0.1:1/\n  2 threads and 50 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     3.10ms    1.00ms  20.00ms   90.00%\n  Latency Distribution\n     50%    2.90ms\n     75%    3.50ms\n     90%    4.00ms\n     99%    9.10ms\n  160000 requests in 10.00s, 20.00MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:  16000.50\nTransfer/sec:      2.00MB\n";
        let f = parse_wrk(out).unwrap();
        let want = Figures {
            rps: 16000.5,
            p50: "2.90ms".into(),
            p99: "9.10ms".into(),
            non_2xx: 3,
            requests: 160000,
            cpu_us: None,
        };
        assert_eq!(f, want);
    }

    #[test]
    fn the_median_round_is_the_middle_rate() {
        let f = |rps| Figures {
            rps,
            p50: String::new(),
            p99: String::new(),
            non_2xx: 0,
            requests: 0,
            cpu_us: None,
        };
        assert_eq!(median(&[f(3.0), f(1.0), f(2.0)]).map(|m| m.rps), Some(2.0));
        assert_eq!(median(&[f(1.0), f(4.0)]).map(|m| m.rps), Some(4.0));
        assert!(median(&[]).is_none());
    }

    #[test]
    fn the_median_cpu_skips_unread_rounds() {
        let f = |cpu_us| Figures {
            rps: 0.0,
            p50: String::new(),
            p99: String::new(),
            non_2xx: 0,
            requests: 0,
            cpu_us,
        };
        assert_eq!(
            median_cpu(&[f(Some(30.0)), f(None), f(Some(10.0)), f(Some(20.0))]),
            Some(20.0)
        );
        assert_eq!(median_cpu(&[f(None)]), None);
    }

    #[test]
    fn the_bench_body_is_4_kib_and_signed() {
        let (body, sig) = webhook_4k("s");
        assert_eq!(body.len(), 4096);
        assert!(hookvault_core::event::WebhookEvent::parse(&body).is_ok());
        // Bare lowercase hex, as the provider's SDK signs.
        assert!(sig.len() == 64 && sig.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
    }
}
