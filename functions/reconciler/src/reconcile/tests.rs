//! The reconciler's decisions, with fakes for the provider, the archive and the queues.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use hookvault_core::envelope::{Body, Envelope, Reconciled};
use hookvault_core::event::PredictionStatus;
use hookvault_core::reconcile::{next_delay_secs, CheckSource, ListPage, Listed, CHAIN_STALE_SECS};

use super::*;
use crate::io::ListAnswer;

#[derive(Default)]
struct FakeProvider {
    answers: Mutex<HashMap<String, VecDeque<Fetched>>>,
    pages: Mutex<VecDeque<ListAnswer>>,
    gets: Mutex<Vec<String>>,
    lists: Mutex<Vec<(u32, u32, String, String)>>,
}

impl FakeProvider {
    fn answer(&self, id: &str, f: Fetched) {
        if let Ok(mut a) = self.answers.lock() {
            a.entry(id.to_owned()).or_default().push_back(f);
        }
    }
}

impl Provider for FakeProvider {
    async fn get(&self, id: &str) -> Fetched {
        if let Ok(mut g) = self.gets.lock() {
            g.push(id.to_owned());
        }
        self.answers
            .lock()
            .ok()
            .and_then(|mut a| a.get_mut(id).and_then(VecDeque::pop_front))
            .unwrap_or(Fetched::NotFound)
    }

    async fn list(&self, page: u32, per_page: u32, from: &str, to: &str) -> ListAnswer {
        if let Ok(mut l) = self.lists.lock() {
            l.push((page, per_page, from.to_owned(), to.to_owned()));
        }
        self.pages
            .lock()
            .ok()
            .and_then(|mut p| p.pop_front())
            .unwrap_or_else(|| Err("no page".into()))
    }
}

#[derive(Default)]
struct FakeArchive {
    terminal: Mutex<HashSet<String>>,
    claim_checks: Mutex<Vec<(String, Vec<u8>)>>,
    stalled: Mutex<Vec<(StalledRecord, IndexEntry)>>,
    /// Each prediction's `check.json` and its version (the ETag).
    chains: Mutex<HashMap<String, (CheckChain, u64)>>,
    down: bool,
}

impl Archive for FakeArchive {
    async fn terminal_known(&self, id: &str) -> Result<bool, IoError> {
        if self.down {
            return Err(IoError {
                op: "S3 GetObject (state)",
                reason: "SlowDown".into(),
            });
        }
        Ok(self
            .terminal
            .lock()
            .map(|t| t.contains(id))
            .unwrap_or(false))
    }

    async fn put_claim_check(&self, key: &str, body: Vec<u8>) -> Result<(), IoError> {
        if let Ok(mut c) = self.claim_checks.lock() {
            c.push((key.to_owned(), body));
        }
        Ok(())
    }

    async fn write_stalled(
        &self,
        record: &StalledRecord,
        entry: &IndexEntry,
    ) -> Result<bool, IoError> {
        let mut s = self.stalled.lock().unwrap_or_else(|e| e.into_inner());
        if s.iter()
            .any(|(r, _)| r.prediction_id == record.prediction_id)
        {
            return Ok(false);
        }
        s.push((record.clone(), entry.clone()));
        Ok(true)
    }

    async fn read_chain(&self, id: &str) -> Result<Option<(CheckChain, String)>, IoError> {
        let c = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        Ok(c.get(id).map(|(chain, v)| (chain.clone(), v.to_string())))
    }

    async fn write_chain(
        &self,
        id: &str,
        chain: &CheckChain,
        etag: Option<&str>,
    ) -> Result<bool, IoError> {
        let mut c = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        let current = c.get(id).map(|(_, v)| v.to_string());
        if current.as_deref() != etag {
            return Ok(false);
        }
        let version = current.map_or(1, |v| v.parse::<u64>().unwrap_or(0) + 1);
        c.insert(id.to_owned(), (chain.clone(), version));
        Ok(true)
    }
}

/// A message sent to the events queue, with its FIFO ids.
type Sent = (String, Option<(String, String)>);

#[derive(Default)]
struct FakeQueues {
    events: Mutex<Vec<Sent>>,
    checks: Mutex<Vec<(Check, u64)>>,
}

