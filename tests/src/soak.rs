//! `hookvault-dev soak` (issue 24, item 5): N signed webhooks at a steady rate through the
//! live local stack while faults are injected on a schedule; at the end, what was lost
//! and what was archived twice.
//!
//! **The stack** ([`LocalStack::builder`]): moto with a versioned bucket (one version per
//! write, so a second manifest is countable, as the drill counts it) and the queue with
//! its DLQ after the template's 15 receives; the edge in workerd with its deployed
//! defaults (`SQS_TIMEOUT_MS` 5000, `RETRY_BUDGET_MS` 10000, `RETRY_AFTER_SECS` 10) and
//! the claim check and spool in the bucket; the stand-in CDN; the archiver under `cargo
//! lambda watch --concurrency C`, fed by [`Mapping`] (C long-polling receives of
//! `BatchSize` 1, visibility [`Options::visibility_secs`]); the drainer under `cargo
//! lambda watch`, invoked with each `spool/` object-created notification (moto sends them
//! to a queue of their own, read here: S3's delivery to Lambda) and a scheduled sweep
//! every [`Options::sweep_secs`] (the template's `rate(1 minute)`).
//!
//! **Where the faults go**: the edge, the archiver, the drainer and the event-source
//! mapping all reach SQS and S3 through a [`FaultProxy`] (their endpoint); the soak's own
//! reads go to moto directly. SQS refusing everything means refusing the edge's sends,
//! the drainer's, the mapping's receives and deletes and the archiver's visibility
//! changes, as an SQS outage would.
//!
//! **The schedule** ([`schedule`], in fractions of the sending time D = N / rate): SQS
//! refuses everything for 10 s from 0.05 D (the edge spools); S3 refuses everything (503
//! `SlowDown`) for 5 s from 7 s into that, so for 3 s both are down (the edge answers 503
//! and the sender retries) and for 2 s S3 alone (a claim check fails; the archiver's and
//! the drainer's S3 calls fail); the archiver is killed at 0.30 D (at the first instant,
//! within 10 s, a message is in flight on the queue: SIGKILL to its process group, the
//! mapping's receives and invokes dropped; started again 5 s later); SQS throttles every
//! third request for 10 s from 0.40 D; the archiver is killed again at 0.65 D. D must be
//! at least [`MIN_SEND_SECS`]. Messages a killed archiver held come back after the
//! visibility timeout. The proxy's switches and the kills run on timelines of their own.
//! The CDN fails the first download of every tenth prediction's output
//! (`/flaky/503/1/…`).
//!
//! **The sender** is a provider that retries a 503 at most twice, after its `Retry-After`
//! (at most 30 s). Bodies ([`plan`]): most are a prediction webhook of about 400 bytes,
//! every tenth is padded to 64-256 KiB, every twentieth to 800-1000 kB (over the 1 MiB
//! message once base64'd: claim-checked to `raw/`).
//!
//! **Counting** ([`tally`]), once the queue and the spool are empty and every accepted
//! body is archived, or the settle deadline passed: **lost** is a webhook answered 2xx
//! whose exact bytes are not at `events/skytells/{sha256}/body` (read back and compared);
//! **duplicates** is every manifest version beyond the first of one prediction
//! (`predictions/{id}/manifest.json`'s versions); **archived** is a 2xx webhook whose
//! prediction has its manifest.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::fault_proxy::{CountsNow, FaultProxy, S3Fault, SqsFault};
use crate::lambda::{archiver_env, local_aws_env, LambdaFunction};
use crate::operator::depth;
use crate::poller::{queue_arn, Mapping, MappingStats, Poller};
use crate::process::loadavg;
use crate::provider::keys::{sign, INITIAL_WEBHOOK_SECRET};
use crate::provider::predictions::prediction;
use crate::stack::LocalStack;
use crate::StackError;

const QUEUE: &str = "hookvault-soak-events";
const SPOOL_EVENTS: &str = "hookvault-soak-spool-events";
const BUCKET: &str = "hookvault-soak";
/// The template's `MaxReceiveCount` default.
const MAX_RECEIVES: u32 = 15;
/// The shortest sending time the schedule fits in (its three proxy windows apart).
pub const MIN_SEND_SECS: f64 = 40.0;

/// The soak's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Webhooks to send (each a prediction of its own).
    pub n: usize,
    /// Webhooks per second.
    pub rate: f64,
    /// Archiver instances and the mapping's concurrent receives.
    pub concurrency: usize,
    /// The queue's visibility timeout for the mapping's receives, seconds.
    pub visibility_secs: i32,
    /// The drainer's scheduled sweep, every this many seconds.
    pub sweep_secs: u64,
    /// How long to wait, after the last answer, for everything to be archived.
    pub settle_secs: u64,
    /// Bytes of each prediction's output on the CDN.
    pub output_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            n: 2000,
            rate: 3.0,
            concurrency: 4,
            visibility_secs: 20,
            sweep_secs: 60,
            settle_secs: 600,
            output_bytes: 8 * 1024,
        }
    }
}

/// A fault of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// SQS refuses every request.
    SqsRefusesAll,
    /// SQS throttles every third request.
    SqsThrottlesAThird,
    /// S3 refuses every request.
    S3Refuses,
    /// The archiver is killed, and started again at the window's end.
    ArchiverKilled,
}

impl Fault {
    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Fault::SqsRefusesAll => "SQS refuses everything (503 ServiceUnavailable)",
            Fault::SqsThrottlesAThird => "SQS throttles every 3rd request (400 RequestThrottled)",
            Fault::S3Refuses => "S3 refuses everything (503 SlowDown)",
            Fault::ArchiverKilled => {
                "archiver killed (SIGKILL), down until restarted and answering"
            }
        }
    }
}

