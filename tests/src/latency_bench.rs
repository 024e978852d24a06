//! `hookvault-dev bench-latency`: how long a prediction takes from the provider's webhook
//! POST to its manifest in the archive, against the provider's 5-minute output window
//! (issue 22, item 3).
//!
//! The local stack: moto (SQS, S3), the edge in workerd, the archiver under `cargo lambda
//! watch` with `--concurrency` instances and the template's window settings
//! (`DOWNLOAD_RETRY_BUDGET_MS` 60 000, `MAX_RECEIVE_COUNT` 15, visibility 130 s, skytells'
//! 300 s retention), fed by [`Mapping`]: the event-source mapping at its steady state,
//! `max_concurrency` long-polling receives of `BatchSize` 1. The stand-in provider
//! completes predictions at a steady rate and POSTs each one's signed webhook (its own
//! shape, `predictions::prediction`) to the edge; every tenth output is a 25 MiB video,
//! the others 2 MiB images, and every tenth (another tenth) is on a CDN path that answers
//! 503 for the 20 s after completion (`/down-until/{ms}/…`).
//!
//! What is timed: from the instant just before the stand-in sends the POST (the wall
//! clock, milliseconds) to the instant moto stored `predictions/{id}/manifest.json`: the
//! `eventTime` of the bucket's `ObjectCreated` notification for that key (moto stamps it,
//! in milliseconds, right after the object is in the bucket, on the same clock), sent to
//! a queue of its own that the benchmark reads. Nothing is polled for the figure itself,
//! so the reading adds nothing to it. Inside the window: the manifest's time at most
//! `completed_at` + 300 s (the archiver's own `output_expires_at`).

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::lambda::{archiver_env, Build, LambdaFunction};
use crate::poller::{queue_arn, Mapping, MappingStats, Poller};
use crate::process::loadavg;
use crate::provider::keys::{sign, INITIAL_WEBHOOK_SECRET};
use crate::provider::predictions::prediction;
use crate::stack::LocalStack;
use crate::StackError;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};

/// The provider's output window (skytells: 300 s after completion).
pub const WINDOW_MS: i64 = 300_000;
const BUCKET: &str = "hookvault-latency";
const QUEUE: &str = "hookvault-latency-events";
const NOTIFY_QUEUE: &str = "hookvault-latency-manifests";

/// The benchmark's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Predictions completed per second, one run each.
    pub rates: Vec<f64>,
    /// Seconds of sending per rate.
    pub seconds: u64,
    /// The mapping's `MaximumConcurrency` (and the archiver's instances).
    pub max_concurrency: usize,
    /// Bytes of an image output.
    pub image_bytes: u64,
    /// Bytes of a video output.
    pub video_bytes: u64,
    /// How long the CDN answers 503 after completion, for the flaky tenth.
    pub outage_ms: i64,
    /// How the archiver is built: [`Build::Release`] is what Lambda runs (the figure the
    /// issue asks for); [`Build::Debug`] was the first runs' build, kept to compare.
    pub build: Build,
}

/// Nearest-rank percentiles of a set of latencies (milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// How many.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The largest.
    pub max: f64,
}

/// The `p`th percentile (0 < p ≤ 100) of `sorted` (ascending) by nearest rank: the
/// smallest value with at least p % of the values at or below it.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

impl Summary {
    /// The summary of `values`, `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Summary> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        Some(Summary {
            n: v.len(),
            p50: percentile(&v, 50.0)?,
            p95: percentile(&v, 95.0)?,
            p99: percentile(&v, 99.0)?,
            max: *v.last()?,
        })
    }
}

/// Unix milliseconds of an RFC 3339 UTC time as moto writes it
/// (`2026-12-06T01:02:03.456Z`; the fraction optional).
pub fn parse_utc_ms(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(str::parse::<i64>);
    let (h, mi, sec) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let ms = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        digits.parse::<i64>().ok()?
    };
    let days = hookvault_core::time::days_from_civil(y, m, day);
    Some((((days * 24 + h) * 60 + mi) * 60 + sec) * 1000 + ms)
}

/// A notification's object key as S3 encodes it (URL-encoded, `+` for a space; moto
/// also encodes `/`), decoded.
pub fn decode_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = key
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn err(e: impl std::fmt::Display) -> StackError {
    StackError::Start(format!("bench-latency: {e}"))
}

