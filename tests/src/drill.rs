//! `hookvault-dev drill`: the operations runbook (`docs/operations.md`) on the local stack.
//! It breaks the archiver (a bucket name with a typo), sends webhooks that therefore end
//! in the DLQ, shows the permanent-failure metric the alarm watches, restarts the
//! archiver fixed, and has the operator replay the DLQ with the `hookvault` CLI; then it
//! checks that every event was archived exactly once (one version of each manifest in a
//! versioned bucket).
//!
//! Without `--yes` it waits at each step for the operator to run the printed commands in
//! another terminal; with `--yes` it runs them itself.

use std::io::BufRead;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookvault_core::Scheme;

use crate::operator::{depth, versions, Target};
use crate::stack::LocalStack;
use crate::{paths, StackError};

const SECRET: &str = "drill-webhook-secret";
const BUCKET: &str = "archive";
const IDS: [&str; 3] = ["pred_drill_1", "pred_drill_2", "pred_drill_3"];

fn err(e: impl std::fmt::Display) -> StackError {
    StackError::Start(format!("drill: {e}"))
}

fn step(text: &str) {
    println!("\n\x1b[1m== {text}\x1b[0m");
}

/// Waits for Enter, unless `yes`. The read blocks a thread of its own, so a Ctrl-C while
/// waiting still stops the drill (and its services) at once.
async fn pause(yes: bool, what: &str) {
    if yes {
        return;
    }
    println!("\n   … {what}, then press Enter here.");
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().lock().lines().next()).await;
}

/// `text` with every line indented under the drill's steps.
fn indent(text: &str) -> String {
    text.lines().map(|l| format!("   {l}\n")).collect()
}

async fn manifest_versions(s3: &aws_sdk_s3::Client, id: &str) -> Result<usize, StackError> {
    versions(s3, BUCKET, &format!("predictions/{id}/manifest.json")).await
}