/// One fault, from `start` (after the first webhook) for `len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Which.
    pub fault: Fault,
    /// When it starts.
    pub start: Duration,
    /// How long it lasts.
    pub len: Duration,
}

impl Window {
    /// When it ends.
    pub fn end(&self) -> Duration {
        self.start + self.len
    }
}

/// The schedule for a sending time of `send`: see the module's docs. Error: `send` is
/// under [`MIN_SEND_SECS`].
pub fn schedule(send: Duration) -> Result<Vec<Window>, String> {
    let d = send.as_secs_f64();
    if d < MIN_SEND_SECS {
        return Err(format!(
            "the schedule needs at least {MIN_SEND_SECS} s of sending (n / rate), not {d:.1} s: send more webhooks or fewer per second"
        ));
    }
    let at = |f: f64, fault, secs| Window {
        fault,
        start: Duration::from_secs_f64(d * f),
        len: Duration::from_secs(secs),
    };
    let sqs_down = at(0.05, Fault::SqsRefusesAll, 10);
    Ok(vec![
        sqs_down,
        Window {
            fault: Fault::S3Refuses,
            start: sqs_down.start + Duration::from_secs(7),
            len: Duration::from_secs(5),
        },
        at(0.30, Fault::ArchiverKilled, 5),
        at(0.40, Fault::SqsThrottlesAThird, 10),
        at(0.65, Fault::ArchiverKilled, 5),
    ])
}

/// The schedule's switches in time order: (when, fault, on). At one instant an end comes
/// before a start.
pub fn switches(windows: &[Window]) -> Vec<(Duration, Fault, bool)> {
    let mut out: Vec<(Duration, Fault, bool)> = windows
        .iter()
        .flat_map(|w| [(w.start, w.fault, true), (w.end(), w.fault, false)])
        .collect();
    out.sort_by_key(|&(t, _, on)| (t, on));
    out
}

/// How big a webhook's body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// The prediction alone (~400 bytes).
    Small,
    /// Padded to 64-256 KiB.
    Medium,
    /// Padded to 800-1000 kB: claim-checked.
    Large,
}

/// Webhook `i`'s prediction id, body and whether its output's first download fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The prediction id.
    pub id: String,
    /// The signed bytes.
    pub body: Vec<u8>,
    /// Its size class.
    pub size: Size,
    /// Its output is on `/flaky/503/1/…`: the CDN fails its first download.
    pub flaky_cdn: bool,
    /// The output's CDN path.
    pub output_path: String,
}

/// The size class of webhook `i`: every 20th (19, 39, …) large, two in 20 (4, 13, …)
/// medium, the rest small.
pub fn size_of(i: usize) -> Size {
    match i % 20 {
        19 => Size::Large,
        4 | 13 => Size::Medium,
        _ => Size::Small,
    }
}

/// Padding bytes for webhook `i` of `size`: spread over the class's range.
pub fn padding(i: usize, size: Size) -> usize {
    let spread = |lo: usize, hi: usize| lo + (i.wrapping_mul(7919) % (hi - lo));
    match size {
        Size::Small => 0,
        Size::Medium => spread(64 << 10, 256 << 10),
        Size::Large => spread(800_000, 1_000_000),
    }
}

/// Webhook `i`: a succeeded prediction whose one output is `output_bytes` on the CDN at
/// `cdn`; every tenth (7, 17, …) on a path whose first download fails.
pub fn plan(i: usize, cdn: &str, output_bytes: u64) -> Plan {
    let id = format!("pred_soak_{i:05}");
    let size = size_of(i);
    let flaky_cdn = i % 10 == 7;
    let output_path = if flaky_cdn {
        format!("/flaky/503/1/{id}.png")
    } else {
        format!("/files/{id}.png")
    };
    let url = format!("{cdn}{output_path}?size={output_bytes}");
    let mut v: Value =
        serde_json::from_str(&prediction(&id, "succeeded", &[url])).unwrap_or_default();
    let pad = padding(i, size);
    if pad > 0 {
        // Printable, varied, cheap: the generated content's bytes as lowercase letters.
        let logs: String = crate::provider::content(i as u64, pad)
            .into_iter()
            .map(|b| char::from(b'a' + b % 26))
            .collect();
        v["data"]["logs"] = Value::String(logs);
    }
    Plan {
        id,
        body: v.to_string().into_bytes(),
        size,
        flaky_cdn,
        output_path,
    }
}

/// One answer the edge gave (or did not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// When the POST left, after the first webhook's.
    pub at: Duration,
    /// The status; `None` when there was no answer.
    pub status: Option<u16>,
    /// The answer's `status` field (`queued`, `spooled`), for a 2xx.
    pub said: Option<String>,
}

/// What became of one webhook at the sender.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Its plan.
    pub plan: Plan,
    /// Its body's SHA-256, lowercase hex.
    pub sha256: String,
    /// Each POST's answer, in order (a 503 is retried at most twice).
    pub answers: Vec<Answer>,
}

impl Delivery {
    /// The 2xx answer, if one came.
    pub fn accepted(&self) -> Option<&Answer> {
        self.answers
            .iter()
            .find(|a| a.status.is_some_and(|s| (200..300).contains(&s)))
    }
}

/// What the archive holds, read at the end.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Body digests whose `events/skytells/{sha}/body` holds exactly the sent bytes.
    pub kept: HashSet<String>,
    /// Prediction ids with a `manifest.json`.
    pub manifests: HashSet<String>,
    /// Versions of each prediction's `manifest.json`.
    pub manifest_versions: HashMap<String, usize>,
}