impl Queues for FakeQueues {
    async fn send_event(
        &self,
        body: String,
        fifo: Option<(String, String)>,
    ) -> Result<(), IoError> {
        if let Ok(mut e) = self.events.lock() {
            e.push((body, fifo));
        }
        Ok(())
    }

    async fn send_check(&self, check: &Check, delay_secs: u64) -> Result<(), IoError> {
        if let Ok(mut c) = self.checks.lock() {
            c.push((check.clone(), delay_secs));
        }
        Ok(())
    }
}

fn cfg() -> ReconcilerConfig {
    ReconcilerConfig {
        bucket: "archive".into(),
        queue_url: "https://sqs.eu-west-1.amazonaws.com/1/events".into(),
        check_queue_url: "https://sqs.eu-west-1.amazonaws.com/1/checks".into(),
        api_key_secret_id: "hookvault/provider-api-key".into(),
        cache_ttl: Duration::from_secs(300),
        provider_api_url: "https://api.skytells.ai".into(),
        provider: "skytells".into(),
        http_timeout: Duration::from_secs(10),
        max_answer_bytes: crate::config::DEFAULT_MAX_ANSWER_BYTES,
        max_age_secs: 86_400,
        max_interval_secs: 60,
        sweep_enabled: true,
        sweep_lookback_secs: 3600,
    }
}

type Fake = Reconciler<FakeProvider, FakeArchive, FakeQueues>;

fn reconciler(cfg: ReconcilerConfig) -> Fake {
    Reconciler::new(
        FakeProvider::default(),
        FakeArchive::default(),
        FakeQueues::default(),
        cfg,
    )
}

const T0: i64 = 1_764_000_000_000;

fn check(attempt: u32) -> Check {
    Check {
        attempt,
        ..Check::first("skytells", "pred_1", T0, CheckSource::Api)
    }
}

fn fetched(status: &str, body: &[u8]) -> Fetched {
    Fetched::Prediction {
        status: PredictionStatus::from(status),
        body: body.to_vec(),
        url: "https://api.skytells.ai/v1/predictions/pred_1".into(),
        request_id: Some("req_1".into()),
        fetched_at_ms: T0 + 40_000,
    }
}

fn events(r: &Fake) -> Vec<Sent> {
    r.queues
        .events
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default()
}

fn stalled_of(r: &Fake) -> Vec<(StalledRecord, IndexEntry)> {
    r.archive
        .stalled
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default()
}