/// One prediction the stand-in completed.
#[derive(Debug, Clone)]
struct Sent {
    id: String,
    flaky: bool,
    video: bool,
    post_ms: i64,
    deadline_ms: i64,
    status: Option<u16>,
}

/// What became of a prediction: its manifest's or failure record's time.
#[derive(Debug, Clone, Copy)]
enum Done {
    Manifest(i64),
    Failure(i64),
}

type DoneMap = Arc<Mutex<HashMap<String, Done>>>;

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Sends manifest.json and failure.json's `ObjectCreated` events under `predictions/` to
/// the queue `arn`.
async fn notify_on_records(store: &aws_sdk_s3::Client, arn: &str) -> Result<(), StackError> {
    let rule =
        |name: FilterRuleName, value: &str| FilterRule::builder().name(name).value(value).build();
    let config = |id: &str, suffix: &str| {
        QueueConfiguration::builder()
            .id(id)
            .queue_arn(arn)
            .events(Event::from("s3:ObjectCreated:*"))
            .filter(
                NotificationConfigurationFilter::builder()
                    .key(
                        S3KeyFilter::builder()
                            .filter_rules(rule(FilterRuleName::Prefix, "predictions/"))
                            .filter_rules(rule(FilterRuleName::Suffix, suffix))
                            .build(),
                    )
                    .build(),
            )
            .build()
            .map_err(err)
    };
    store
        .put_bucket_notification_configuration()
        .bucket(BUCKET)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(config("manifests", "/manifest.json")?)
                .queue_configurations(config("failures", "/failure.json")?)
                .build(),
        )
        .send()
        .await
        .map_err(err)?;
    Ok(())
}

/// Reads the notification queue until aborted, noting each record's time.
fn spawn_collector(
    client: aws_sdk_sqs::Client,
    queue: String,
    done: DoneMap,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let resp = client
                .receive_message()
                .queue_url(&queue)
                .max_number_of_messages(10)
                .wait_time_seconds(20)
                .send()
                .await;
            let messages = match resp {
                Ok(r) => r.messages.unwrap_or_default(),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let mut handled = Vec::new();
            for m in &messages {
                let body: serde_json::Value = m
                    .body
                    .as_deref()
                    .and_then(|b| serde_json::from_str(b).ok())
                    .unwrap_or_default();
                for r in body["Records"].as_array().into_iter().flatten() {
                    let (Some(key), Some(at)) = (
                        r["s3"]["object"]["key"].as_str(),
                        r["eventTime"].as_str().and_then(parse_utc_ms),
                    ) else {
                        continue;
                    };
                    let key = decode_key(key);
                    let Some(rest) = key.strip_prefix("predictions/") else {
                        continue;
                    };
                    let entry = if let Some(id) = rest.strip_suffix("/manifest.json") {
                        (id.to_owned(), Done::Manifest(at))
                    } else if let Some(id) = rest.strip_suffix("/failure.json") {
                        (id.to_owned(), Done::Failure(at))
                    } else {
                        continue;
                    };
                    locked(&done).entry(entry.0).or_insert(entry.1);
                }
                if let Some(h) = &m.receipt_handle {
                    if let Ok(e) = aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(handled.len().to_string())
                        .receipt_handle(h)
                        .build()
                    {
                        handled.push(e);
                    }
                }
            }
            if !handled.is_empty() {
                let _ = client
                    .delete_message_batch()
                    .queue_url(&queue)
                    .set_entries(Some(handled))
                    .send()
                    .await;
            }
        }
    })
}

/// One signed, provider-shaped webhook for `id` with `output`, POSTed to `hook`; the
/// instant just before the POST, the output's deadline, and the edge's status.
async fn complete(
    http: &reqwest::Client,
    hook: &str,
    id: String,
    output: String,
    flaky: bool,
) -> Sent {
    let video = output.contains(".mp4");
    // completed_at, to the second, as the stand-in writes it: the window's start.
    let completed_s = hookvault_core::time::unix_now();
    let body = prediction(&id, "succeeded", &[output]);
    let mut req = http
        .post(hook)
        .header("content-type", "application/json")
        .body(body.clone());
    for (k, v) in sign(INITIAL_WEBHOOK_SECRET, &body) {
        req = req.header(k, v);
    }
    let post_ms = now_ms();
    let status = req.send().await.ok().map(|r| r.status().as_u16());
    Sent {
        id,
        flaky,
        video,
        post_ms,
        deadline_ms: completed_s * 1000 + WINDOW_MS,
        status,
    }
}