/// The table's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Webhooks sent (each body once, retries not counted).
    pub sent: usize,
    /// POSTs, retries included.
    pub posts: usize,
    /// Webhooks answered 2xx.
    pub answered_2xx: usize,
    /// 503 answers (every POST's).
    pub answered_503: usize,
    /// Webhooks the sender gave up on (503 three times).
    pub gave_up: usize,
    /// POSTs with no answer, or one neither 2xx nor 503.
    pub other: usize,
    /// Webhooks whose 2xx said `spooled`.
    pub spooled: usize,
    /// 2xx webhooks whose prediction has its manifest.
    pub archived: usize,
    /// Manifest versions beyond the first of one prediction.
    pub duplicates: usize,
    /// 2xx webhooks whose exact bytes are not in the archive.
    pub lost: usize,
}

/// The figures for `deliveries` against what the archive holds.
pub fn tally(deliveries: &[Delivery], found: &Found) -> Tally {
    let mut t = Tally {
        sent: deliveries.len(),
        ..Tally::default()
    };
    for d in deliveries {
        t.posts += d.answers.len();
        for a in &d.answers {
            match a.status {
                Some(503) => t.answered_503 += 1,
                Some(s) if (200..300).contains(&s) => {}
                _ => t.other += 1,
            }
        }
        match d.accepted() {
            Some(a) => {
                t.answered_2xx += 1;
                if a.said.as_deref() == Some("spooled") {
                    t.spooled += 1;
                }
                if found.manifests.contains(&d.plan.id) {
                    t.archived += 1;
                }
                if !found.kept.contains(&d.sha256) {
                    t.lost += 1;
                }
            }
            None if d.answers.len() >= 3 && d.answers.iter().all(|a| a.status == Some(503)) => {
                t.gave_up += 1;
            }
            None => {}
        }
    }
    t.duplicates = found
        .manifest_versions
        .values()
        .map(|&v| v.saturating_sub(1))
        .sum();
    t
}

/// Answers to POSTs sent while `w` was on: (2xx queued, 2xx spooled, 503, other).
pub fn answers_during(deliveries: &[Delivery], w: &Window) -> (usize, usize, usize, usize) {
    let mut out = (0, 0, 0, 0);
    for a in deliveries.iter().flat_map(|d| &d.answers) {
        if a.at < w.start || a.at >= w.end() {
            continue;
        }
        match a.status {
            Some(s) if (200..300).contains(&s) && a.said.as_deref() == Some("spooled") => {
                out.1 += 1
            }
            Some(s) if (200..300).contains(&s) => out.0 += 1,
            Some(503) => out.2 += 1,
            _ => out.3 += 1,
        }
    }
    out
}

/// The schedule as it was applied: each fault's window from the instant it was switched
/// on to the instant it was switched off (for the archiver: killed, and answering again).
#[derive(Debug, Default)]
struct Applied {
    started: HashMap<Fault, Duration>,
    windows: Vec<Window>,
}

impl Applied {
    /// `fault` was just switched `on` (or off), `t0` being the first webhook's instant.
    fn note(&mut self, t0: Instant, fault: Fault, on: bool) {
        let now = t0.elapsed();
        println!(
            "soak: {:>6.1} s  {} {}",
            now.as_secs_f64(),
            if on { "on: " } else { "off:" },
            fault.name()
        );
        if on {
            self.started.insert(fault, now);
        } else if let Some(start) = self.started.remove(&fault) {
            self.windows.push(Window {
                fault,
                start,
                len: now.saturating_sub(start),
            });
        }
    }
}

/// What the drainer did.
#[derive(Debug, Default)]
pub struct DrainerCounts {
    /// Invocations for object-created notifications.
    pub on_created: AtomicU64,
    /// Scheduled sweeps.
    pub sweeps: AtomicU64,
    /// Invocations that returned an error (something left in the spool).
    pub errors: AtomicU64,
}

/// Everything the soak measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The settings.
    pub options: Options,
    /// The figures.
    pub tally: Tally,
    /// The schedule as applied: each window with its actual start and length.
    pub applied: Vec<Window>,
    /// Answers to POSTs sent during each applied window.
    pub during: Vec<(usize, usize, usize, usize)>,
    /// What the proxy did.
    pub proxy: CountsNow,
    /// Times the archiver was started again after a kill.
    pub archiver_restarts: u32,
    /// Messages in flight (received, not deleted) at each kill of the archiver.
    pub held_at_kills: Vec<usize>,
    /// Flaky outputs whose first download failed (the CDN answered 503), and of those,
    /// downloaded again.
    pub cdn_first_failures: (usize, usize),
    /// The drainer's: invocations on created events, sweeps, events queued, errors.
    pub drainer: (u64, u64, u64, u64),
    /// The mapping's polls that delivered a batch and deleted it, records the archiver
    /// reported failed, polls that failed (a receive, an invoke or a delete).
    pub mapping: (u64, u64, u64),
    /// Left at the end: messages on the queue, objects in the spool, messages in the DLQ.
    pub left: (usize, usize, usize),
    /// Whether everything was archived before the settle deadline.
    pub settled: bool,
    /// Seconds from the first webhook to the last answer, and to the end of settling.
    pub seconds: (f64, f64),
    /// The load average before and after.
    pub load: (String, String),
}