fn checks(r: &Fake) -> Vec<(Check, u64)> {
    r.queues
        .checks
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_terminal_prediction_the_archive_lacks_is_queued_as_a_reconciled_event() {
    let r = reconciler(cfg());
    let body = br#"{"id":"pred_1","status":"succeeded","output":["https://cdn/x.png"],"completed_at":"2025-11-24T16:00:30Z"}"#;
    r.provider.answer("pred_1", fetched("succeeded", body));
    let out = r.check(&check(0), "m1", T0 + 40_000).await;
    assert_eq!(
        out,
        Ok(Outcome::Injected {
            status: "succeeded".into(),
            event_id: "skytells:pred_1:succeeded:reconciled".into()
        })
    );
    let sent = events(&r);
    assert_eq!(sent.len(), 1);
    let (text, fifo) = &sent[0];
    assert_eq!(fifo, &None, "a standard queue gets no FIFO ids");
    let env = Envelope::from_json(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        env.inline_body(),
        Some(&body[..]),
        "the answer's exact bytes"
    );
    assert_eq!(env.provider, "skytells");
    assert!(env.signature_headers.is_empty());
    let evidence = Reconciled::from_message(text, &env.body_sha256)
        .unwrap_or_else(|| panic!("the evidence travels with it"));
    assert_eq!(
        (
            evidence.url.as_str(),
            evidence.request_id.as_deref(),
            evidence.fetched_at_ms
        ),
        (
            "https://api.skytells.ai/v1/predictions/pred_1",
            Some("req_1"),
            T0 + 40_000
        )
    );
    assert!(checks(&r).is_empty(), "done: no further check");
    // Failed and cancelled are terminal too.
    for status in ["failed", "cancelled"] {
        let r = reconciler(cfg());
        r.provider
            .answer("pred_1", fetched(status, b"{\"id\":\"pred_1\"}"));
        assert!(matches!(
            r.check(&check(3), "m", T0).await,
            Ok(Outcome::Injected { .. })
        ));
    }
}

#[tokio::test]
async fn a_prediction_the_archive_holds_is_not_fetched() {
    let r = reconciler(cfg());
    if let Ok(mut t) = r.archive.terminal.lock() {
        t.insert("pred_1".into());
    }
    assert_eq!(r.check(&check(0), "m", T0).await, Ok(Outcome::AlreadyKnown));
    assert!(r
        .provider
        .gets
        .lock()
        .map(|g| g.is_empty())
        .unwrap_or(false));
    assert!(events(&r).is_empty() && checks(&r).is_empty());
}

#[tokio::test]
async fn a_running_prediction_is_checked_again_with_back_off_up_to_the_longest_interval() {
    let r = reconciler(cfg());
    for attempt in 0..6 {
        r.provider.answer(
            "pred_1",
            fetched("processing", br#"{"id":"pred_1","status":"processing"}"#),
        );
        let out = r.check(&check(attempt), "m", T0 + 60_000).await;
        assert!(matches!(out, Ok(Outcome::Rescheduled { .. })), "{out:?}");
    }
    let sent = checks(&r);
    let delays: Vec<u64> = sent.iter().map(|(_, d)| *d).collect();
    assert_eq!(delays, vec![10, 20, 40, 60, 60, 60]);
    let attempts: Vec<u32> = sent.iter().map(|(c, _)| c.attempt).collect();
    assert_eq!(attempts, vec![1, 2, 3, 4, 5, 6]);
    assert!(sent.iter().all(|(c, _)| c.prediction_id == "pred_1"
        && c.submitted_at_ms == T0
        && c.source == CheckSource::Api));
    assert!(events(&r).is_empty());
}

/// The arithmetic behind CHECK_MAX_INTERVAL_SECS = 60 (config.rs): whenever a
/// prediction completes, the first check after it comes within 60 s, well inside the
/// provider's 300-second output window.
#[test]
fn with_a_60_second_interval_a_completion_is_seen_within_a_minute() {
    let first_delay = 30;
    let mut times = vec![first_delay];
    for attempt in 0..200 {
        let last = times.last().copied().unwrap_or(0);
        times.push(last + next_delay_secs(attempt, 60));
    }
    for completed in 0..3600u64 {
        let seen = times.iter().find(|t| **t >= completed).copied();
        let lag = seen.map(|s| s - completed);
        assert!(
            lag.is_some_and(|l| l <= 60),
            "completed at {completed}s: {lag:?}"
        );
    }
}

#[tokio::test]
async fn past_the_maximum_age_a_prediction_is_recorded_stalled() {
    let r = reconciler(ReconcilerConfig {
        max_age_secs: 600,
        ..cfg()
    });
    r.provider.answer(
        "pred_1",
        fetched("processing", br#"{"id":"pred_1","status":"processing"}"#),
    );
    // The next check (60 s away) would come past 600 s after submission.
    let now = T0 + 570_000;
    assert_eq!(r.check(&check(12), "m-12", now).await, Ok(Outcome::Stalled));
    assert!(checks(&r).is_empty(), "no further check");
    let stalled = stalled_of(&r);
    assert_eq!(stalled.len(), 1);
    let (record, entry) = &stalled[0];
    assert_eq!(record.prediction_id, "pred_1");
    assert_eq!(record.last_status.as_deref(), Some("processing"));
    assert_eq!(record.checks, 13);
    assert_eq!(record.submitted_at_ms, T0);
    assert_eq!(entry.outcome, IndexOutcome::Stalled);
    assert!(entry.reconciled);
    assert_eq!(entry.event_id, "skytells:pred_1:stalled");
    assert_eq!(entry.prediction_id.as_deref(), Some("pred_1"));
    assert_eq!(entry.message_id, "m-12");
    assert_eq!(entry.received_at_ms, now);
    // A prediction the provider never answered for stalls with the last error instead.
    let r = reconciler(ReconcilerConfig {
        max_age_secs: 600,
        ..cfg()
    });
    r.provider
        .answer("pred_1", Fetched::Transient("HTTP 503".into()));
    assert_eq!(r.check(&check(12), "m", now).await, Ok(Outcome::Stalled));
    let stalled = stalled_of(&r);
    assert_eq!(stalled[0].0.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(stalled[0].1.status.as_deref(), Some("stalled"));
}

#[tokio::test]
async fn a_young_404_is_checked_again_and_an_old_one_is_recorded_stalled() {
    // Just after creation a 404 may be the provider's read-after-create lag.
    let r = reconciler(cfg());
    r.provider.answer("pred_1", Fetched::NotFound);
    assert_eq!(
        r.check(&check(0), "m", T0 + 30_000).await,
        Ok(Outcome::Rescheduled {
            delay_secs: 10,
            why: NOT_FOUND_ERROR.into()
        })
    );
    assert_eq!(checks(&r).len(), 1);
    assert!(events(&r).is_empty());
    // Past NOT_FOUND_GRACE_SECS, it is recorded stalled, saying why.
    let r = reconciler(cfg());
    r.provider.answer("pred_1", Fetched::NotFound);
    let now = T0 + (NOT_FOUND_GRACE_SECS as i64) * 1000;
    assert_eq!(r.check(&check(8), "m-8", now).await, Ok(Outcome::Stalled));
    assert!(checks(&r).is_empty() && events(&r).is_empty());
    let stalled = stalled_of(&r);
    assert_eq!(stalled.len(), 1);
    let (record, entry) = &stalled[0];
    assert!(record
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("404")));
    assert_eq!(record.last_status, None);
    assert_eq!(record.checks, 9);
    assert_eq!(entry.outcome, IndexOutcome::Stalled);
    assert_eq!(entry.message_id, "m-8");
}

#[tokio::test]
async fn refused_keys_and_5xx_are_checked_again() {
    for (answer, why) in [
        (Fetched::Unauthorized(401), "HTTP 401"),
        (Fetched::Unauthorized(403), "HTTP 403"),
        (Fetched::Transient("HTTP 503".into()), "HTTP 503"),
        (Fetched::Transient("HTTP 429".into()), "HTTP 429"),
        (Fetched::Refused(400), "HTTP 400"),
    ] {
        let r = reconciler(cfg());
        r.provider.answer("pred_1", answer);
        assert_eq!(
            r.check(&check(1), "m", T0).await,
            Ok(Outcome::Rescheduled {
                delay_secs: 20,
                why: why.into()
            })
        );
        assert_eq!(checks(&r).len(), 1);
    }
}

#[tokio::test]
async fn a_large_answer_goes_by_claim_check_and_a_fifo_queue_gets_ids() {
    let r = reconciler(ReconcilerConfig {
        queue_url: "https://sqs.eu-west-1.amazonaws.com/1/events.fifo".into(),
        ..cfg()
    });
    let mut body = br#"{"id":"pred_1","status":"succeeded","logs":""#.to_vec();
    body.extend(std::iter::repeat_n(b'x', 300 * 1024));
    body.extend_from_slice(b"\"}");
    r.provider.answer("pred_1", fetched("succeeded", &body));
    assert!(matches!(
        r.check(&check(0), "m", T0).await,
        Ok(Outcome::Injected { .. })
    ));
    let written = r
        .archive
        .claim_checks
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].1, body);
    let (text, fifo) = events(&r).into_iter().next().unwrap_or_default();
    let env = Envelope::from_json(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        env.body,
        Body::S3(hookvault_core::envelope::S3Object {
            bucket: "archive".into(),
            key: written[0].0.clone()
        })
    );
    assert!(env.check_body(&body).is_ok());
    assert_eq!(fifo, Some((env.group_id(), env.dedup_id())));
}

fn record(id: &str, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.body = Some(body.into());
    m
}

#[tokio::test]
async fn a_batch_reports_only_the_checks_that_failed_on_aws() {
    let r = reconciler(cfg());
    let mut batch = SqsEvent::default();
    batch.records = vec![
        record("bad", "not a check"),
        record("ok", &check(0).to_json()),
    ];
    let out = r.handle_batch(&batch, None).await;
    assert!(
        out.batch_item_failures.is_empty(),
        "a bad message is dropped, an old 404 is recorded stalled"
    );
    // Past the deadline, nothing is started and every record comes back.
    let late = r
        .handle_batch(&batch, Some(std::time::Instant::now()))
        .await;
    assert_eq!(late.batch_item_failures.len(), 2);
    let down = Reconciler::new(
        FakeProvider::default(),
        FakeArchive {
            down: true,
            ..FakeArchive::default()
        },
        FakeQueues::default(),
        cfg(),
    );
    let out = down.handle_batch(&batch, None).await;
    let ids: Vec<String> = out
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(ids, vec!["ok".to_owned()]);
}

fn page(items: &[(&str, &str)], len: usize, last_page: Option<u32>) -> ListAnswer {
    Ok(ListPage {
        items: items
            .iter()
            .map(|(id, s)| Listed {
                id: (*id).into(),
                status: PredictionStatus::from(*s),
            })
            .collect(),
        len,
        last_page,
    })
}

#[tokio::test]
async fn the_sweep_checks_the_terminal_predictions_the_archive_lacks_page_after_page() {
    let r = reconciler(cfg());
    if let Ok(mut p) = r.provider.pages.lock() {
        p.push_back(page(
            &[("p1", "succeeded"), ("p2", "processing"), ("p3", "failed")],
            50,
            Some(2),
        ));
        p.push_back(page(
            &[("p4", "cancelled"), ("../x", "succeeded")],
            2,
            Some(2),
        ));
    }
    if let Ok(mut t) = r.archive.terminal.lock() {
        t.insert("p3".into());
    }
    let now = T0;
    let summary = r.sweep(now, None).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.checks_sent, vec!["p1".to_owned(), "p4".to_owned()]);
    assert_eq!(
        (summary.pages, summary.listed, summary.stopped_early),
        (2, 52, false)
    );
    let sent = checks(&r);
    assert!(sent.iter().all(|(c, d)| *d == 0
        && c.source == CheckSource::Sweep
        && c.attempt == 0
        && c.provider == "skytells"
        && c.submitted_at_ms == now));
    let lists = r
        .provider
        .lists
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    assert_eq!(lists.len(), 2);
    assert_eq!(
        lists[0],
        (
            1,
            50,
            "2025-11-24T15:00:00Z".into(),
            "2025-11-24T16:00:00Z".into()
        )
    );
    // A bare list ends with a page that is not full; a failed page is an error.
    let r = reconciler(cfg());
    if let Ok(mut p) = r.provider.pages.lock() {
        p.push_back(page(&[("p1", "succeeded")], 1, None));
    }
    let summary = r.sweep(now, None).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.pages, 1);
    let r = reconciler(cfg());
    assert!(matches!(
        r.sweep(now, None).await,
        Err(crate::sweep::SweepError::List { page: 1, .. })
    ));
}

