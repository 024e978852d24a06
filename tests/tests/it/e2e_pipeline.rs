//! The whole local pipeline: provider → edge (workerd) → SQS (moto) → poller → archiver
//! (under cargo-lambda's runtime emulator) → S3 (moto).

use std::time::{Duration, Instant};

use hookvault_core::records::Manifest;
use hookvault_core::Scheme;
use hookvault_localstack::poller::Poller;
use hookvault_localstack::provider::content_sha256;
use hookvault_localstack::stack::LocalStack;
use hookvault_localstack::{s3, sqs};

use crate::utils::{now, sign};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_ends_archived_and_a_poison_message_ends_in_the_dlq() {
    let mut stack = LocalStack::builder()
        .bucket("archive")
        .queue_with_dlq("events", 2)
        .provider()
        .edge_var("WEBHOOK_SECRETS", "pipeline-secret")
        .archiver(&[
            ("DOWNLOAD_ALLOWED_HOSTS", "127.0.0.1,cdn.skytells.ai"),
            ("UPLOAD_PART_BYTES", "5242880"),
            ("DOWNLOAD_READ_TIMEOUT_MS", "2000"),
        ])
        .start()
        .await
        .unwrap();
    let (sqs_client, s3_client) = (stack.sqs.clone(), stack.s3.clone());
    let queue = stack.queue_url().unwrap().to_owned();
    let dlq = stack.dlq_url().unwrap().to_owned();
    let archiver = stack.archiver.take().unwrap();
    let (cdn, edge) = (stack.provider().unwrap(), stack.edge().unwrap());

    let size = 6 * 1024 * 1024 + 7;
    let good = format!(
        r#"{{"id":"pred_pipe","status":"succeeded","output":["{}/files/v.mp4?size={size}"]}}"#,
        cdn.url
    )
    .into_bytes();
    // Its only output keeps failing: retried by SQS until the redrive policy moves it.
    let poison = format!(
        r#"{{"id":"pred_poison","status":"succeeded","output":["{}/flaky/503/1000/p.png"]}}"#,
        cdn.url
    )
    .into_bytes();
    let http = reqwest::Client::new();
    for body in [good, poison] {
        let mut req = http
            .post(format!("{}/webhooks/skytells", edge.url))
            .body(body.clone());
        for (k, v) in sign(Scheme::Skytells, "pipeline-secret", &body, now()) {
            req = req.header(k, v);
        }
        assert_eq!(req.send().await.unwrap().status().as_u16(), 202);
    }

    let poller = Poller {
        queue_url: queue.clone(),
        batch_size: 10,
        visibility_timeout: 1,
    };
    let started = Instant::now();
    let mut in_dlq = 0;
    while started.elapsed() < Duration::from_secs(240) {
        poller
            .poll(&sqs_client, &archiver)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", archiver.logs()));
        let manifest = s3::get(&s3_client, "archive", "predictions/pred_pipe/manifest.json")
            .await
            .unwrap();
        in_dlq += sqs::drain(&sqs_client, &dlq).await.unwrap().len();
        if manifest.is_some() && in_dlq > 0 {
            break;
        }
    }
    let (bytes, _) = s3::get(&s3_client, "archive", "predictions/pred_pipe/manifest.json")
        .await
        .unwrap()
        .expect("archived");
    let manifest: Manifest = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(manifest.outputs[0].sha256, content_sha256(size));
    assert_eq!(
        in_dlq, 1,
        "the poison message reached the DLQ after its receives"
    );
    assert!(s3::get(
        &s3_client,
        "archive",
        "predictions/pred_poison/manifest.json"
    )
    .await
    .unwrap()
    .is_none());
    let logs = archiver.logs();
    assert!(
        logs.contains("pred_pipe") && logs.contains("archived"),
        "the function's JSON logs:\n{logs}"
    );
}