impl Report {
    /// The report as markdown: the table, then the schedule and the counters.
    pub fn table(&self) -> String {
        let t = &self.tally;
        let o = &self.options;
        let mut out = format!(
            "| sent | answered 2xx | 503 | spooled | archived | duplicates | lost |\n|---|---|---|---|---|---|---|\n| {} | {} | {} | {} | {} | {} | {} |\n\n",
            t.sent, t.answered_2xx, t.answered_503, t.spooled, t.archived, t.duplicates, t.lost
        );
        out.push_str(&format!(
            "{} webhooks at {}/s ({} POSTs with retries; {} given up after three 503s; {} POSTs with no answer or another status); archiver: {} instances, visibility {} s; drainer sweep every {} s; load average {} before, {} after; {:.0} s sending, {:.0} s until settled{}\n\n",
            t.sent, o.rate, t.posts, t.gave_up, t.other, o.concurrency, o.visibility_secs, o.sweep_secs,
            self.load.0, self.load.1, self.seconds.0, self.seconds.1,
            if self.settled { "" } else { " (NOT settled: the deadline passed)" }
        ));
        out.push_str("| fault (as applied) | from s | to s | answers to POSTs sent meanwhile: queued / spooled / 503 / other |\n|---|---|---|---|\n");
        for (w, d) in self.applied.iter().zip(&self.during) {
            out.push_str(&format!(
                "| {} | {:.1} | {:.1} | {} / {} / {} / {} |\n",
                w.fault.name(),
                w.start.as_secs_f64(),
                w.end().as_secs_f64(),
                d.0,
                d.1,
                d.2,
                d.3
            ));
        }
        let p = &self.proxy;
        out.push_str(&format!(
            "\nproxy: SQS {} forwarded, {} refused, {} throttled; S3 {} forwarded, {} refused; {} upstream errors. archiver restarts: {} (messages in flight at each kill: {:?}). CDN: {} first downloads failed, {} of them downloaded again. drainer: {} object-created invocations, {} sweeps, {} events queued, {} invocations with an error. mapping: {} polls delivered and deleted, {} records the archiver reported failed, {} polls failed (a receive, an invoke or a delete). left: {} on the queue, {} in the spool, {} in the DLQ.\n",
            p.sqs_forwarded, p.sqs_refused, p.sqs_throttled, p.s3_forwarded, p.s3_refused, p.upstream_errors,
            self.archiver_restarts, self.held_at_kills, self.cdn_first_failures.0, self.cdn_first_failures.1,
            self.drainer.0, self.drainer.1, self.drainer.2, self.drainer.3,
            self.mapping.0, self.mapping.1, self.mapping.2,
            self.left.0, self.left.1, self.left.2
        ));
        out
    }
}

fn err(e: impl std::fmt::Display) -> StackError {
    StackError::Start(format!("soak: {e}"))
}

/// Every key under `prefix`, all pages.
async fn list_keys(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, StackError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| err(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        out.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
            _ => return Ok(out),
        }
    }
}

/// The prediction id of a `predictions/{id}/manifest.json` key.
pub fn manifest_id(key: &str) -> Option<&str> {
    key.strip_prefix("predictions/")?
        .strip_suffix("/manifest.json")
        .filter(|id| !id.contains('/'))
}

