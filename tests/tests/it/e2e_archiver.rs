//! The archiver against moto's S3 and the stand-in provider's CDN, in process: the
//! function's handler with real HTTP downloads and real S3 multipart uploads.

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use hookvault_archiver::handler::Outcome;
use hookvault_archiver::{Archiver, ArchiverConfig};
use hookvault_core::envelope::Envelope;
use hookvault_core::records::{FailureRecord, Manifest};
use hookvault_core::retry::RetryPolicy;
use hookvault_core::url_guard::UrlGuard;
use hookvault_core::{KeySlot, Scheme, Verified};
use hookvault_localstack::moto::Moto;
use hookvault_localstack::provider::{content_sha256, Provider};
use hookvault_localstack::s3;
use serde_json::json;

const BUCKET: &str = "archive";
const MIB: u64 = 1024 * 1024;

fn config() -> ArchiverConfig {
    ArchiverConfig {
        bucket: BUCKET.to_owned(),
        // The local CDN is allowed explicitly; everything else keeps the production rules.
        guard: UrlGuard::new(["127.0.0.1", "cdn.skytells.ai"])
            .allow_http(true)
            .allow_loopback(true),
        max_output_bytes: 64 * MIB,
        connect_timeout_ms: 2_000,
        read_timeout_ms: 1_000,
        part_bytes: 5 * MIB as usize,
        parts_in_flight: 2,
        outputs_in_flight: 2,
    }
}

struct Rig {
    _moto: Moto,
    s3: aws_sdk_s3::Client,
    cdn: Provider,
    archiver: Archiver,
}

impl Rig {
    async fn start() -> Rig {
        let moto = Moto::start(None).await.unwrap();
        let s3 = s3::client(&moto.endpoint);
        s3::create_bucket(&s3, BUCKET).await.unwrap();
        let cdn = Provider::start().await.unwrap();
        let archiver = Archiver::new(s3.clone(), config()).unwrap();
        let fast = RetryPolicy {
            base: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            ..RetryPolicy::downloads()
        };
        let downloader = hookvault_archiver::download::Downloader::new(&config())
            .unwrap()
            .with_policy(fast);
        Rig {
            _moto: moto,
            s3,
            cdn,
            archiver: archiver.with_downloader(downloader),
        }
    }

    /// Processes one record with this message id and body.
    async fn one(
        &self,
        message_id: &str,
        body: String,
    ) -> Result<Outcome, hookvault_archiver::handler::Transient> {
        self.archiver
            .process(&event(&[(message_id, body)]).records[0], None)
            .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.cdn.url)
    }

    async fn object(&self, key: &str) -> Option<(Vec<u8>, Option<String>)> {
        s3::get(&self.s3, BUCKET, key).await.unwrap()
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.object(key)
            .await
            .map(|(b, _)| serde_json::from_slice(&b).unwrap())
    }
}

fn envelope(prediction: serde_json::Value) -> String {
    let verified = Verified {
        key_id: "k1".into(),
        slot: KeySlot::Current,
        delivery_id: None,
        timestamp: None,
    };
    let body = serde_json::to_vec(&prediction).unwrap();
    Envelope::new(
        "skytells",
        Scheme::Skytells,
        &verified,
        &body,
        1_800_000_000_000,
    )
    .unwrap()
    .to_json()
}

