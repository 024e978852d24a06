//! The operator's runbook on the local stack (`docs/operations.md`): break the archiver,
//! see the failure metric, fix it, replay, and find every event archived once. The
//! `hookvault` CLI runs as a user runs it, with the standard AWS credential chain pointed
//! at moto by the environment.

use std::time::{Duration, Instant};

use hookvault_core::records::{IndexEntry, Manifest};
use hookvault_core::Scheme;
use hookvault_localstack::lambda::LambdaFunction;
use hookvault_localstack::poller::Poller;
use hookvault_localstack::provider::Provider;
use hookvault_localstack::stack::LocalStack;
use hookvault_localstack::{operator, s3};
use serde_json::Value;

use crate::utils::{now, sign};

const SECRET: &str = "operations-secret";

struct Ops {
    stack: LocalStack,
    queue: String,
    dlq: String,
    cdn: Provider,
}

impl std::ops::Deref for Ops {
    type Target = LocalStack;
    fn deref(&self) -> &LocalStack {
        &self.stack
    }
}

impl Ops {
    async fn start(max_receives: u32) -> Ops {
        let mut stack = LocalStack::builder()
            .queue_with_dlq("events", max_receives)
            // Versioned, so "archived once" is countable: one version per manifest.
            .bucket("archive")
            .versioned()
            .provider()
            .edge_var("WEBHOOK_SECRETS", SECRET)
            .start()
            .await
            .unwrap();
        let queue = stack.queue_url().unwrap().to_owned();
        let dlq = stack.dlq_url().unwrap().to_owned();
        let cdn = stack.provider.take().unwrap();
        Ops {
            stack,
            queue,
            dlq,
            cdn,
        }
    }

    async fn archiver(&self, extra: &[(&str, &str)]) -> LambdaFunction {
        let mut vars = vec![
            ("DOWNLOAD_ALLOWED_HOSTS", "127.0.0.1"),
            ("UPLOAD_PART_BYTES", "5242880"),
            ("DOWNLOAD_READ_TIMEOUT_MS", "2000"),
            ("METRICS_NAMESPACE", "hookvault/e2e"),
        ];
        vars.extend_from_slice(extra);
        self.stack.start_archiver(&vars).await.unwrap()
    }

    /// POSTs a signed prediction webhook to the edge; 202 expected.
    async fn send(&self, id: &str, output: &str, traceparent: Option<&str>) {
        let body = format!(r#"{{"id":"{id}","status":"succeeded","output":{output}}}"#);
        self.send_body(body.as_bytes(), traceparent).await;
    }

    /// POSTs `body`, signed, to the edge; 202 expected.
    async fn send_body(&self, body: &[u8], traceparent: Option<&str>) {
        let body = body.to_vec();
        let id = String::from_utf8_lossy(&body).into_owned();
        let mut req = reqwest::Client::new()
            .post(format!("{}/webhooks/skytells", self.edge().unwrap().url))
            .body(body.clone());
        for (k, v) in sign(Scheme::Skytells, SECRET, &body, now()) {
            req = req.header(k, v);
        }
        if let Some(t) = traceparent {
            req = req.header("traceparent", t);
        }
        assert_eq!(req.send().await.unwrap().status().as_u16(), 202, "{id}");
    }

    /// A CDN output URL the local archiver may download.
    fn file(&self, name: &str) -> String {
        format!(r#"["{}/files/{name}.png?size=2048"]"#, self.cdn.url)
    }

    fn poller(&self) -> Poller {
        Poller {
            queue_url: self.queue.clone(),
            batch_size: 10,
            visibility_timeout: 1,
        }
    }

    /// Polls with `archiver` until `done` holds (or panics after 300 s, with the logs; the
    /// first invoke waits for `cargo lambda watch` to start the function).
    async fn poll_until<F, Fut>(&self, archiver: &LambdaFunction, what: &str, done: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while !done().await {
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "{what}: not after 300 s\n{}",
                archiver.logs()
            );
            self.poller()
                .poll(&self.sqs, archiver)
                .await
                .unwrap_or_else(|e| panic!("{e}\n{}", archiver.logs()));
        }
    }

    async fn depth(&self, queue: &str) -> usize {
        operator::depth(&self.sqs, queue).await.unwrap()
    }

    async fn manifest(&self, id: &str) -> Option<Manifest> {
        s3::get(
            &self.s3,
            "archive",
            &format!("predictions/{id}/manifest.json"),
        )
        .await
        .unwrap()
        .map(|(b, _)| serde_json::from_slice(&b).unwrap())
    }

    /// How many versions of the manifest of `id` were written.
    async fn manifest_versions(&self, id: &str) -> usize {
        operator::versions(
            &self.s3,
            "archive",
            &format!("predictions/{id}/manifest.json"),
        )
        .await
        .unwrap()
    }

    /// Runs `hookvault ARGS --json` against this stack; (exit code, JSON lines).
    async fn cli(&self, args: &[&str]) -> (i32, Vec<Value>) {
        let target = operator::Target {
            endpoint: self.moto.endpoint.clone(),
            bucket: "archive".to_owned(),
            queue: self.queue.clone(),
            dlq: self.dlq.clone(),
        };
        let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
        let (code, stdout, stderr) = target.run(&args).await.unwrap();
        let lines = stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("hookvault {args:?}: not JSON ({e}): {l}\nstderr: {stderr}")
                })
            })
            .collect();
        (code, lines)
    }
}