/// The versions of every manifest (delete markers not counted), all pages.
async fn manifest_versions(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<HashMap<String, usize>, StackError> {
    let mut out: HashMap<String, usize> = HashMap::new();
    let (mut key, mut version): (Option<String>, Option<String>) = (None, None);
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .prefix("predictions/")
            .set_key_marker(key.clone())
            .set_version_id_marker(version.clone())
            .send()
            .await
            .map_err(|e| err(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        for v in page.versions() {
            if let Some(id) = v.key().and_then(manifest_id) {
                *out.entry(id.to_owned()).or_default() += 1;
            }
        }
        let next = (
            page.next_key_marker().map(str::to_owned),
            page.next_version_id_marker().map(str::to_owned),
        );
        if page.is_truncated() != Some(true) || next.0.is_none() || next == (key, version) {
            return Ok(out);
        }
        (key, version) = next;
    }
}

/// The archiver under `cargo lambda watch` and the mapping feeding it, which can be
/// killed and started again.
struct Archiver {
    env: Vec<(String, String)>,
    mapping: Mapping,
    sqs: aws_sdk_sqs::Client,
    stats: Arc<MappingStats>,
    running: Option<(Arc<LambdaFunction>, tokio::task::JoinSet<()>)>,
    starts: u32,
}

impl Archiver {
    /// Starts the function (the first invoke waits for its build) and the mapping.
    async fn start(&mut self) -> Result<(), StackError> {
        let concurrency = u32::try_from(self.mapping.max_concurrency).unwrap_or(1);
        let f = Arc::new(
            LambdaFunction::start_concurrent(
                "functions/archiver",
                "archiver",
                &self.env,
                concurrency,
            )
            .await?,
        );
        // Built and running before the mapping feeds it: an empty batch.
        f.invoke(&json!({"Records": []})).await?;
        let pollers = self.mapping.spawn(&self.sqs, &f, &self.stats);
        self.running = Some((f, pollers));
        self.starts += 1;
        Ok(())
    }

    /// Kills it: the mapping's tasks are dropped (a receive or invoke in flight with
    /// them), and the function's process group gets SIGKILL once the last handle goes.
    async fn kill(&mut self) {
        if let Some((f, pollers)) = self.running.take() {
            let gone = Arc::downgrade(&f);
            drop(pollers);
            drop(f);
            let until = Instant::now() + Duration::from_secs(10);
            while gone.upgrade().is_some() && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Feeds the drainer each `spool/` object-created notification moto sends to
/// `notifications`, as S3 invokes a function; and sweeps every `sweep`.
fn spawn_drainer_triggers(
    sqs: aws_sdk_sqs::Client,
    notifications: String,
    drainer: Arc<LambdaFunction>,
    sweep: Duration,
    counts: Arc<DrainerCounts>,
) -> tokio::task::JoinSet<()> {
    let mut set = tokio::task::JoinSet::new();
    let note = |counts: &DrainerCounts, r: Result<Value, String>| {
        if r.is_err() {
            counts.errors.fetch_add(1, Relaxed);
        }
    };
    let (f, c) = (Arc::clone(&drainer), Arc::clone(&counts));
    set.spawn(async move {
        let mut tick = tokio::time::interval(sweep);
        tick.tick().await;
        loop {
            tick.tick().await;
            let payload = json!({"version": "0", "id": "soak-sweep", "detail-type": "Scheduled Event",
                "source": "aws.events", "account": "123456789012", "region": "us-east-1",
                "time": hookvault_core::time::rfc3339(hookvault_core::time::unix_now()),
                "resources": ["arn:aws:events:us-east-1:123456789012:rule/drainer-sweep"], "detail": {}});
            c.sweeps.fetch_add(1, Relaxed);
            note(&c, f.invoke_result(&payload).await);
        }
    });
    set.spawn(async move {
        loop {
            let Ok(r) = sqs
                .receive_message()
                .queue_url(&notifications)
                .max_number_of_messages(10)
                .wait_time_seconds(20)
                .send()
                .await
            else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            for m in r.messages.unwrap_or_default() {
                let payload: Value = m
                    .body
                    .as_deref()
                    .and_then(|b| serde_json::from_str(b).ok())
                    .unwrap_or_default();
                // moto's s3:TestEvent has no Records.
                if payload.get("Records").is_some() {
                    counts.on_created.fetch_add(1, Relaxed);
                    note(&counts, drainer.invoke_result(&payload).await);
                }
                if let Some(h) = &m.receipt_handle {
                    let _ = sqs
                        .delete_message()
                        .queue_url(&notifications)
                        .receipt_handle(h)
                        .send()
                        .await;
                }
            }
        }
    });
    set
}

/// Messages received from `queue` and not yet deleted (moto's exact count); 0 when it
/// cannot be read.
async fn in_flight(sqs: &aws_sdk_sqs::Client, queue: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .ok()
        .and_then(|r| r.attributes);
    attrs
        .and_then(|a| a.get(&A::ApproximateNumberOfMessagesNotVisible).cloned())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Sends `spool/` object-created notifications of `bucket` to the queue `arn`.
async fn notify_spool(s3: &aws_sdk_s3::Client, bucket: &str, arn: &str) -> Result<(), StackError> {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    let filter = NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(
                    FilterRule::builder()
                        .name(FilterRuleName::Prefix)
                        .value("spool/")
                        .build(),
                )
                .build(),
        )
        .build();
    let config = QueueConfiguration::builder()
        .id("spool")
        .queue_arn(arn)
        .events(Event::from("s3:ObjectCreated:*"))
        .filter(filter)
        .build()
        .map_err(err)?;
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(config)
                .build(),
        )
        .send()
        .await
        .map_err(|e| err(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    Ok(())
}

/// Sends `plan`'s webhook as the provider does: signed, and again after `Retry-After`
/// (at most 30 s) when answered 503, at most twice.
async fn deliver(http: reqwest::Client, hook: String, plan: Plan, t0: Instant) -> Delivery {
    let sha256 = hex::encode(Sha256::digest(&plan.body));
    let text = String::from_utf8_lossy(&plan.body).into_owned();
    let mut answers = Vec::new();
    for _ in 0..3 {
        let mut req = http
            .post(&hook)
            .header("content-type", "application/json")
            .body(plan.body.clone());
        for (k, v) in sign(INITIAL_WEBHOOK_SECRET, &text) {
            req = req.header(k, v);
        }
        let at = t0.elapsed();
        let (status, retry_after, said) = match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let said = r
                    .text()
                    .await
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .and_then(|v| v["status"].as_str().map(str::to_owned));
                (Some(status), retry_after, said)
            }
            Err(_) => (None, None, None),
        };
        answers.push(Answer { at, status, said });
        if status != Some(503) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(retry_after.unwrap_or(10).min(30))).await;
    }
    Delivery {
        plan,
        sha256,
        answers,
    }
}

/// Reads what the archive holds for `deliveries`: each accepted body read back and
/// compared, the manifests and their versions.
async fn find(s3: &aws_sdk_s3::Client, deliveries: &[Delivery]) -> Result<Found, StackError> {
    let mut found = Found {
        manifest_versions: manifest_versions(s3, BUCKET).await?,
        ..Found::default()
    };
    found.manifests = list_keys(s3, BUCKET, "predictions/")
        .await?
        .iter()
        .filter_map(|k| manifest_id(k).map(str::to_owned))
        .collect();
    for d in deliveries.iter().filter(|d| d.accepted().is_some()) {
        let key = hookvault_core::archive::event_body_key("skytells", &d.sha256);
        if let Some((bytes, _)) = crate::s3::get(s3, BUCKET, &key).await? {
            if bytes == d.plan.body {
                found.kept.insert(d.sha256.clone());
            }
        }
    }
    Ok(found)
}

/// True when the queue and the spool are empty and every accepted webhook's body is kept
/// and its manifest written (by listing: cheap enough to ask every few seconds).
async fn settled(stack: &LocalStack, deliveries: &[Delivery]) -> Result<bool, StackError> {
    if depth(&stack.sqs, stack.queue_url()?).await? > 0
        || !list_keys(&stack.s3, BUCKET, "spool/").await?.is_empty()
    {
        return Ok(false);
    }
    let bodies: HashSet<String> = list_keys(&stack.s3, BUCKET, "events/skytells/")
        .await?
        .into_iter()
        .collect();
    let manifests: HashSet<String> = list_keys(&stack.s3, BUCKET, "predictions/")
        .await?
        .into_iter()
        .collect();
    Ok(deliveries
        .iter()
        .filter(|d| d.accepted().is_some())
        .all(|d| {
            bodies.contains(&hookvault_core::archive::event_body_key(
                "skytells", &d.sha256,
            )) && manifests.contains(&format!("predictions/{}/manifest.json", d.plan.id))
        }))
}

/// Runs the soak; the report.
pub async fn run(o: Options) -> Result<Report, StackError> {
    let rate = if o.rate > 0.0 { o.rate } else { 1.0 };
    let send_time = Duration::from_secs_f64(o.n as f64 / rate);
    let windows = schedule(send_time).map_err(err)?;
    let load_before = loadavg();

    // The proxy's URL goes into the edge's config; it forwards once moto runs.
    let proxy = FaultProxy::start_unbound().await?;
    let via = format!("{}/", proxy.url);
    let stack = LocalStack::builder()
        .queue_with_dlq(QUEUE, MAX_RECEIVES)
        .queue(SPOOL_EVENTS)
        .bucket(BUCKET)
        .versioned()
        .edge_vars(&[
            ("WEBHOOK_SECRETS", INITIAL_WEBHOOK_SECRET),
            ("SQS_ENDPOINT", via.as_str()),
            ("S3_ENDPOINT", via.as_str()),
            // The deployed defaults (docs/edge.md), not the tests' short ones.
            ("SQS_TIMEOUT_MS", "5000"),
            ("RETRY_AFTER_SECS", "10"),
        ])
        .provider()
        .start()
        .await?;
    proxy.set_upstream(&stack.moto.endpoint);
    let queue = stack.queue_url()?.to_owned();
    let notifications = stack.queue_named(SPOOL_EVENTS)?.url.clone();
    notify_spool(&stack.s3, BUCKET, &queue_arn(&notifications)).await?;
    let cdn = stack.provider()?.url.clone();
    let hook = format!("{}/webhooks/skytells", stack.edge()?.url);

    let max_receives = MAX_RECEIVES.to_string();
    let mut archiver = Archiver {
        env: archiver_env(
            &proxy.url,
            BUCKET,
            &[
                ("MAX_RECEIVE_COUNT", max_receives.as_str()),
                ("RUST_LOG", "warn"),
            ],
        ),
        mapping: Mapping {
            poller: Poller {
                queue_url: queue.clone(),
                batch_size: 1,
                visibility_timeout: o.visibility_secs,
            },
            max_concurrency: o.concurrency.max(1),
            wait_time_seconds: 20,
        },
        sqs: crate::sqs::client(&proxy.url),
        stats: Arc::new(MappingStats::default()),
        running: None,
        starts: 0,
    };
    println!(
        "soak: starting the archiver ({} instances) and the drainer…",
        o.concurrency
    );
    archiver.start().await?;
    let drainer_env = local_aws_env(
        &proxy.url,
        &[
            ("SPOOL_BUCKET", BUCKET),
            ("QUEUE_URL", queue.as_str()),
            ("RUST_LOG", "warn"),
        ],
    );
    let drainer = Arc::new(
        LambdaFunction::start_concurrent("functions/drainer", "drainer", &drainer_env, 2).await?,
    );
    drainer.invoke(&json!({"sweep": true})).await?;
    let drainer_counts = Arc::new(DrainerCounts::default());
    let triggers = spawn_drainer_triggers(
        stack.sqs.clone(),
        notifications,
        Arc::clone(&drainer),
        Duration::from_secs(o.sweep_secs.max(1)),
        Arc::clone(&drainer_counts),
    );

    println!(
        "soak: {} webhooks at {rate}/s over {:.0} s; schedule: {}",
        o.n,
        send_time.as_secs_f64(),
        windows
            .iter()
            .map(|w| format!(
                "{} at {:.0} s for {} s",
                w.fault.name(),
                w.start.as_secs_f64(),
                w.len.as_secs()
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(err)?;
    let t0 = Instant::now();
    let send = async {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        let mut sends = tokio::task::JoinSet::new();
        for i in 0..o.n {
            ticker.tick().await;
            sends.spawn(deliver(
                http.clone(),
                hook.clone(),
                plan(i, &cdn, o.output_bytes),
                t0,
            ));
        }
        let mut out: Vec<Delivery> = sends.join_all().await;
        out.sort_by(|a, b| a.plan.id.cmp(&b.plan.id));
        out
    };
    // The proxy's switches and the archiver's on timelines of their own: a restart that
    // takes seconds does not hold back a proxy fault.
    let proxy_faults = async {
        let mut log = Applied::default();
        for (at, fault, on) in switches(&windows) {
            let sqs = match (fault, on) {
                (Fault::ArchiverKilled, _) => continue,
                (Fault::S3Refuses, _) => None,
                (Fault::SqsRefusesAll, true) => Some(SqsFault::RefuseAll),
                (Fault::SqsThrottlesAThird, true) => Some(SqsFault::ThrottleThird),
                (_, false) => Some(SqsFault::None),
            };
            tokio::time::sleep_until((t0 + at).into()).await;
            match sqs {
                Some(f) => proxy.set_sqs(f),
                None => proxy.set_s3(if on { S3Fault::Refuse } else { S3Fault::None }),
            }
            log.note(t0, fault, on);
        }
        log.windows
    };
    let kills = async {
        let mut log = Applied::default();
        let mut held = Vec::new();
        for (at, fault, on) in switches(&windows) {
            if fault != Fault::ArchiverKilled {
                continue;
            }
            tokio::time::sleep_until((t0 + at).into()).await;
            if on {
                // Killed while it holds messages: at the first instant (within 10 s) one
                // is received and not yet deleted.
                let until = Instant::now() + Duration::from_secs(10);
                let mut n = in_flight(&stack.sqs, &queue).await;
                while n == 0 && Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    n = in_flight(&stack.sqs, &queue).await;
                }
                archiver.kill().await;
                held.push(n);
            } else if let Err(e) = archiver.start().await {
                println!("soak: the archiver did not start again: {e}");
            }
            log.note(t0, fault, on);
        }
        (log.windows, held)
    };
    let (deliveries, mut applied, (killed, held_at_kills)) =
        tokio::join!(send, proxy_faults, kills);
    applied.extend(killed);
    applied.sort_by_key(|w| w.start);
    let sent_secs = t0.elapsed().as_secs_f64();
    println!(
        "soak: sent; waiting up to {} s for the queue and the spool to drain…",
        o.settle_secs
    );

    let deadline = Instant::now() + Duration::from_secs(o.settle_secs);
    let mut done = false;
    while Instant::now() < deadline {
        if settled(&stack, &deliveries).await.unwrap_or(false) {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let settle_secs = t0.elapsed().as_secs_f64();
    drop(triggers);
    archiver.kill().await;

    let found = find(&stack.s3, &deliveries).await?;
    let provider = stack.provider()?;
    let flaky: Vec<u32> = deliveries
        .iter()
        .filter(|d| d.plan.flaky_cdn)
        .map(|d| provider.hits(&d.plan.output_path))
        .collect();
    let dc = &drainer_counts;
    let st = &archiver.stats;
    let report = Report {
        tally: tally(&deliveries, &found),
        during: applied
            .iter()
            .map(|w| answers_during(&deliveries, w))
            .collect(),
        applied,
        proxy: proxy.counts(),
        archiver_restarts: archiver.starts.saturating_sub(1),
        held_at_kills,
        cdn_first_failures: (
            flaky.iter().filter(|&&h| h >= 1).count(),
            flaky.iter().filter(|&&h| h >= 2).count(),
        ),
        drainer: (
            dc.on_created.load(Relaxed),
            dc.sweeps.load(Relaxed),
            // Counted by its metric, one line per event queued: an invocation that
            // failed for one object (an error answer, no list) queued the others.
            crate::lambda::emf_lines(&drainer.logs(), "SpooledEvents").len() as u64,
            dc.errors.load(Relaxed),
        ),
        mapping: (
            st.invocations.load(Relaxed),
            st.failed.load(Relaxed),
            st.errors.load(Relaxed),
        ),
        left: (
            depth(&stack.sqs, &queue).await?,
            list_keys(&stack.s3, BUCKET, "spool/").await?.len(),
            depth(&stack.sqs, stack.dlq_url()?).await?,
        ),
        settled: done,
        seconds: (sent_secs, settle_secs),
        load: (load_before, loadavg()),
        options: o,
    };
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_fits_in_the_sending_time_and_only_sqs_and_s3_outages_overlap() {
        for secs in [40.0, 60.0, 500.0, 700.0] {
            let d = Duration::from_secs_f64(secs);
            let w = schedule(d).unwrap();
            assert!(w.iter().all(|w| w.end() <= d), "{secs}: {w:?}");
            let kills = w
                .iter()
                .filter(|w| w.fault == Fault::ArchiverKilled)
                .count();
            assert_eq!(kills, 2);
            let one = |f| *w.iter().find(|w| w.fault == f).unwrap();
            let (sqs, s3, throttle) = (
                one(Fault::SqsRefusesAll),
                one(Fault::S3Refuses),
                one(Fault::SqsThrottlesAThird),
            );
            assert_eq!(
                (sqs.len.as_secs(), s3.len.as_secs(), throttle.len.as_secs()),
                (10, 5, 10)
            );
            // Both down for the outage's last 3 s, then S3 alone for 2 s.
            assert_eq!(s3.start, sqs.start + Duration::from_secs(7));
            assert_eq!(s3.end(), sqs.end() + Duration::from_secs(2));
            // The throttling comes after both, on a healthy S3.
            assert!(s3.end() <= throttle.start, "{secs}: {w:?}");
        }
        assert!(schedule(Duration::from_secs(39)).is_err());
    }

    #[test]
    fn switches_come_in_time_order_each_on_before_its_off() {
        let w = schedule(Duration::from_secs(40)).unwrap();
        let s = switches(&w);
        assert_eq!(s.len(), 10);
        assert!(s.windows(2).all(|p| p[0].0 <= p[1].0));
        let at = |secs| Duration::from_secs(secs);
        assert_eq!(
            s[..5],
            [
                (at(2), Fault::SqsRefusesAll, true),
                (at(9), Fault::S3Refuses, true),
                // At 12 s SQS comes back and the archiver is killed: the end first.
                (at(12), Fault::SqsRefusesAll, false),
                (at(12), Fault::ArchiverKilled, true),
                (at(14), Fault::S3Refuses, false),
            ]
        );
        let same = [
            Window {
                fault: Fault::S3Refuses,
                start: at(5),
                len: at(5),
            },
            Window {
                fault: Fault::SqsRefusesAll,
                start: Duration::ZERO,
                len: at(5),
            },
        ];
        assert_eq!(
            switches(&same)[1..3],
            [
                (at(5), Fault::SqsRefusesAll, false),
                (at(5), Fault::S3Refuses, true)
            ]
        );
    }

    #[test]
    fn bodies_are_mixed_and_every_tenth_output_fails_first() {
        let plans: Vec<Plan> = (0..200).map(|i| plan(i, "http://cdn", 1024)).collect();
        let count = |s| plans.iter().filter(|p| p.size == s).count();
        assert_eq!(
            (count(Size::Small), count(Size::Medium), count(Size::Large)),
            (170, 20, 10)
        );
        assert_eq!(plans.iter().filter(|p| p.flaky_cdn).count(), 20);
        for p in &plans {
            let len = p.body.len();
            match p.size {
                Size::Small => assert!(len < 1000, "{len}"),
                Size::Medium => assert!((64 << 10..(256 << 10) + 1000).contains(&len), "{len}"),
                // Over what one SQS message takes once base64'd (~770 kB): claim-checked.
                Size::Large => assert!((800_000..1_001_000).contains(&len), "{len}"),
            }
            let v: Value = serde_json::from_slice(&p.body).unwrap();
            assert_eq!(v["data"]["id"], p.id.as_str());
            assert_eq!(v["data"]["status"], "succeeded");
            let url = v["data"]["output"][0].as_str().unwrap();
            assert_eq!(url, format!("http://cdn{}?size=1024", p.output_path));
            assert_eq!(p.flaky_cdn, p.output_path.starts_with("/flaky/503/1/"));
        }
        // Every body differs: one prediction, one body.
        let bodies: HashSet<&Vec<u8>> = plans.iter().map(|p| &p.body).collect();
        assert_eq!(bodies.len(), plans.len());
        assert_eq!(plan(7, "http://cdn", 1).id, "pred_soak_00007");
    }

    fn delivery(i: usize, statuses: &[(u16, &str)]) -> Delivery {
        let plan = plan(i, "http://cdn", 1);
        Delivery {
            sha256: format!("sha{i}"),
            answers: statuses
                .iter()
                .enumerate()
                .map(|(k, (s, said))| Answer {
                    at: Duration::from_secs((i * 10 + k) as u64),
                    status: Some(*s),
                    said: (!said.is_empty()).then(|| (*said).to_owned()),
                })
                .collect(),
            plan,
        }
    }

    #[test]
    fn counting_lost_archived_and_duplicates() {
        let d = vec![
            delivery(0, &[(202, "queued")]),
            delivery(1, &[(202, "spooled")]),
            delivery(2, &[(503, ""), (202, "queued")]),
            delivery(3, &[(503, ""), (503, ""), (503, "")]),
            delivery(4, &[(202, "queued")]),
            delivery(5, &[(500, "")]),
        ];
        let mut found = Found::default();
        // 0, 1 and 2 kept and archived; 4 answered 2xx but its bytes are not there (lost),
        // its manifest is (e.g. another body of the prediction): archived, still lost.
        for i in [0, 1, 2] {
            found.kept.insert(format!("sha{i}"));
        }
        for i in [0, 1, 2, 4] {
            found.manifests.insert(d[i].plan.id.clone());
        }
        // A bytes-kept body of a webhook never accepted does not count.
        found.kept.insert("sha3".into());
        found.manifest_versions = [
            ("a".to_owned(), 1),
            ("b".to_owned(), 2),
            ("c".to_owned(), 3),
        ]
        .into();
        let t = tally(&d, &found);
        assert_eq!(
            t,
            Tally {
                sent: 6,
                posts: 9,
                answered_2xx: 4,
                answered_503: 4,
                gave_up: 1,
                other: 1,
                spooled: 1,
                archived: 4,
                duplicates: 3,
                lost: 1,
            }
        );
        let w = Window {
            fault: Fault::S3Refuses,
            start: Duration::from_secs(10),
            len: Duration::from_secs(11),
        };
        // POSTs at 10 (webhook 1) and 20, 21 (webhook 2's two tries).
        assert_eq!(answers_during(&d, &w), (0, 1, 1, 0));
        let w = Window {
            fault: Fault::S3Refuses,
            start: Duration::from_secs(20),
            len: Duration::from_secs(2),
        };
        assert_eq!(answers_during(&d, &w), (1, 0, 1, 0));
    }

    #[test]
    fn manifest_keys_name_their_prediction() {
        assert_eq!(
            manifest_id("predictions/pred_1/manifest.json"),
            Some("pred_1")
        );
        assert_eq!(manifest_id("predictions/pred_1/state.json"), None);
        assert_eq!(manifest_id("predictions/a/b/manifest.json"), None);
        assert_eq!(manifest_id("events/x/manifest.json"), None);
    }

    #[test]
    fn the_table_has_the_issue_s_columns() {
        let r = Report {
            options: Options::default(),
            tally: Tally {
                sent: 10,
                answered_2xx: 9,
                answered_503: 2,
                spooled: 3,
                archived: 9,
                ..Tally::default()
            },
            applied: schedule(Duration::from_secs(40)).unwrap(),
            during: vec![(1, 2, 3, 0); 5],
            proxy: CountsNow::default(),
            archiver_restarts: 2,
            held_at_kills: vec![1, 2],
            cdn_first_failures: (1, 1),
            drainer: (1, 2, 3, 0),
            mapping: (9, 0, 0),
            left: (0, 0, 0),
            settled: true,
            seconds: (40.0, 60.0),
            load: ("1.0".into(), "2.0".into()),
        };
        let t = r.table();
        assert!(t.starts_with("| sent | answered 2xx | 503 | spooled | archived | duplicates | lost |\n|---|---|---|---|---|---|---|\n| 10 | 9 | 2 | 3 | 9 | 0 | 0 |\n"), "{t}");
        assert!(
            t.contains("| S3 refuses everything (503 SlowDown) | 9.0 | 14.0 | 1 / 2 / 3 / 0 |"),
            "{t}"
        );
        assert!(
            t.contains("archiver restarts: 2 (messages in flight at each kill: [1, 2])"),
            "{t}"
        );
    }
}