/// Runs the drill; the report on success.
pub async fn run(yes: bool, serve: bool) -> Result<String, StackError> {
    let cli = paths::hookvault_cli()?;
    step("1. The local stack: moto (versioned bucket, queue with a DLQ after 2 receives), the edge, a CDN");
    // The edge keeps its own SQS and Retry-After settings, as deployed.
    let stack = LocalStack::builder()
        .queue_with_dlq("events", 2)
        .bucket(BUCKET)
        .versioned()
        .provider()
        .edge_var("WEBHOOK_SECRETS", SECRET)
        .edge_own_defaults()
        .start()
        .await?;
    let (sqs_client, s3_client) = (stack.sqs.clone(), &stack.s3);
    let queue = stack.queue_url()?.to_owned();
    let dlq = stack.dlq_url()?.to_owned();
    let target = Target {
        endpoint: stack.moto.endpoint.clone(),
        bucket: BUCKET.to_owned(),
        queue: queue.clone(),
        dlq: dlq.clone(),
    };
    // Runs the CLI as the operator would, when the drill drives itself (--yes).
    let operator = |args: &'static [&'static str]| {
        let target = target.clone();
        async move {
            if yes {
                let (_, stdout, stderr) = target.run(args).await?;
                print!("{stdout}{stderr}");
            }
            Ok::<(), StackError>(())
        }
    };
    let (cdn, edge) = (stack.provider()?, stack.edge()?);
    let vars = |extra: &[(&'static str, &'static str)]| {
        let mut vars = vec![
            ("UPLOAD_PART_BYTES", "5242880"),
            ("MAX_RECEIVE_COUNT", "2"),
            ("METRICS_NAMESPACE", "hookvault/local"),
        ];
        vars.extend_from_slice(extra);
        vars
    };

    step("2. Break it: the archiver starts with ARCHIVE_BUCKET=archive-typo");
    let broken = Arc::new(
        stack
            .start_archiver(&vars(&[("ARCHIVE_BUCKET", "archive-typo")]))
            .await?,
    );
    let http = reqwest::Client::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    for id in IDS {
        let body = format!(
            r#"{{"id":"{id}","status":"succeeded","output":["{}/files/{id}.png?size=4096"]}}"#,
            cdn.url
        )
        .into_bytes();
        let mut req = http
            .post(format!("{}/webhooks/skytells", edge.url))
            .body(body.clone());
        for (k, v) in
            hookvault_core::corpus::signed(Scheme::Skytells, SECRET, &body, now).map_err(err)?
        {
            req = req.header(k, v);
        }
        let status = req.send().await.map_err(err)?.status().as_u16();
        println!("   POST /webhooks/skytells ({id}): HTTP {status}");
    }
    let polling = crate::live::spawn_poller(
        sqs_client.clone(),
        queue.clone(),
        Arc::clone(&broken),
        1,
        false,
    );
    let started = Instant::now();
    while depth(&sqs_client, &dlq).await? < IDS.len() {
        if started.elapsed() > Duration::from_secs(300) {
            return Err(err(format!(
                "the DLQ did not fill in 300 s\n{}",
                broken.logs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    polling.abort();
    println!(
        "   every record failed twice and SQS moved all {} to the DLQ.",
        IDS.len()
    );

    step("3. The alarm's metric: PermanentFailures (ErrorId RETRIES_EXHAUSTED), EMF lines in the archiver's log");
    for line in broken
        .logs()
        .lines()
        .filter(|l| l.contains("\"PermanentFailures\"") || l.contains("moves it to the DLQ next"))
    {
        println!("   {}", line.trim());
    }
    drop(broken);

    let exports = format!(
        "{}\nexport PATH={}:$PATH",
        target.exports(),
        cli.parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    )
    .replace('\n', "\n   ");
    step("4. Look before you fix: in another terminal");
    println!("   {exports}\n   hookvault replay --dlq --dry-run");
    operator(&["replay", "--dlq", "--dry-run"]).await?;
    pause(yes, "run it").await;

    step("5. Fix it: the archiver restarts with ARCHIVE_BUCKET=archive");
    let fixed = Arc::new(stack.start_archiver(&vars(&[])).await?);
    let polling = crate::live::spawn_poller(
        sqs_client.clone(),
        queue.clone(),
        Arc::clone(&fixed),
        1,
        false,
    );

    step("6. Replay the DLQ");
    println!("   hookvault replay --dlq");
    operator(&["replay", "--dlq"]).await?;
    if !yes {
        println!("   (waiting for the three manifests; up to 10 minutes)");
    }
    let started = Instant::now();
    loop {
        let mut done = 0;
        for id in IDS {
            done += usize::from(manifest_versions(s3_client, id).await? > 0);
        }
        if done == IDS.len() && depth(&sqs_client, &queue).await? == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(err(format!(
                "{done} of {} archived after 10 minutes\n{}",
                IDS.len(),
                fixed.logs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    step("7. Every event archived once");
    let mut report = String::new();
    for id in IDS {
        let versions = manifest_versions(s3_client, id).await?;
        println!("   predictions/{id}/manifest.json: {versions} version(s)");
        if versions != 1 {
            return Err(err(format!("{id}: {versions} manifest versions, not 1")));
        }
    }
    // The runbook's last look, run and checked here: the log lists every event archived,
    // and a second replay of the DLQ finds nothing.
    println!("   hookvault events list --since 1h");
    let (code, listed, stderr) = target.run(&["events", "list", "--since", "1h"]).await?;
    print!("{}", indent(&listed));
    let (json_code, listed_json, _) = target
        .run(&["events", "list", "--since", "1h", "--json"])
        .await?;
    let code = code.max(json_code);
    for id in IDS {
        let archived = listed_json.lines().any(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .is_ok_and(|e| e["prediction_id"] == id && e["outcome"] == "archived")
        });
        if code != 0 || !archived {
            return Err(err(format!(
                "events list does not show {id} archived (exit {code}):\n{listed}{stderr}"
            )));
        }
    }
    println!("   hookvault replay --dlq   (a second time)");
    let (code, replayed, stderr) = target.run(&["replay", "--dlq", "--json"]).await?;
    // The summary, the last JSON line: nothing replayed, nothing failed.
    let summary = replayed
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("summary").cloned())
        .unwrap_or_default();
    println!(
        "   replayed {}, skipped {}, failed {}",
        summary["replayed"], summary["skipped"], summary["failed"]
    );
    if code != 0 || summary["replayed"] != 0 || summary["failed"] != 0 {
        return Err(err(format!(
            "the second replay --dlq found something to do (exit {code}):\n{replayed}{stderr}"
        )));
    }
    report.push_str("drill passed: every event in the DLQ was archived exactly once after the fix");
    if serve {
        println!(
            "\n   The stack stays up (the fixed archiver polls the queue) until Ctrl-C:\n   {exports}\n   edge (webhooks): {}/webhooks/skytells\n   webhook secret:  {SECRET}   (scheme skytells)\n   CDN (outputs):   {}/files/NAME.png?size=BYTES",
            edge.url, cdn.url
        );
        crate::live::until_stopped().await?;
    }
    polling.abort();
    Ok(report)
}
