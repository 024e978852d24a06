//! `hookvault-dev`: the local pipeline for the README's demo command.
//!
//! `hookvault-dev demo` runs the whole pipeline locally: moto (SQS, S3, Secrets
//! Manager), the edge in workerd, the stand-in provider, and the api, archiver and
//! rotator Lambdas under `cargo lambda watch`. It sends signed webhooks through the edge,
//! submits a prediction through the api and follows it into the archive, then rotates the
//! webhook secret while the provider keeps sending.
//! `hookvault-dev demo --serve` then keeps the stack up until Ctrl-C.
//! `hookvault-dev bench-edge` runs the edge's load benchmark (see `edge_bench`);
//! `hookvault-dev bench-archiver` the archiver's (see `archiver_bench`);
//! `hookvault-dev bench-start` the three Lambdas' start-to-ready (see `start_bench`);
//! `hookvault-dev serve` keeps a live local pipeline up until Ctrl-C (see `live`);
//! `hookvault-dev drill [--yes] [--serve]` runs the operations runbook (see `drill`);
//! `hookvault-dev bench-latency` times provider POST → manifest against the output
//! window (see `latency_bench`);
//! `hookvault-dev soak [--n N] [--rate R] …` sends N signed webhooks through the live
//! local stack while faults are injected, and prints what was lost (see `soak`);
//! `hookvault-dev sqs-sink` runs the edge benchmark's instant SQS sink alone (for
//! `scripts/profile-edge.sh webhook`).
#![allow(clippy::print_stdout)]

use hookvault_localstack::latency_bench;
use hookvault_localstack::soak;

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use hookvault_core::envelope::{Body, Envelope};
use hookvault_core::scheme::SignParams;
use hookvault_core::Scheme;
use hookvault_localstack::api::CALLER_KEY;
use hookvault_localstack::poller::Poller;
use hookvault_localstack::provider::keys::{send_signed, webhook_body, INITIAL_WEBHOOK_SECRET};
use hookvault_localstack::rotation::{Options, RotationStack, WEBHOOK_SECRET_ID};
use hookvault_localstack::{s3, sqs, StackError};

/// The demo edge's current secret: the one the stand-in provider signs with.
const CURRENT: &str = INITIAL_WEBHOOK_SECRET;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn step(s: &str) {
    println!("\n\x1b[1m== {s}\x1b[0m");
}

fn sign(secret: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    Scheme::Skytells
        .sign(secret.as_bytes(), body, &SignParams::default())
        .unwrap_or_default()
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<(u16, String), StackError> {
    let mut req = http.post(url).body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| StackError::Start(e.to_string()))?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.unwrap_or_default()))
}

