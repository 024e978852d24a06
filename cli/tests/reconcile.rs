//! Issue 23's operator commands against moto (S3, SQS), run as a user runs them:
//! `hookvault events list --status reconciled|stalled` over an event log, and
//! `hookvault reconcile --since … [--dry-run] [--json]` over a ledger.
//!
//! moto comes from the tools venv (`scripts/lib/tools.sh`'s `hv_moto`, which
//! `scripts/test.sh` runs before the tests), started through `tests/moto/serve.py` on a
//! free port, one per test, stopped when the test ends.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use hookvault_core::archive;
use hookvault_core::reconcile::Check;
use hookvault_core::records::IndexOutcome;
use serde_json::{json, Value};

const BUCKET: &str = "hookvault-archive";

struct Moto {
    endpoint: String,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

impl Moto {
    fn start() -> Moto {
        let tools = std::env::var_os("HV_TOOLS")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join(".tools"));
        let python = tools.join("venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run `source scripts/lib/tools.sh && hv_moto` (scripts/test.sh does)",
            python.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(python)
            .arg(root().join("tests/moto/serve.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                let mut head = [0u8; 12];
                if s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "moto did not start on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .endpoint_url(&self.endpoint)
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("testing", "testing", None, None, "t"))
                .force_path_style(true)
                .build(),
        )
    }

    fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .endpoint_url(&self.endpoint)
                .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    "testing", "testing", None, None, "t",
                ))
                .build(),
        )
    }

    /// The `hookvault` binary against this moto, with `env` added.
    fn hookvault(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookvault"));
        cmd.args(args)
            .env_remove("HOOKVAULT_QUEUE_URL")
            .env_remove("HOOKVAULT_DLQ_URL")
            .env_remove("CHECK_QUEUE_URL")
            .env_remove("AWS_PROFILE")
            .env("HOOKVAULT_BUCKET", BUCKET)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn put(s3: &aws_sdk_s3::Client, key: &str, body: Vec<u8>) {
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(body.into())
        .send()
        .await
        .unwrap();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn rfc3339(ms: i64) -> String {
    hookvault_core::time::rfc3339(ms.div_euclid(1000))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_lines(out: &Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// An event log entry as the archiver (or, for `stalled`, the reconciler) writes it.
fn entry(
    n: u8,
    at_ms: i64,
    outcome: IndexOutcome,
    prediction: &str,
    reconciled: bool,
) -> (String, Value) {
    let sha = format!("{n:02x}").repeat(32);
    let event_id = match (outcome, reconciled) {
        (IndexOutcome::Stalled, _) => format!("skytells:{prediction}:stalled"),
        (_, true) => format!("skytells:{prediction}:succeeded:reconciled"),
        (_, false) => format!("skytells:{prediction}:succeeded"),
    };
    let mut e = json!({
        "event_id": event_id,
        "provider": "skytells",
        "received_at_ms": at_ms,
        "body_sha256": sha,
        "body_bytes": 100,
        "outcome": outcome.as_str(),
        "prediction_id": prediction,
        "message_id": format!("m-{n}"),
        "replayed": false,
        "recorded_at": rfc3339(at_ms),
    });
    if reconciled {
        e["reconciled"] = Value::Bool(true);
    }
    (archive::index_log_key(at_ms, "skytells", outcome, &sha), e)
}

fn event_ids(lines: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = lines
        .iter()
        .map(|l| l["event_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn events_list_filters_reconciled_and_stalled() {
    let moto = Moto::start();
    let now = now_ms();
    let entries = [
        entry(
            1,
            now - 600_000,
            IndexOutcome::Archived,
            "pred_signed",
            false,
        ),
        entry(
            2,
            now - 500_000,
            IndexOutcome::Archived,
            "pred_missed",
            true,
        ),
        entry(3, now - 400_000, IndexOutcome::Failed, "pred_late", true),
        entry(4, now - 300_000, IndexOutcome::Stalled, "pred_stuck", true),
        entry(
            5,
            now - 200_000,
            IndexOutcome::Ignored,
            "pred_signed",
            false,
        ),
    ];
    rt().block_on(async {
        let s3 = moto.s3();
        s3.create_bucket().bucket(BUCKET).send().await.unwrap();
        for (key, e) in &entries {
            put(&s3, key, e.to_string().into_bytes()).await;
        }
    });

    let list = |status: &[&str]| {
        let mut args = vec!["events", "list", "--since", "1h", "--json"];
        for s in status {
            args.extend(["--status", s]);
        }
        let out = moto.hookvault(&args, &[]);
        assert!(
            out.status.success(),
            "{status:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        event_ids(&json_lines(&out))
    };
    // Fetched from the provider because the webhook never came, in any state; not the
    // reconciler's own stalled notes.
    assert_eq!(
        list(&["reconciled"]),
        [
            "skytells:pred_late:succeeded:reconciled",
            "skytells:pred_missed:succeeded:reconciled"
        ]
    );
    assert_eq!(list(&["stalled"]), ["skytells:pred_stuck:stalled"]);
    // Several statuses: any of them.
    assert_eq!(
        list(&["reconciled", "ignored"]),
        [
            "skytells:pred_late:succeeded:reconciled",
            "skytells:pred_missed:succeeded:reconciled",
            "skytells:pred_signed:succeeded"
        ]
    );
    assert_eq!(list(&["archived"]).len(), 2);
    assert_eq!(list(&[]).len(), 5);

    // The text view marks reconciled events beside their state.
    let out = moto.hookvault(
        &["events", "list", "--since", "1h", "--status", "reconciled"],
        &[],
    );
    let text = stdout(&out);
    assert!(text.contains("archived+reconciled"), "{text}");
    assert!(text.contains("failed+reconciled"), "{text}");
    assert!(!text.contains("pred_stuck"), "{text}");

    // A status that is neither a state nor `reconciled` is a usage error naming both.
    let out = moto.hookvault(
        &["events", "list", "--since", "1h", "--status", "missed"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stalled") && err.contains("reconciled"),
        "{err}"
    );
}

/// The ledger of a test: submissions at various times, with and without a terminal state.
struct Ledger {
    queue_url: String,
    checked: [(String, i64); 2],
}

fn ledger(moto: &Moto) -> Ledger {
    let now = now_ms();
    // Whole seconds: the ledger's submitted_at is RFC 3339 to the second.
    let at = |ago_ms: i64| (now - ago_ms).div_euclid(1000) * 1000;
    let submission = |id: &str, at_ms: i64| {
        json!({
            "provider": "skytells",
            "prediction_id": id,
            "model": "truefusion",
            "submitted_at": rfc3339(at_ms),
            "caller": "3f2a9c0d1e8b7a65",
        })
        .to_string()
        .into_bytes()
    };
    let state = |id: &str, status: &str, terminal: bool| {
        json!({
            "id": id,
            "status": status,
            "terminal": terminal,
            "event_id": format!("skytells:{id}:{status}"),
            "body_sha256": "ab".repeat(32),
            "updated_at": rfc3339(now),
        })
        .to_string()
        .into_bytes()
    };
    rt().block_on(async {
        let s3 = moto.s3();
        s3.create_bucket().bucket(BUCKET).send().await.unwrap();
        let objects = [
            // Nothing archived: its webhook never came.
            (
                "pred_r1/submission.json",
                submission("pred_r1", at(1_800_000)),
            ),
            // Archived: nothing to do.
            (
                "pred_r2/submission.json",
                submission("pred_r2", at(1_200_000)),
            ),
            ("pred_r2/state.json", state("pred_r2", "succeeded", true)),
            ("pred_r2/manifest.json", b"{}".to_vec()),
            // Still running when last seen.
            (
                "pred_r3/submission.json",
                submission("pred_r3", at(600_000)),
            ),
            ("pred_r3/state.json", state("pred_r3", "processing", false)),
            // Submitted before --since (written just now all the same).
            (
                "pred_r4/submission.json",
                submission("pred_r4", at(3 * 3_600_000)),
            ),
            // Not a ledger record: skipped without a word.
            ("pred_r5/submission.json", b"not json".to_vec()),
        ];
        for (key, body) in objects {
            put(&s3, &format!("predictions/{key}"), body).await;
        }
        let q = moto
            .sqs()
            .create_queue()
            .queue_name("hookvault-checks")
            .send()
            .await
            .unwrap();
        Ledger {
            queue_url: q.queue_url().unwrap().to_owned(),
            checked: [
                ("pred_r1".to_owned(), at(1_800_000)),
                ("pred_r3".to_owned(), at(600_000)),
            ],
        }
    })
}

/// Every check on the queue (delay 0: visible at once), deleted.
fn drain_checks(moto: &Moto, queue_url: &str) -> Vec<Check> {
    rt().block_on(async {
        let sqs = moto.sqs();
        let mut out = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            if got.messages().is_empty() {
                break;
            }
            for m in got.messages() {
                out.push(Check::from_json(m.body().unwrap()).unwrap());
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        out.sort_by(|a, b| a.prediction_id.cmp(&b.prediction_id));
        out
    })
}

#[test]
fn reconcile_checks_each_submission_without_a_terminal_state() {
    let moto = Moto::start();
    let l = ledger(&moto);

    // --dry-run: says what it would send, sends nothing, needs no queue.
    let out = moto.hookvault(&["reconcile", "--since", "1h", "--dry-run", "--json"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let by_id = |id: &str| {
        lines
            .iter()
            .find(|l| l["prediction_id"] == id)
            .unwrap_or_else(|| panic!("no line for {id}: {lines:?}"))
    };
    assert_eq!(by_id("pred_r1")["action"], "checked");
    assert_eq!(by_id("pred_r1")["dry_run"], true);
    assert_eq!(by_id("pred_r2")["action"], "skipped");
    assert!(by_id("pred_r2")["detail"]
        .as_str()
        .unwrap()
        .contains("terminal: succeeded"));
    assert_eq!(by_id("pred_r3")["action"], "checked");
    assert!(by_id("pred_r3")["detail"]
        .as_str()
        .unwrap()
        .contains("holds processing"));
    assert!(lines.iter().all(|l| l["prediction_id"] != "pred_r4"));
    assert_eq!(
        lines[3],
        json!({"summary": {"checked": 2, "skipped": 1, "failed": 0, "dry_run": true}})
    );
    assert!(drain_checks(&moto, &l.queue_url).is_empty());

    // Without --dry-run it needs the check queue: a usage error that names it.
    let out = moto.hookvault(&["reconcile", "--since", "1h"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CHECK_QUEUE_URL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A check for each, at once, as the reconciler reads them.
    let out = moto.hookvault(
        &[
            "reconcile",
            "--since",
            "1h",
            "--check-queue-url",
            &l.queue_url,
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.contains("checked      pred_r1"), "{text}");
    assert!(text.contains("skipped      pred_r2"), "{text}");
    assert!(
        text.trim_end().ends_with("checked 2, skipped 1, failed 0"),
        "{text}"
    );
    let checks = drain_checks(&moto, &l.queue_url);
    assert_eq!(checks.len(), 2, "{checks:?}");
    for (check, (id, at_ms)) in checks.iter().zip(&l.checked) {
        assert_eq!(&check.prediction_id, id);
        assert_eq!(check.provider, "skytells");
        assert_eq!(check.submitted_at_ms, *at_ms);
        assert_eq!(check.attempt, 0);
        assert_eq!(check.source, hookvault_core::reconcile::CheckSource::Cli);
    }

    // The queue from CHECK_QUEUE_URL, as docs/operations.md exports it.
    let out = moto.hookvault(
        &["reconcile", "--since", "45m", "--json"],
        &[("CHECK_QUEUE_URL", l.queue_url.as_str())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checks = drain_checks(&moto, &l.queue_url);
    assert_eq!(
        checks
            .iter()
            .map(|c| c.prediction_id.as_str())
            .collect::<Vec<_>>(),
        ["pred_r1", "pred_r3"]
    );
}

#[test]
fn reconcile_reports_a_check_it_could_not_send() {
    let moto = Moto::start();
    let _ = ledger(&moto);
    let missing = format!("{}/123456789012/no-such-queue", moto.endpoint);
    let out = moto.hookvault(
        &[
            "reconcile",
            "--since",
            "1h",
            "--check-queue-url",
            &missing,
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let lines = json_lines(&out);
    assert_eq!(
        lines.last().unwrap(),
        &json!({"summary": {"checked": 0, "skipped": 1, "failed": 2, "dry_run": false}})
    );
    // A --since in the future is a usage error.
    let out = moto.hookvault(
        &["reconcile", "--since", "2999-01-01T00:00:00Z", "--dry-run"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
}

/// `events/reconciler/checks.json` holds what the api, the reconciler and this command put
/// on the check queue: each body reads as a check, from the check queue.
#[test]
fn the_check_fixture_holds_checks() {
    let text = std::fs::read_to_string(root().join("events/reconciler/checks.json")).unwrap();
    let event: Value = serde_json::from_str(&text).unwrap();
    let records = event["Records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    for r in records {
        let check = Check::from_json(r["body"].as_str().unwrap()).unwrap();
        assert!(check.prediction_id.starts_with("pred_"), "{check:?}");
        assert_eq!(r["eventSource"], "aws:sqs");
        assert!(r["eventSourceARN"]
            .as_str()
            .unwrap()
            .ends_with(":hookvault-checks"));
    }
}

#[test]
fn reconcile_json_help_says_one_line_per_prediction() {
    let out = Command::new(env!("CARGO_BIN_EXE_hookvault"))
        .args(["reconcile", "--help"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(out.status.success(), "{help}");
    assert!(
        help.contains("`reconcile`: one per prediction"),
        "--json's help: {help}"
    );
    assert!(
        help.contains("`replay` and `reconcile` end with a summary line"),
        "{help}"
    );
}