/// The summary line of a replay: (replayed, skipped, failed).
fn summary(lines: &[Value]) -> (u64, u64, u64) {
    let s = &lines.last().expect("a summary line")["summary"];
    (
        s["replayed"].as_u64().unwrap(),
        s["skipped"].as_u64().unwrap(),
        s["failed"].as_u64().unwrap(),
    )
}

/// The EMF lines the archiver printed for `metric`.
fn emf_lines(logs: &str, metric: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|l| l.find("{\"").map(|i| &l[i..]))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some() && v.get(metric).is_some())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_archiver_fills_the_dlq_and_replay_dlq_archives_each_event_once() {
    let ops = Ops::start(2).await;
    // The misconfiguration: a bucket that does not exist (a typo in ARCHIVE_BUCKET, or
    // a role without access): every record fails, and SQS moves it to the DLQ.
    let broken = ops
        .archiver(&[
            ("ARCHIVE_BUCKET", "archive-typo"),
            ("MAX_RECEIVE_COUNT", "2"),
        ])
        .await;
    let ids = ["pred_dlq_1", "pred_dlq_2", "pred_dlq_3"];
    for id in ids {
        ops.send(id, &ops.file(id), None).await;
    }
    ops.poll_until(&broken, "three messages in the DLQ", || async {
        ops.depth(&ops.dlq).await == 3
    })
    .await;
    // The last receive of each was reported as a permanent failure, by error id.
    let logs = broken.logs();
    let failures = emf_lines(&logs, "PermanentFailures");
    assert_eq!(
        failures
            .iter()
            .filter(|v| v["ErrorId"] == "RETRIES_EXHAUSTED")
            .count(),
        3,
        "{logs}"
    );
    assert_eq!(
        failures[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "hookvault/e2e"
    );
    assert!(
        logs.contains("moves it to the DLQ next"),
        "the last failure is logged at error level:\n{logs}"
    );
    drop(broken);
    for id in ids {
        assert!(ops.manifest(id).await.is_none());
    }

    // A dry run changes nothing.
    let (code, lines) = ops.cli(&["replay", "--dlq", "--dry-run"]).await;
    assert_eq!((code, summary(&lines)), (0, (3, 0, 0)), "{lines:?}");
    assert_eq!(ops.depth(&ops.queue).await, 0);

    // Fixed: the right bucket. The DLQ goes back to the queue, and everything is archived.
    let fixed = ops.archiver(&[("MAX_RECEIVE_COUNT", "2")]).await;
    let (code, lines) = ops.cli(&["replay", "--dlq"]).await;
    assert_eq!((code, summary(&lines)), (0, (3, 0, 0)), "{lines:?}");
    assert_eq!(
        ops.depth(&ops.dlq).await,
        0,
        "deleted from the DLQ once queued"
    );
    ops.poll_until(&fixed, "three manifests", || async {
        let mut all = true;
        for id in ids {
            all &= ops.manifest(id).await.is_some();
        }
        all
    })
    .await;
    // Drain whatever is left, then: each archived exactly once.
    ops.poll_until(&fixed, "an empty queue", || async {
        ops.depth(&ops.queue).await == 0
    })
    .await;
    for id in ids {
        assert_eq!(ops.manifest_versions(id).await, 1, "{id} archived once");
    }
    // A second replay finds nothing to do.
    let (code, lines) = ops.cli(&["replay", "--dlq"]).await;
    assert_eq!((code, summary(&lines)), (0, (0, 0, 0)), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_since_requeues_only_what_matches_and_a_second_replay_changes_nothing() {
    let ops = Ops::start(3).await;
    // The misconfiguration: the CDN's host is not on DOWNLOAD_ALLOWED_HOSTS.
    let broken = ops
        .archiver(&[("DOWNLOAD_ALLOWED_HOSTS", "cdn.example.invalid")])
        .await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    ops.send(
        "pred_log_1",
        &ops.file("a"),
        Some(&format!("00-{trace}-00f067aa0ba902b7-01")),
    )
    .await;
    ops.send("pred_log_2", &ops.file("b"), None).await;
    ops.send("pred_log_text", r#""a caption, no file""#, None)
        .await;
    // Settled on arrival, whatever the misconfiguration: the provider's failure, a
    // progress update, and a body that is not a prediction.
    ops.send_body(
        br#"{"id":"pred_log_failed","status":"failed","error":"out of memory"}"#,
        None,
    )
    .await;
    ops.send_body(br#"{"id":"pred_log_busy","status":"processing"}"#, None)
        .await;
    ops.send_body(br#"{"hello":"not a prediction"}"#, None)
        .await;
    let logged = || async {
        s3::keys(&ops.s3, "archive", "index/log/")
            .await
            .unwrap()
            .len()
    };
    ops.poll_until(&broken, "six events logged", || async {
        logged().await == 6
    })
    .await;
    let refused = emf_lines(&broken.logs(), "PermanentFailures");
    assert_eq!(
        refused
            .iter()
            .filter(|v| v["ErrorId"] == "OUTPUT_URL_REFUSED")
            .count(),
        2,
        "{}",
        broken.logs()
    );
    drop(broken);

    // The log: two failed, one archived; filters by state and prediction.
    let (code, all) = ops.cli(&["events", "list", "--since", "1h"]).await;
    assert_eq!(code, 0, "{all:?}");
    let state = |lines: &[Value], id: &str| {
        lines
            .iter()
            .find(|e| e["prediction_id"] == id)
            .map(|e| e["outcome"].as_str().unwrap().to_owned())
    };
    assert_eq!(all.len(), 6, "{all:?}");
    assert_eq!(state(&all, "pred_log_1").as_deref(), Some("failed"));
    assert_eq!(state(&all, "pred_log_text").as_deref(), Some("archived"));
    assert_eq!(
        state(&all, "pred_log_failed").as_deref(),
        Some("prediction_failed")
    );
    assert_eq!(state(&all, "pred_log_busy").as_deref(), Some("ignored"));
    assert_eq!(
        all.iter().filter(|e| e["outcome"] == "kept").count(),
        1,
        "{all:?}"
    );
    let (code, failed) = ops
        .cli(&["events", "list", "--since", "1h", "--status", "failed"])
        .await;
    assert_eq!((code, failed.len()), (0, 2), "{failed:?}");
    assert!(failed.iter().all(|e| e["error_id"] == "OUTPUT_URL_REFUSED"));
    let (code, one) = ops
        .cli(&[
            "events",
            "list",
            "--since",
            "1h",
            "--prediction",
            "pred_log_1",
        ])
        .await;
    assert_eq!((code, one.len()), (0, 1), "{one:?}");
    let first: IndexEntry = serde_json::from_value(one[0].clone()).unwrap();
    let (code, none) = ops
        .cli(&["events", "list", "--since", "1h", "--provider", "github"])
        .await;
    // An empty answer counts only from a command that succeeded.
    assert_eq!(code, 0, "{none:?}");
    assert!(none.is_empty());

    // A dry run of one prediction: counted, nothing queued.
    let (code, lines) = ops
        .cli(&[
            "replay",
            "--since",
            "1h",
            "--status",
            "failed",
            "--prediction",
            "pred_log_1",
            "--dry-run",
        ])
        .await;
    assert_eq!((code, summary(&lines)), (0, (1, 0, 0)), "{lines:?}");
    assert_eq!(ops.depth(&ops.queue).await, 0);

    // Fixed; only the failed events are re-enqueued, and archived.
    let fixed = ops.archiver(&[]).await;
    let (code, lines) = ops
        .cli(&["replay", "--since", "1h", "--status", "failed"])
        .await;
    assert_eq!((code, summary(&lines)), (0, (2, 0, 0)), "{lines:?}");
    ops.poll_until(&fixed, "both archived", || async {
        ops.manifest("pred_log_1").await.is_some() && ops.manifest("pred_log_2").await.is_some()
    })
    .await;
    ops.poll_until(&fixed, "an empty queue", || async {
        ops.depth(&ops.queue).await == 0
    })
    .await;

    // The event's trace id went from the sender's traceparent to the manifest.
    let manifest = ops.manifest("pred_log_1").await.unwrap();
    assert_eq!(manifest.trace_id.as_deref(), Some(trace));
    assert_eq!(first.trace_id.as_deref(), Some(trace));
    assert!(
        fixed
            .logs()
            .lines()
            .any(|l| l.contains(trace) && l.contains("\"requestId\"")),
        "the archiver's lines carry the trace id beside the request id:\n{}",
        fixed.logs()
    );

    // A second replay of everything changes nothing: three are archived, three were
    // settled on arrival; nothing is queued and the log gains no entry.
    let entries_before = logged().await;
    let (code, lines) = ops.cli(&["replay", "--since", "1h"]).await;
    assert_eq!((code, summary(&lines)), (0, (0, 6, 0)), "{lines:?}");
    assert_eq!(ops.depth(&ops.queue).await, 0);
    assert_eq!(logged().await, entries_before);
    // --force replays the settled ones too (a dry run: counted, nothing queued).
    let (code, lines) = ops
        .cli(&["replay", "--since", "1h", "--force", "--dry-run"])
        .await;
    assert_eq!((code, summary(&lines)), (0, (6, 0, 0)), "{lines:?}");
    assert_eq!(ops.depth(&ops.queue).await, 0);
    for id in ["pred_log_1", "pred_log_2", "pred_log_text"] {
        assert_eq!(ops.manifest_versions(id).await, 1, "{id}");
    }

    // `events show` verifies the stored bytes again with the secret, and shows the
    // archive state.
    let (code, shown) = ops
        .cli(&["events", "show", &first.event_id, "--secret", SECRET])
        .await;
    assert_eq!(code, 0, "{shown:?}");
    assert_eq!(shown[0]["signature"]["verified"], true, "{shown:?}");
    assert_eq!(shown[0]["entry"]["outcome"], "archived");
    assert!(shown[0]["archive"]["manifest"].is_string(), "{shown:?}");
    let (code, wrong) = ops
        .cli(&[
            "events",
            "show",
            &first.event_id,
            "--secret",
            "not-the-secret",
        ])
        .await;
    assert_eq!(code, 1);
    assert_eq!(wrong[0]["signature"]["verified"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_failing_every_receive_is_in_the_log_as_dead_lettered() {
    let ops = Ops::start(2).await;
    let archiver = ops.archiver(&[("MAX_RECEIVE_COUNT", "2")]).await;
    // The CDN answers 503 to this file for far longer than two receives' retries.
    let output = format!(
        r#"["{}/flaky/503/1000/pred_dead_1.png?size=2048"]"#,
        ops.cdn.url
    );
    ops.send("pred_dead_1", &output, None).await;
    ops.poll_until(&archiver, "the message in the DLQ", || async {
        ops.depth(&ops.dlq).await == 1
    })
    .await;

    // Findable while it waits in the DLQ: listed by state, shown by event id.
    let (code, listed) = ops
        .cli(&[
            "events",
            "list",
            "--since",
            "1h",
            "--status",
            "dead_lettered",
        ])
        .await;
    assert_eq!(code, 0);
    assert_eq!(listed.len(), 1, "{listed:?}\n{}", archiver.logs());
    assert_eq!(listed[0]["prediction_id"], "pred_dead_1");
    assert_eq!(listed[0]["error_id"], "RETRIES_EXHAUSTED");
    let event_id = listed[0]["event_id"].as_str().unwrap().to_owned();
    let (code, shown) = ops
        .cli(&["events", "show", &event_id, "--secret", SECRET])
        .await;
    assert_eq!(code, 0, "{shown:?}");
    assert_eq!(shown[0]["entry"]["outcome"], "dead_lettered");
    assert_eq!(shown[0]["signature"]["verified"], true, "{shown:?}");

    // Replayable either way: from the DLQ, or, asked for by name, from its raw event in
    // the log. A replay of the log's window leaves it to the DLQ.
    let (code, lines) = ops.cli(&["replay", "--dlq", "--dry-run"]).await;
    assert_eq!((code, summary(&lines)), (0, (1, 0, 0)), "{lines:?}");
    let (code, lines) = ops.cli(&["replay", "--since", "1h", "--dry-run"]).await;
    assert_eq!((code, summary(&lines)), (0, (0, 1, 0)), "{lines:?}");
    let (code, lines) = ops
        .cli(&[
            "replay",
            "--since",
            "1h",
            "--status",
            "dead_lettered",
            "--dry-run",
        ])
        .await;
    assert_eq!((code, summary(&lines)), (0, (1, 0, 0)), "{lines:?}");
}

/// Out-of-order webhooks of one prediction, through the deployed archiver: `events show`
/// given the prediction id lists each of its events, oldest first, with what became of it
/// and the state the prediction holds; `events list --status conflicting` finds the
/// contradicting one, and a replay of the window leaves it alone (settled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_show_takes_a_prediction_id_and_lists_its_events_in_order() {
    let ops = Ops::start(5).await;
    let archiver = ops.archiver(&[]).await;
    let id = "pred_order_1";
    let bodies = [
        format!(
            r#"{{"type":"prediction.succeeded","data":{{"id":"{id}","status":"succeeded","model":{{"name":"truefusion","type":"image"}},"output":{}}}}}"#,
            ops.file("order")
        ),
        format!(
            r#"{{"type":"prediction.started","data":{{"id":"{id}","status":"started","output":null}}}}"#
        ),
        format!(
            r#"{{"type":"prediction.failed","data":{{"id":"{id}","status":"failed","error":"late and wrong"}}}}"#
        ),
    ];
    for body in &bodies {
        ops.send_body(body.as_bytes(), None).await;
        // One at a time, in this order: the archiver sees them as the provider sent them.
        let before = ops.depth(&ops.queue).await;
        assert_eq!(before, 1);
        ops.poll_until(&archiver, "the event taken", || async {
            ops.depth(&ops.queue).await == 0
        })
        .await;
    }
    let (code, shown) = ops.cli(&["events", "show", id, "--secret", SECRET]).await;
    assert_eq!(code, 0, "{shown:?}\n{}", archiver.logs());
    let outcomes: Vec<&str> = shown
        .iter()
        .map(|s| s["entry"]["outcome"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        outcomes,
        ["archived", "ignored", "conflicting"],
        "{shown:?}"
    );
    for s in &shown {
        assert_eq!(s["state"]["status"], "succeeded", "{s}");
        assert_eq!(s["signature"]["verified"], true, "{s}");
        assert!(s["archive"]["manifest"].is_string(), "{s}");
    }
    assert_eq!(ops.manifest_versions(id).await, 1);
    let (code, listed) = ops
        .cli(&["events", "list", "--since", "1h", "--status", "conflicting"])
        .await;
    assert_eq!(code, 0);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["status"], "failed");
    let (code, lines) = ops.cli(&["replay", "--since", "1h", "--dry-run"]).await;
    assert_eq!((code, summary(&lines)), (0, (0, 3, 0)), "{lines:?}");
}