/// The output of prediction `i`: every tenth a video, every tenth (others) on a CDN down
/// for `outage_ms` from now.
fn output(o: &Options, cdn: &str, id: &str, i: u64) -> (String, bool) {
    let video = i % 10 == 5;
    let flaky = i % 10 == 0;
    let (name, size) = if video {
        (format!("{id}.mp4"), o.video_bytes)
    } else {
        (format!("{id}.png"), o.image_bytes)
    };
    let path = if flaky {
        format!("down-until/{}/{name}", now_ms() + o.outage_ms)
    } else {
        format!("files/{name}")
    };
    (format!("{cdn}/{path}?size={size}"), flaky)
}

/// True when the notification queue holds nothing, read or unread.
async fn drained(client: &aws_sdk_sqs::Client, queue: &str) -> bool {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let Ok(r) = client
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
    else {
        return false;
    };
    let attrs = r.attributes.unwrap_or_default();
    [
        A::ApproximateNumberOfMessages,
        A::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .all(|a| attrs.get(a).map(String::as_str) == Some("0"))
}

/// Waits until every accepted prediction in `sent` has a record, or each one's window
/// (and 15 s) is over and every notification sent by then has been read (a record read
/// late still counts by its own time), at most 2 minutes more.
async fn settle(sent: &[Sent], done: &DoneMap, notify: Option<(&aws_sdk_sqs::Client, &str)>) {
    let last = sent.iter().map(|s| s.deadline_ms).max().unwrap_or(0) + 15_000;
    loop {
        if now_ms() > last + 120_000 {
            return;
        }
        if now_ms() > last {
            match notify {
                Some((client, queue)) if !drained(client, queue).await => {}
                _ => return,
            }
        }
        let missing = {
            let d = locked(done);
            sent.iter()
                .filter(|s| s.status == Some(202) && !d.contains_key(&s.id))
                .count()
        };
        if missing == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One rate's rows.
struct RateResult {
    rate: f64,
    sent: usize,
    accepted: usize,
    rows: Vec<(String, Option<Summary>, usize, usize)>,
    load: (String, String),
    invocations: u64,
    /// Records reported failed, and receives or invocations that failed.
    failed: u64,
    errors: u64,
    /// Predictions with a failure record, and with no record at all.
    failures: usize,
    missing: usize,
    wall_s: f64,
}

fn secs(ms: f64) -> String {
    format!("{:.2}", ms / 1000.0)
}

fn table(results: &[RateResult], o: &Options) -> String {
    let mut out = format!(
        "provider POST -> manifest stored ({} s per rate; images {} MiB, every 10th a {} MiB video, every 10th on a CDN down {} s after completion; mapping: {} long-polling invocations at most, BatchSize 1; archiver: {} build)\n\n",
        o.seconds,
        o.image_bytes >> 20,
        o.video_bytes >> 20,
        o.outage_ms / 1000,
        o.max_concurrency,
        match o.build {
            Build::Release => "release",
            Build::Debug => "debug",
        }
    );
    out.push_str("| rate/s | predictions | class | archived | p50 s | p95 s | p99 s | max s | inside 300 s |\n|---|---|---|---|---|---|---|---|---|\n");
    for r in results {
        for (class, s, inside, n) in &r.rows {
            let share = if *n == 0 {
                "-".to_owned()
            } else {
                format!("{:.1} % ({inside}/{n})", 100.0 * *inside as f64 / *n as f64)
            };
            let (p50, p95, p99, max, archived) = match s {
                Some(s) => (secs(s.p50), secs(s.p95), secs(s.p99), secs(s.max), s.n),
                None => ("-".into(), "-".into(), "-".into(), "-".into(), 0),
            };
            out.push_str(&format!(
                "| {} | {}/{} accepted | {class} | {archived} | {p50} | {p95} | {p99} | {max} | {share} |\n",
                r.rate, r.accepted, r.sent
            ));
        }
    }
    out.push('\n');
    for r in results {
        out.push_str(&format!(
            "rate {}/s: load average {} before, {} after; {} invocations, {} records reported failed, {} failed receives or invokes; {} failure records, {} predictions with no record; {:.0} s from the first POST to the last record\n",
            r.rate, r.load.0, r.load.1, r.invocations, r.failed, r.errors, r.failures, r.missing, r.wall_s
        ));
    }
    let over = results.iter().find(|r| {
        r.rows
            .iter()
            .any(|(c, s, _, _)| c == "all" && s.as_ref().is_some_and(|s| s.p99 > 60_000.0))
    });
    out.push_str(&match over {
        Some(r) => format!("p99 of all predictions passes 60 s first at {}/s\n", r.rate),
        None => "p99 of all predictions stays within 60 s at every rate run\n".to_owned(),
    });
    out
}

/// Runs the benchmark: one stack, each rate in turn (the next once the previous one's
/// predictions all have a record or their windows are over). Returns the table.
pub async fn run(o: Options) -> Result<String, StackError> {
    // The edge keeps its own SQS and Retry-After settings (a deployment's, not the
    // tests' short ones).
    let stack = LocalStack::builder()
        .queue_with_dlq(QUEUE, 15)
        .queue(NOTIFY_QUEUE)
        .bucket(BUCKET)
        .edge_var("WEBHOOK_SECRETS", INITIAL_WEBHOOK_SECRET)
        .edge_own_defaults()
        .provider()
        .start()
        .await?;
    let (moto, sqs_client, store) = (&stack.moto, stack.sqs.clone(), &stack.s3);
    let queue = stack.queue_url()?.to_owned();
    let notify = stack.queue_named(NOTIFY_QUEUE)?.url.clone();
    notify_on_records(store, &queue_arn(&notify)).await?;
    let (edge, provider) = (stack.edge()?, stack.provider()?);
    // The template's window settings (infra/template.yaml), not the tests' short budget.
    let env = archiver_env(
        &moto.endpoint,
        BUCKET,
        &[
            ("DOWNLOAD_RETRY_BUDGET_MS", "60000"),
            ("MAX_RECEIVE_COUNT", "15"),
            ("OUTPUT_RETENTION_SECS", "skytells:300,*:3600"),
            ("RUST_LOG", "warn"),
        ],
    );
    println!(
        "starting the archiver under `cargo lambda watch --concurrency {}{}`…",
        o.max_concurrency,
        if o.build == Build::Release {
            " --release"
        } else {
            ""
        }
    );
    let archiver = Arc::new(
        LambdaFunction::start_built(
            "functions/archiver",
            "archiver",
            &env,
            u32::try_from(o.max_concurrency).unwrap_or(u32::MAX),
            o.build,
        )
        .await?,
    );
    let done: DoneMap = Arc::default();
    let collector = spawn_collector(sqs_client.clone(), notify.clone(), Arc::clone(&done));
    let stats = Arc::new(MappingStats::default());
    let mapping = Mapping {
        poller: Poller {
            queue_url: queue,
            batch_size: 1,
            visibility_timeout: 130,
        },
        max_concurrency: o.max_concurrency,
        wait_time_seconds: 20,
    };
    let pollers = mapping.spawn(&sqs_client, &archiver, &stats);
    let http = reqwest::Client::new();
    let hook = format!("{}/webhooks/skytells", edge.url);

    // Warm-up, not measured: every instance started (the first invoke also waits for the
    // emulator's build).
    println!("warming up {} archiver instances…", o.max_concurrency);
    let mut warm = tokio::task::JoinSet::new();
    for i in 0..o.max_concurrency {
        let id = format!("pred_warm_{i:04}");
        let url = format!("{}/files/{id}.png?size=1024", provider.url);
        let (http, hook) = (http.clone(), hook.clone());
        warm.spawn(async move { complete(&http, &hook, id, url, false).await });
    }
    let warmed: Vec<Sent> = warm.join_all().await;
    tokio::time::timeout(Duration::from_secs(600), settle(&warmed, &done, None))
        .await
        .map_err(|_| err("the warm-up did not finish in 10 minutes"))?;

    let mut results = Vec::new();
    for (r, &rate) in o.rates.iter().enumerate() {
        let rate = if rate > 0.0 { rate } else { 1.0 };
        let n = (rate * o.seconds as f64).round().max(1.0) as u64;
        let load_before = loadavg();
        let invocations_before = stats.invocations.load(Relaxed);
        let failed_before = stats.failed.load(Relaxed);
        let errors_before = stats.errors.load(Relaxed);
        println!(
            "rate {rate}/s: {n} predictions over {} s (load average {load_before})…",
            o.seconds
        );
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        let mut sends = tokio::task::JoinSet::new();
        let start = now_ms();
        for i in 0..n {
            ticker.tick().await;
            let id = format!("pred_lat_{r}_{i:06}");
            let (url, flaky) = output(&o, &provider.url, &id, i);
            let (http, hook) = (http.clone(), hook.clone());
            sends.spawn(async move { complete(&http, &hook, id, url, flaky).await });
        }
        let sent: Vec<Sent> = sends.join_all().await;
        settle(&sent, &done, Some((&sqs_client, &notify))).await;
        let d = locked(&done).clone();
        let last = sent
            .iter()
            .filter_map(|s| match d.get(&s.id) {
                Some(Done::Manifest(t) | Done::Failure(t)) => Some(*t),
                None => None,
            })
            .max()
            .unwrap_or(start);
        let class_row = |name: &str, pick: &dyn Fn(&Sent) -> bool| {
            let chosen: Vec<&Sent> = sent.iter().filter(|s| pick(s)).collect();
            let mut lat = Vec::new();
            let mut inside = 0;
            for s in &chosen {
                if let Some(Done::Manifest(t)) = d.get(&s.id) {
                    lat.push((t - s.post_ms) as f64);
                    if *t <= s.deadline_ms {
                        inside += 1;
                    }
                }
            }
            (name.to_owned(), Summary::of(&lat), inside, chosen.len())
        };
        let rows = vec![
            class_row("healthy CDN", &|s: &Sent| !s.flaky),
            class_row("- of which videos", &|s: &Sent| !s.flaky && s.video),
            class_row("CDN down 20 s", &|s: &Sent| s.flaky),
            class_row("all", &|_: &Sent| true),
        ];
        let result = RateResult {
            rate,
            sent: sent.len(),
            accepted: sent.iter().filter(|s| s.status == Some(202)).count(),
            rows,
            load: (load_before, loadavg()),
            invocations: stats.invocations.load(Relaxed) - invocations_before,
            failed: stats.failed.load(Relaxed) - failed_before,
            errors: stats.errors.load(Relaxed) - errors_before,
            failures: sent
                .iter()
                .filter(|s| matches!(d.get(&s.id), Some(Done::Failure(_))))
                .count(),
            missing: sent.iter().filter(|s| !d.contains_key(&s.id)).count(),
            wall_s: (last - start) as f64 / 1000.0,
        };
        println!("{}", table(std::slice::from_ref(&result), &o));
        results.push(result);
    }
    drop(pollers);
    collector.abort();
    Ok(table(&results, &o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&v).unwrap();
        assert_eq!(
            (s.n, s.p50, s.p95, s.p99, s.max),
            (100, 50.0, 95.0, 99.0, 100.0)
        );
        // Unsorted input, fewer values than 100: p99 is the largest.
        let s = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.p50, s.p95, s.p99, s.max), (2.0, 3.0, 3.0, 3.0));
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(percentile(&[7.0], 1.0), Some(7.0));
    }

    #[test]
    fn motos_event_times() {
        assert_eq!(parse_utc_ms("1970-01-01T00:00:01.250Z"), Some(1250));
        assert_eq!(
            parse_utc_ms("2026-12-06T01:02:03.456Z"),
            Some(hookvault_core::time::days_from_civil(2026, 12, 6) * 86_400_000 + 3_723_456)
        );
        assert_eq!(
            parse_utc_ms("2026-12-06T01:02:03Z").map(|t| t % 1000),
            Some(0)
        );
        assert_eq!(parse_utc_ms("garbage"), None);
        assert_eq!(
            decode_key("predictions%2Fpred_1%2Fmanifest.json"),
            "predictions/pred_1/manifest.json"
        );
        assert_eq!(decode_key("a+b%zz%4"), "a b%zz%4");
    }
}