async fn demo(serve: bool) -> Result<(), StackError> {
    step("Starting the local stack: moto (SQS, S3) and the edge in workerd");
    // The same stack as `hookvault-dev serve` (`live::builder`): moto on 4566 and the
    // edge on 8787 when free (where `wrangler dev --env local` looks), the queue with its
    // DLQ, the archive bucket (the edge writes bodies too large for one SQS message to its
    // raw/ prefix, the claim check, before it queues them), the provider for step 7.
    use hookvault_localstack::live;
    let t = now();
    let ring = serde_json::json!([
        { "id": "2026-11", "secret": CURRENT, "slot": "current" },
        { "id": "2026-08", "secret": "demo-previous-secret", "slot": "previous", "not_after": t + 600 },
    ]);
    let stack = live::builder()?
        .edge_var("WEBHOOK_SECRETS", ring.to_string())
        .start()
        .await?;
    let (moto, client, store) = (&stack.moto, &stack.sqs, &stack.s3);
    let (edge, provider) = (stack.edge()?, stack.provider()?);
    let queue = stack.queue_url()?.to_owned();
    println!(
        "moto:  {}\nqueue: {queue}\nedge:  {}",
        moto.endpoint, edge.url
    );
    let http = reqwest::Client::new();
    let hook = format!("{}/webhooks/skytells", edge.url);
    let body = br#"{"type":"prediction.completed","data":{"id":"pred_demo_1","status":"succeeded","model":"stable-video-6s","output":["https://cdn.skytells.ai/out/pred_demo_1/video.mp4"]}}"#;

    step("1. The provider POSTs a signed webhook: the edge verifies it and queues it (202 only once SQS took it)");
    let (status, text) = post(&http, &hook, &sign(CURRENT, body), body).await?;
    println!("HTTP {status} {text}");

    step("2. On the queue: the versioned envelope, the body byte for byte");
    for m in sqs::drain(client, &queue).await? {
        let raw = m.body.unwrap_or_default();
        match Envelope::from_json(&raw) {
            Ok(env) => println!(
                "v{} event_id={} key={} ({}) body_sha256={} body={}",
                env.v,
                env.event_id,
                env.key_id,
                env.key_slot.as_str(),
                env.body_sha256,
                match &env.body {
                    Body::Inline(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    Body::S3(o) => format!("(claim check s3://{}/{})", o.bucket, o.key),
                }
            ),
            Err(e) => println!("unreadable message: {e}"),
        }
    }

    step("3. A forged webhook (wrong secret) and a tampered body are refused; nothing is queued");
    let (status, text) = post(&http, &hook, &sign("attacker-guess", body), body).await?;
    println!("HTTP {status} {text}");
    let mut tampered = body.to_vec();
    tampered.extend_from_slice(b" ");
    let (status, text) = post(&http, &hook, &sign(CURRENT, body), &tampered).await?;
    println!("HTTP {status} {text}");
    println!(
        "queued: {} message(s)",
        sqs::drain(client, &queue).await?.len()
    );

    step("4. Mid-rotation, the previous secret is still accepted until its not-after time");
    let (status, text) = post(&http, &hook, &sign("demo-previous-secret", body), body).await?;
    println!("HTTP {status} {text}");
    sqs::drain(client, &queue).await?;

    step("5. The rotator's probe: proves a key is accepted without queueing anything");
    let probe = format!("{}/_hookvault/probe", edge.url);
    let (status, _) = post(&http, &probe, &sign(CURRENT, b"probe"), b"probe").await?;
    println!("HTTP {status}");

    step("6. The edge's log: one JSON line per request, no secrets");
    for line in edge
        .logs()
        .lines()
        .filter(|l| l.contains(r#""msg":"request""#) && !l.contains("/healthz"))
    {
        println!("{}", line.find('{').map(|i| &line[i..]).unwrap_or(line));
    }

    step("7. The team's app submits a prediction through the api Lambda (a Function URL under cargo-lambda's emulator)");
    // The stand-in provider completes each prediction a moment later: a signed webhook
    // to the edge, with two outputs on its CDN (12 MiB and 40 kB).
    provider.with(|s| s.predictions.complete_with = Some((2, 12 * 1024 * 1024)));
    println!("starting `cargo lambda watch` for functions/api and functions/archiver…");
    let api = stack.start_api(&[], 1).await?;
    let archiver = live::start_archiver(&stack).await?;
    let submit = http
        .post(format!("{}/predictions", api.function_url))
        .bearer_auth(CALLER_KEY)
        .header("content-type", "application/json")
        .body(r#"{"model_id":"stable-video-6s","inputs":{"prompt":"A drone shot over a mountain lake at dawn"}}"#)
        .send()
        .await
        .map_err(|e| StackError::Start(e.to_string()))?;
    let status = submit.status().as_u16();
    let created: serde_json::Value =
        serde_json::from_str(&submit.text().await.unwrap_or_default()).unwrap_or_default();
    println!("POST /predictions → HTTP {status} {created}");
    let id = created["id"].as_str().unwrap_or("pred_1").to_owned();
    let unauthenticated = http
        .post(format!("{}/predictions", api.function_url))
        .body("{}")
        .send()
        .await
        .map_err(|e| StackError::Start(e.to_string()))?;
    println!(
        "the same without a caller key → HTTP {}",
        unauthenticated.status().as_u16()
    );

    step("8. The provider's webhook → edge → SQS → the archiver Lambda (a poller plays the event-source mapping) → S3: the raw event, output.json, the outputs, the manifest last");
    let poller = Poller {
        queue_url: queue.clone(),
        batch_size: 10,
        visibility_timeout: 30,
    };
    let started = std::time::Instant::now();
    let manifest_key = format!("predictions/{id}/manifest.json");
    loop {
        let poll = poller.poll(client, &archiver).await?;
        if poll.delivered > 0 {
            println!(
                "poller: delivered {}, deleted {}, failed {}",
                poll.delivered, poll.deleted, poll.failed
            );
        }
        if s3::get(store, live::BUCKET, &manifest_key).await?.is_some() {
            break;
        }
        if started.elapsed() > std::time::Duration::from_secs(300) {
            return Err(StackError::Start(format!(
                "not archived in time:\n{}",
                archiver.logs()
            )));
        }
    }
    for prefix in [format!("predictions/{id}/"), "events/".to_owned()] {
        for key in s3::keys(store, live::BUCKET, &prefix).await? {
            println!("s3://hookvault-archive/{key}");
        }
    }

    step("9. The app reads the archive status through the api: outputs with presigned S3 URLs");
    let got = http
        .get(format!("{}/predictions/{id}", api.function_url))
        .bearer_auth(CALLER_KEY)
        .send()
        .await
        .map_err(|e| StackError::Start(e.to_string()))?
        .text()
        .await
        .unwrap_or_default();
    let got: serde_json::Value = serde_json::from_str(&got).unwrap_or_default();
    println!("{}", serde_json::to_string_pretty(&got).unwrap_or_default());

    step("10. Rotation: Secrets Manager's RotateSecret runs the rotator Lambda; webhooks keep flowing");
    println!("starting a rotation stack: moto, the edge behind a stand-in Cloudflare API, the rotator (old secret's grace shortened to 15 s)…");
    let rot = RotationStack::start(Options {
        webhook_grace_secs: 15,
        ..Options::default()
    })
    .await?;
    let rhook = format!("{}/webhooks/skytells", rot.edge.url);
    let token = rot.rotate(WEBHOOK_SECRET_ID).await?;
    println!("RotateSecret → new version {token}; createSecret, setSecret, testSecret, finishSecret run…");
    let mut n = 0;
    while rot
        .stages(WEBHOOK_SECRET_ID)
        .await?
        .get(&token)
        .is_none_or(|s| !s.iter().any(|x| x == "AWSCURRENT"))
    {
        n += 1;
        let status = rot
            .provider
            .deliver(&rhook, &webhook_body(&format!("pred_rot_{n}")))
            .await;
        if status != Some(202) {
            println!("webhook during the rotation answered {status:?}");
        }
        if n > 2000 {
            return Err(StackError::Start(format!(
                "rotation did not finish:\n{}",
                rot.logs().await
            )));
        }
    }
    println!("rotation finished; {n} webhooks sent by the provider during it, all accepted");
    let new_secret = rot.provider.webhook_secret();
    let old_ok = send_signed(
        &rhook,
        &webhook_body("pred_rot_old"),
        INITIAL_WEBHOOK_SECRET,
    )
    .await;
    let new_ok = send_signed(&rhook, &webhook_body("pred_rot_new"), &new_secret).await;
    println!("signed with the old secret → {old_ok:?}; with the new one → {new_ok:?}");
    println!("waiting 16 s for the old secret's grace to end…");
    tokio::time::sleep(std::time::Duration::from_secs(16)).await;
    let old_ok = send_signed(
        &rhook,
        &webhook_body("pred_rot_old_2"),
        INITIAL_WEBHOOK_SECRET,
    )
    .await;
    let new_ok = send_signed(&rhook, &webhook_body("pred_rot_new_2"), &new_secret).await;
    println!("signed with the old secret → {old_ok:?}; with the new one → {new_ok:?}");

    if serve {
        step("The stack stays up, live: the poller keeps feeding the archiver");
        drop(rot);
        live::keep_serving(
            client.clone(),
            archiver,
            &live::target(&stack)?,
            &edge.url,
            &provider.url,
            CURRENT,
            Some(&api.function_url),
        )
        .await?;
    }
    Ok(())
}

/// Runs the benchmark's instant SQS sink until Ctrl-C or SIGTERM, for
/// `scripts/profile-edge.sh webhook`: prints its endpoint, then the messages it accepted.
async fn sqs_sink() -> Result<String, StackError> {
    let sink = hookvault_localstack::sqs_sink::SqsSink::start().await?;
    println!("{}", sink.endpoint);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(format!("the sink accepted {} messages", sink.accepted()))
}

/// Runs `command` until it ends or a signal stops it (Ctrl-C, SIGTERM, or SIGHUP when the
/// terminal closes). On a signal the command's future is dropped, and with it every
/// service it started: each leads its own process group, which its drop kills, so nothing
/// is left behind whatever step the command was at (the default action of SIGINT would
/// end this process without running a drop, leaving moto, workerd and `cargo lambda
/// watch` behind).
///
/// A signal is how a serving command (`serve`, `--serve`) ends, so it exits 0 then;
/// anything else stopped by one (a drill, a benchmark) did not finish, and exits 1.
async fn stoppable(
    serving: bool,
    command: impl std::future::Future<Output = Result<String, StackError>>,
) -> Result<String, StackError> {
    tokio::select! {
        done = command => return done,
        stopped = hookvault_localstack::live::until_stopped() => stopped?,
    }
    let stopped = "stopped: every process of the stack is gone";
    if serving {
        Ok(stopped.to_owned())
    } else {
        println!("{stopped}");
        Err(StackError::Start(
            "interrupted by a signal before the end".to_owned(),
        ))
    }
}

/// The value after `name` in `args`, parsed; `None` when absent or unreadable.
fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1)?.parse().ok()
}

/// `hookvault-dev soak`: the table, and a failure when anything was lost or archived
/// twice (the table is printed either way).
async fn soaked(o: soak::Options) -> Result<String, StackError> {
    let r = soak::run(o).await?;
    let table = r.table();
    if r.tally.lost == 0 && r.tally.duplicates == 0 {
        return Ok(table);
    }
    println!("{table}");
    Err(StackError::Start(format!(
        "soak: {} lost, {} duplicates",
        r.tally.lost, r.tally.duplicates
    )))
}

/// Prints a report, or the error; the exit code says which.
fn report(r: Result<String, StackError>) -> ExitCode {
    match r {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hookvault-dev: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hookvault-dev: no async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run());
    // Shutting down drops every task still spawned (a poller holding the archiver's
    // service, whose drop kills its process group), and leaves behind, after a second,
    // a blocking read of stdin nobody will finish (the drill's "press Enter" after a
    // Ctrl-C); a plain drop of the runtime would wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// The commands and their flags, as `--help` prints them.
const USAGE: &str = "hookvault-dev demo [--serve] | serve | drill [--yes] [--serve] | bench-edge [--seconds N] [--connections N] [--rounds N] [--routes healthz,probe,moto,sink,floor] [--baseline EDGE_BUILD_DIR] | sqs-sink | bench-claim-check [--mb N] [--seconds N] [--rounds N] [--connections N] | bench-archiver [--mib N] [--s3 moto|s3s-fs] [--sweep] | bench-start [--runs N] | bench-latency [--rates 2,10,25] [--seconds N] [--max-concurrency N] [--image-mib N] [--video-mib N] [--outage-secs N] [--debug-archiver] | soak [--n 2000] [--rate 3] [--concurrency 4] [--visibility-secs 20] [--sweep-secs 60] [--settle-secs 600] [--output-kib 8]";

/// Each command's flags, and whether each takes a value ([`USAGE`]'s).
const FLAGS: &[(&str, &[(&str, Value)])] = &[
    ("demo", &[("--serve", Value::None)]),
    ("serve", &[]),
    ("drill", &[("--yes", Value::None), ("--serve", Value::None)]),
    (
        "bench-edge",
        &[
            ("--seconds", Value::Number),
            ("--connections", Value::Number),
            ("--rounds", Value::Number),
            ("--routes", Value::Text),
            ("--baseline", Value::Text),
        ],
    ),
    ("sqs-sink", &[]),
    (
        "bench-claim-check",
        &[
            ("--mb", Value::Number),
            ("--seconds", Value::Number),
            ("--rounds", Value::Number),
            ("--connections", Value::Number),
        ],
    ),
    (
        "bench-archiver",
        &[
            ("--mib", Value::Number),
            ("--s3", Value::Text),
            ("--sweep", Value::None),
        ],
    ),
    ("bench-start", &[("--runs", Value::Number)]),
    (
        "bench-latency",
        &[
            ("--rates", Value::Numbers),
            ("--seconds", Value::Number),
            ("--max-concurrency", Value::Number),
            ("--image-mib", Value::Number),
            ("--video-mib", Value::Number),
            ("--outage-secs", Value::Number),
            ("--debug-archiver", Value::None),
        ],
    ),
    (
        "soak",
        &[
            ("--n", Value::Number),
            ("--rate", Value::Number),
            ("--concurrency", Value::Number),
            ("--visibility-secs", Value::Number),
            ("--sweep-secs", Value::Number),
            ("--settle-secs", Value::Number),
            ("--output-kib", Value::Number),
        ],
    ),
];

/// What a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    /// Nothing: a switch.
    None,
    /// A non-negative number.
    Number,
    /// Comma-separated non-negative numbers.
    Numbers,
    /// Any text.
    Text,
}

/// Checks `args` (the command, then its flags) against [`FLAGS`] before anything starts:
/// `Ok(true)` when `--help`/`-h` asks for the usage, `Err` naming an unknown command, an
/// unknown flag, or a missing or unreadable value (a command that runs for minutes must
/// not start on a typo, nor take a default in place of a value it could not read).
fn check_args(args: &[String]) -> Result<bool, String> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(true);
    }
    let Some(command) = args.first() else {
        return Err("no command".to_owned());
    };
    let Some((_, flags)) = FLAGS.iter().find(|(c, _)| c == command) else {
        return Err(format!("unknown command {command:?}"));
    };
    let mut rest = args[1..].iter();
    while let Some(a) = rest.next() {
        let Some((_, value)) = flags.iter().find(|(f, _)| f == a) else {
            return Err(format!("{command} has no flag {a:?}"));
        };
        if *value == Value::None {
            continue;
        }
        let Some(v) = rest.next() else {
            return Err(format!("{a} needs a value"));
        };
        let number = |n: &str| n.parse::<f64>().is_ok_and(|x| x >= 0.0 && x.is_finite());
        let readable = match value {
            Value::Number => number(v),
            Value::Numbers => v.split(',').all(number),
            Value::Text => !v.starts_with("--"),
            Value::None => true,
        };
        if !readable {
            return Err(format!("{a} cannot take {v:?}"));
        }
    }
    Ok(false)
}