#[tokio::test]
async fn without_sweep_enabled_the_schedule_lists_nothing() {
    let r = reconciler(ReconcilerConfig {
        sweep_enabled: false,
        ..cfg()
    });
    let summary = r.sweep(T0, None).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!summary.enabled);
    assert!(r
        .provider
        .lists
        .lock()
        .map(|l| l.is_empty())
        .unwrap_or(false));
}

fn running(r: &Fake, times: usize) {
    for _ in 0..times {
        r.provider.answer(
            "pred_1",
            fetched("processing", br#"{"id":"pred_1","status":"processing"}"#),
        );
    }
}

fn gets(r: &Fake) -> usize {
    r.provider.gets.lock().map(|g| g.len()).unwrap_or(0)
}

fn chain(r: &Fake) -> Option<CheckChain> {
    r.archive
        .chains
        .lock()
        .ok()
        .and_then(|c| c.get("pred_1").map(|(chain, _)| chain.clone()))
}

#[tokio::test]
async fn a_check_delivered_twice_keeps_one_chain() {
    let r = reconciler(cfg());
    running(&r, 6);
    let now = T0 + 30_000;
    assert!(matches!(
        r.check(&check(0), "m0", now).await,
        Ok(Outcome::Rescheduled { delay_secs: 10, .. })
    ));
    assert_eq!(
        chain(&r),
        Some(CheckChain {
            next_attempt: 1,
            due_at_ms: now + 10_000,
            message_id: "m0".into()
        })
    );
    // The same first check sent twice (another message): the chain expects attempt 1.
    assert_eq!(
        r.check(&check(0), "m0-copy", now + 1_000).await,
        Ok(Outcome::Followed {
            why: "processing".into()
        })
    );
    assert_eq!(checks(&r).len(), 1, "no second chain");
    // The same message received again (its send may have failed after the write): the
    // next check goes again, and the two copies of attempt 1 meet at the next step.
    assert!(matches!(
        r.check(&check(0), "m0", now + 2_000).await,
        Ok(Outcome::Rescheduled { .. })
    ));
    assert_eq!(checks(&r).len(), 2);
    assert!(matches!(
        r.check(&check(1), "m1", now + 10_000).await,
        Ok(Outcome::Rescheduled { delay_secs: 20, .. })
    ));
    assert!(matches!(
        r.check(&check(1), "m1-copy", now + 10_500).await,
        Ok(Outcome::Followed { .. })
    ));
    let attempts: Vec<u32> = checks(&r).iter().map(|(c, _)| c.attempt).collect();
    assert_eq!(attempts, vec![1, 1, 2], "one attempt 2: one chain");
    assert_eq!(chain(&r).map(|c| c.next_attempt), Some(2));
}

#[tokio::test]
async fn a_cli_check_while_a_chain_lives_makes_one_get_and_no_second_chain() {
    let r = reconciler(cfg());
    running(&r, 2);
    assert!(matches!(
        r.check(&check(0), "m0", T0 + 30_000).await,
        Ok(Outcome::Rescheduled { .. })
    ));
    // `hookvault reconcile` sends the api's first check again (attempt 0, delay 0).
    let cli = Check::first("skytells", "pred_1", T0, CheckSource::Api);
    assert!(matches!(
        r.check(&cli, "cli-1", T0 + 35_000).await,
        Ok(Outcome::Followed { .. })
    ));
    assert_eq!(gets(&r), 2, "its one GET");
    assert_eq!(checks(&r).len(), 1, "no second chain");
    // A terminal answer to it is queued all the same.
    let body = br#"{"id":"pred_1","status":"succeeded"}"#;
    r.provider.answer("pred_1", fetched("succeeded", body));
    assert!(matches!(
        r.check(&cli, "cli-2", T0 + 36_000).await,
        Ok(Outcome::Injected { .. })
    ));
    assert_eq!(events(&r).len(), 1);
    // A chain whose next check is over CHAIN_STALE_SECS late is dead: a first check
    // takes it over.
    running(&r, 1);
    let late = T0 + 40_000 + (CHAIN_STALE_SECS as i64) * 1000 + 1;
    assert!(matches!(
        r.check(&cli, "cli-3", late).await,
        Ok(Outcome::Rescheduled { .. })
    ));
    assert_eq!(checks(&r).len(), 2);
    assert_eq!(chain(&r).map(|c| c.message_id), Some("cli-3".to_owned()));
}

#[tokio::test]
async fn a_prediction_is_recorded_stalled_once() {
    let r = reconciler(ReconcilerConfig {
        max_age_secs: 600,
        ..cfg()
    });
    running(&r, 2);
    let now = T0 + 570_000;
    assert_eq!(r.check(&check(12), "m", now).await, Ok(Outcome::Stalled));
    let cli = Check::first("skytells", "pred_1", T0, CheckSource::Api);
    // Past its maximum age too (its next check would come after it).
    assert_eq!(
        r.check(&cli, "cli", T0 + 595_000).await,
        Ok(Outcome::Stalled)
    );
    assert_eq!(stalled_of(&r).len(), 1, "one stalled.json, one entry");
}

#[tokio::test]
async fn an_answer_too_large_is_recorded_stalled_at_once_not_fetched_all_day() {
    let r = reconciler(cfg());
    r.provider
        .answer("pred_1", Fetched::TooLarge(64 * 1024 * 1024));
    assert_eq!(
        r.check(&check(0), "m", T0 + 30_000).await,
        Ok(Outcome::Stalled)
    );
    assert!(checks(&r).is_empty(), "not fetched again");
    let stalled = stalled_of(&r);
    assert_eq!(stalled.len(), 1);
    assert!(stalled[0]
        .0
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("MAX_ANSWER_BYTES")));
}