fn event(records: &[(&str, String)]) -> SqsEvent {
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|(id, body)| json!({ "messageId": id, "body": body }))
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn succeeded(id: &str, outputs: &[String]) -> String {
    envelope(
        json!({ "id": id, "status": "succeeded", "model": "stable-video-6s", "output": outputs }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_output_is_stored_byte_for_byte_with_its_sha256_and_the_manifest_last() {
    let rig = Rig::start().await;
    let outputs = vec![
        rig.url("/files/image.png?size=1024"),
        rig.url(&format!("/files/video.mp4?size={}", 12 * MIB + 123)), // three parts: multipart
        rig.url("/files/raw?size=70000"),                              // no extension: .bin
    ];
    let resp = rig
        .archiver
        .handle(event(&[("m1", succeeded("pred_a", &outputs))]), None)
        .await;
    assert!(
        resp.batch_item_failures.is_empty(),
        "{:?}",
        resp.batch_item_failures
    );

    let manifest: Manifest = rig
        .json("predictions/pred_a/manifest.json")
        .await
        .expect("manifest");
    assert_eq!(
        (
            manifest.id.as_str(),
            manifest.status.as_str(),
            manifest.model.as_deref()
        ),
        ("pred_a", "succeeded", Some("stable-video-6s"))
    );
    let expected = [
        ("predictions/pred_a/0.png", 1024, "image/png"),
        ("predictions/pred_a/1.mp4", 12 * MIB + 123, "video/mp4"),
        (
            "predictions/pred_a/2.bin",
            70000,
            "application/octet-stream",
        ),
    ];
    assert_eq!(manifest.outputs.len(), 3);
    for (record, (key, size, ct)) in manifest.outputs.iter().zip(expected) {
        let (bytes, content_type) = rig
            .object(key)
            .await
            .unwrap_or_else(|| panic!("{key} missing"));
        assert_eq!(
            (record.key.as_str(), record.bytes, bytes.len() as u64),
            (key, size, size)
        );
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        assert_eq!(sha, content_sha256(size), "{key}: stored bytes");
        assert_eq!(record.sha256, sha, "{key}: manifest sha256");
        assert_eq!(content_type.as_deref(), Some(ct));
        assert!(
            !record.source_url.contains('?'),
            "the source URL is kept without its query"
        );
    }
    assert_eq!(s3::open_uploads(&rig.s3, BUCKET).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_and_redeliveries_archive_exactly_once() {
    let rig = Rig::start().await;
    let body = succeeded("pred_dup", &[rig.url("/files/once.png?size=2048")]);
    let first = rig.one("m1", body.clone()).await.unwrap();
    assert_eq!(first, Outcome::Archived { outputs: 1 });
    for id in ["m1", "m2", "m3"] {
        let again = rig.one(id, body.clone()).await.unwrap();
        assert_eq!(again, Outcome::AlreadyArchived, "{id}");
    }
    assert_eq!(rig.cdn.hits("/files/once.png"), 1, "downloaded once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_cancelled_predictions_are_recorded_with_their_error() {
    let rig = Rig::start().await;
    let failed = envelope(
        json!({ "id": "pred_f", "status": "failed", "error_id": "INSUFFICIENT_CREDITS", "error_message": "Your account has run out of credits.", "output": null }),
    );
    let nested = envelope(
        json!({ "id": "pred_n", "status": "failed", "error": { "code": "server_error", "message": "infrastructure error", "status": 500 } }),
    );
    let cancelled = envelope(json!({ "id": "pred_c", "status": "cancelled" }));
    let processing = envelope(json!({ "id": "pred_p", "status": "processing" }));
    let resp = rig
        .archiver
        .handle(
            event(&[
                ("1", failed),
                ("2", nested),
                ("3", cancelled),
                ("4", processing),
            ]),
            None,
        )
        .await;
    assert!(resp.batch_item_failures.is_empty());
    let f: FailureRecord = rig.json("predictions/pred_f/failure.json").await.unwrap();
    assert_eq!(
        (
            f.status.as_str(),
            f.error_id.as_deref(),
            f.error_message.as_deref()
        ),
        (
            "failed",
            Some("INSUFFICIENT_CREDITS"),
            Some("Your account has run out of credits.")
        )
    );
    let n: FailureRecord = rig.json("predictions/pred_n/failure.json").await.unwrap();
    assert_eq!(
        (n.error_id.as_deref(), n.error_message.as_deref()),
        (Some("server_error"), Some("infrastructure error"))
    );
    let c: FailureRecord = rig.json("predictions/pred_c/failure.json").await.unwrap();
    assert_eq!(c.status, "cancelled");
    assert!(
        s3::keys(&rig.s3, BUCKET, "predictions/pred_p/")
            .await
            .unwrap()
            .is_empty(),
        "nothing for a processing prediction"
    );
    assert!(rig
        .object("predictions/pred_f/manifest.json")
        .await
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_links_are_recorded_not_retried() {
    let rig = Rig::start().await;
    for (id, path, status) in [
        ("pred_x403", "/expired/a.png", "403"),
        ("pred_x410", "/gone/a.png", "410"),
    ] {
        let out = rig
            .one(
                "m",
                succeeded(id, &[rig.url("/files/ok.png?size=10"), rig.url(path)]),
            )
            .await
            .unwrap();
        assert_eq!(
            out,
            Outcome::FailureRecorded {
                error_id: "OUTPUT_EXPIRED".into()
            }
        );
        let f: FailureRecord = rig
            .json(&format!("predictions/{id}/failure.json"))
            .await
            .unwrap();
        assert_eq!(
            (f.error_id.as_deref(), f.output_index),
            (Some("OUTPUT_EXPIRED"), Some(1))
        );
        assert!(f.error_message.unwrap().contains(status));
        assert!(
            rig.object(&format!("predictions/{id}/manifest.json"))
                .await
                .is_none(),
            "no manifest for a partial archive"
        );
        assert_eq!(rig.cdn.hits(path), 1, "an expired link is asked once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_refuses_the_metadata_redirect_and_unlisted_hosts() {
    let rig = Rig::start().await;
    for (id, url) in [
        ("pred_meta", rig.url("/redirect/metadata")),
        ("pred_evil", "https://evil.example.com/x.png".to_owned()),
        (
            "pred_local",
            "https://169.254.169.254/latest/meta-data/".to_owned(),
        ),
    ] {
        let out = rig
            .one("m", succeeded(id, std::slice::from_ref(&url)))
            .await
            .unwrap();
        assert_eq!(
            out,
            Outcome::FailureRecorded {
                error_id: "OUTPUT_URL_REFUSED".into()
            },
            "{url}"
        );
        assert!(s3::keys(&rig.s3, BUCKET, &format!("predictions/{id}/"))
            .await
            .unwrap()
            .iter()
            .all(|k| k.ends_with("failure.json")));
    }
    assert_eq!(rig.cdn.hits("/redirect/metadata"), 1);
    // A redirect to an allowed place is followed.
    let out = rig
        .one(
            "m",
            succeeded("pred_redir", &[rig.url("/redirect/to/r.png?size=99")]),
        )
        .await
        .unwrap();
    assert_eq!(out, Outcome::Archived { outputs: 1 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried_with_back_off() {
    let rig = Rig::start().await;
    let started = Instant::now();
    let out = rig
        .one(
            "m",
            succeeded("pred_429", &[rig.url("/flaky/429/1/a.png?size=500")]),
        )
        .await
        .unwrap();
    assert_eq!(out, Outcome::Archived { outputs: 1 });
    assert_eq!(rig.cdn.hits("/flaky/429/1/a.png"), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    let out = rig
        .one(
            "m",
            succeeded("pred_500", &[rig.url("/flaky/500/2/b.png?size=500")]),
        )
        .await
        .unwrap();
    assert_eq!(out, Outcome::Archived { outputs: 1 });
    assert_eq!(rig.cdn.hits("/flaky/500/2/b.png"), 3);
    // Past the attempts allowed: transient, for SQS to redeliver later.
    let err = rig
        .one(
            "m",
            succeeded("pred_503", &[rig.url("/flaky/503/100/c.png")]),
        )
        .await
        .unwrap_err();
    assert!(err.0.contains("unavailable"), "{err}");
    assert_eq!(rig.cdn.hits("/flaky/503/100/c.png"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_parts_leaves_no_manifest_and_the_next_delivery_completes() {
    let rig = Rig::start().await;
    let size = 16 * MIB;
    let body = succeeded(
        "pred_crash",
        &[rig.url(&format!("/stall-once/big.mp4?size={size}"))],
    );
    // First delivery: the CDN stalls after half the file (two parts are up), the read
    // times out, the retry… also has to start over: the record is reported for redelivery.
    let resp = rig
        .archiver
        .handle(
            event(&[("m1", body.clone())]),
            Some(Instant::now() + Duration::from_millis(1500)),
        )
        .await;
    assert_eq!(resp.batch_item_failures.len(), 1);
    assert!(
        rig.object("predictions/pred_crash/manifest.json")
            .await
            .is_none(),
        "no manifest after a failed upload"
    );
    assert!(
        rig.object("predictions/pred_crash/0.mp4").await.is_none(),
        "no half-written object"
    );
    assert_eq!(
        s3::open_uploads(&rig.s3, BUCKET).await.unwrap(),
        0,
        "the multipart upload was aborted"
    );
    // Redelivery completes.
    let resp = rig.archiver.handle(event(&[("m1", body)]), None).await;
    assert!(resp.batch_item_failures.is_empty());
    let manifest: Manifest = rig
        .json("predictions/pred_crash/manifest.json")
        .await
        .unwrap();
    assert_eq!(manifest.outputs[0].sha256, content_sha256(size));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reports_exactly_the_record_that_can_succeed_later() {
    let rig = Rig::start().await;
    let good = succeeded("pred_good", &[rig.url("/files/g.png?size=100")]);
    let flaky = succeeded("pred_later", &[rig.url("/flaky/503/100/l.png")]);
    let garbage = "{\"not\":\"an envelope\"}".to_owned();
    let hostile = envelope(json!({ "id": "../../etc", "status": "succeeded", "output": [] }));
    let resp = rig
        .archiver
        .handle(
            event(&[
                ("good", good),
                ("later", flaky),
                ("garbage", garbage),
                ("hostile", hostile),
            ]),
            None,
        )
        .await;
    let failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["later"]);
    assert!(rig
        .object("predictions/pred_good/manifest.json")
        .await
        .is_some());
    let rejected = s3::keys(&rig.s3, BUCKET, "rejected/").await.unwrap();
    assert_eq!(
        rejected,
        vec!["rejected/garbage.json", "rejected/hostile.json"]
    );
}