async fn run() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match check_args(&args) {
        Ok(true) => {
            println!("usage: {USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(false) => {}
        Err(e) => {
            eprintln!("hookvault-dev: {e}\nusage: {USAGE}");
            return ExitCode::from(2);
        }
    }
    let serve = args.iter().any(|a| a == "--serve");
    let num = |flag: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let list = |flag: &str| -> Vec<String> {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.split(',').map(str::to_owned).collect())
            .unwrap_or_default()
    };
    match args.first().map(String::as_str) {
        Some("sqs-sink") => report(sqs_sink().await),
        Some("soak") => {
            let d = soak::Options::default();
            let o = soak::Options {
                n: flag(&args, "--n").unwrap_or(d.n),
                rate: flag(&args, "--rate").unwrap_or(d.rate),
                concurrency: flag(&args, "--concurrency").unwrap_or(d.concurrency).max(1),
                visibility_secs: flag(&args, "--visibility-secs").unwrap_or(d.visibility_secs),
                sweep_secs: flag(&args, "--sweep-secs").unwrap_or(d.sweep_secs).max(1),
                settle_secs: flag(&args, "--settle-secs").unwrap_or(d.settle_secs),
                output_bytes: flag(&args, "--output-kib").unwrap_or(d.output_bytes >> 10) << 10,
            };
            report(stoppable(false, soaked(o)).await)
        }
        Some("demo") => {
            report(stoppable(serve, async { demo(serve).await.map(|()| String::new()) }).await)
        }
        Some("serve") => report(stoppable(true, hookvault_localstack::live::serve()).await),
        Some("drill") => report(
            stoppable(
                serve,
                hookvault_localstack::drill::run(args.iter().any(|a| a == "--yes"), serve),
            )
            .await,
        ),
        Some("bench-archiver") => {
            let target = match args
                .iter()
                .position(|a| a == "--s3")
                .and_then(|i| args.get(i + 1))
                .map(String::as_str)
            {
                None | Some("moto") => hookvault_localstack::archiver_bench::Target::Moto,
                Some("s3s-fs") => hookvault_localstack::archiver_bench::Target::S3sFs,
                Some(other) => {
                    eprintln!("hookvault-dev: --s3 takes moto or s3s-fs, not {other:?}");
                    return ExitCode::from(2);
                }
            };
            report(
                stoppable(
                    false,
                    hookvault_localstack::archiver_bench::run(
                        num("--mib", 1024) * 1024 * 1024,
                        target,
                        args.iter().any(|a| a == "--sweep"),
                    ),
                )
                .await,
            )
        }
        Some("bench-claim-check") => report(
            stoppable(
                false,
                hookvault_localstack::claim_check_bench::run(
                    num("--mb", 5),
                    num("--seconds", 10),
                    num("--rounds", 3).max(1) as usize,
                    num("--connections", 2).max(1) as usize,
                ),
            )
            .await,
        ),
        Some("bench-start") => report(
            stoppable(
                false,
                hookvault_localstack::start_bench::run(num("--runs", 10) as usize),
            )
            .await,
        ),
        Some("bench-latency") => {
            let rates: Vec<f64> = match list("--rates") {
                r if r.is_empty() => vec![2.0, 10.0, 25.0],
                r => r.iter().filter_map(|v| v.parse().ok()).collect(),
            };
            report(
                stoppable(
                    false,
                    latency_bench::run(latency_bench::Options {
                        rates,
                        seconds: num("--seconds", 60).max(1),
                        max_concurrency: num("--max-concurrency", 32).max(1) as usize,
                        image_bytes: num("--image-mib", 2) << 20,
                        video_bytes: num("--video-mib", 25) << 20,
                        outage_ms: i64::try_from(num("--outage-secs", 20) * 1000).unwrap_or(20_000),
                        build: if args.iter().any(|a| a == "--debug-archiver") {
                            hookvault_localstack::lambda::Build::Debug
                        } else {
                            hookvault_localstack::lambda::Build::Release
                        },
                    }),
                )
                .await,
            )
        }
        Some("bench-edge") => report(
            stoppable(
                false,
                hookvault_localstack::edge_bench::run(
                    num("--seconds", 10) as u32,
                    num("--connections", 50) as u32,
                    num("--rounds", 3).max(1) as usize,
                    &list("--routes"),
                    args.iter()
                        .position(|a| a == "--baseline")
                        .and_then(|i| args.get(i + 1))
                        .map(std::path::Path::new),
                ),
            )
            .await,
        ),
        _ => {
            eprintln!("usage: {USAGE}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_args;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn help_is_asked_for_anywhere_and_nothing_starts() {
        assert_eq!(check_args(&args("soak --help")), Ok(true));
        assert_eq!(check_args(&args("-h")), Ok(true));
        assert_eq!(check_args(&args("bench-latency --rates 2 -h")), Ok(true));
    }

    #[test]
    fn every_documented_flag_is_taken() {
        for line in [
            "soak",
            "soak --n 60 --rate 1.5 --concurrency 4 --visibility-secs 20 --sweep-secs 60 --settle-secs 600 --output-kib 8",
            "bench-latency --rates 2,10,25 --seconds 60 --max-concurrency 40 --image-mib 2 --video-mib 25 --outage-secs 20 --debug-archiver",
            "bench-edge --seconds 10 --connections 50 --rounds 3 --routes sink,probe --baseline /tmp/edge-baseline",
            "bench-archiver --mib 1024 --s3 s3s-fs --sweep",
            "bench-claim-check --mb 5 --seconds 10 --rounds 3 --connections 2",
            "bench-start --runs 10",
            "drill --yes --serve",
            "demo --serve",
            "serve",
            "sqs-sink",
        ] {
            assert_eq!(check_args(&args(line)), Ok(false), "{line}");
        }
    }

    #[test]
    fn typos_and_unreadable_values_are_refused_before_anything_starts() {
        for (line, says) in [
            ("soak --n 2k", "--n cannot take \"2k\""),
            ("soak --nn 20", "soak has no flag \"--nn\""),
            ("soak --n", "--n needs a value"),
            ("soak --rate -1", "--rate cannot take \"-1\""),
            ("bench-latency --rates 2,x", "--rates cannot take \"2,x\""),
            (
                "bench-edge --baseline --rounds",
                "--baseline cannot take \"--rounds\"",
            ),
            ("soakk", "unknown command \"soakk\""),
            ("", "no command"),
        ] {
            assert_eq!(check_args(&args(line)), Err(says.to_owned()), "{line}");
        }
    }
}
