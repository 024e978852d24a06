//! The provider as it really is, end to end (workerd → moto's SQS → archiver → moto's
//! S3): webhooks signed as its SDK signs them (bare hex, keyed with the account API key)
//! and shaped as its docs print them (`core/tests/fixtures/skytells/`), the course's
//! prefixed form beside them, and events that arrive out of order.

use hookvault_core::archive;
use hookvault_core::records::{FailureRecord, IndexEntry, IndexOutcome, Manifest};
use hookvault_core::state::StateRecord;
use hookvault_core::Scheme;
use hookvault_localstack::provider::content_sha256;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::e2e_lossless::Rig;

/// An API key in the provider's format: in `general` mode it is the HMAC key.
const API_KEY: &str = "sk-e2e-0123456789abcdef0123456789abcdef";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../core/tests/fixtures/skytells/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The signature header as the provider's SDK writes it: bare lowercase hex.
fn sdk_signed(body: &[u8]) -> Vec<(String, String)> {
    let h = Scheme::Skytells
        .sign(API_KEY.as_bytes(), body, &Default::default())
        .unwrap();
    assert!(!h[0].1.starts_with("sha256="));
    h.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The course's form, `sha256=<hex>`, with the hex digits in `upper` case if asked.
fn course_signed(body: &[u8], upper: bool) -> Vec<(String, String)> {
    let h = Scheme::Skytells
        .sign_prefixed(API_KEY.as_bytes(), body, &Default::default())
        .unwrap();
    let v = &h[0].1;
    let v = if upper {
        format!("sha256={}", v["sha256=".len()..].to_ascii_uppercase())
    } else {
        v.clone()
    };
    vec![(h[0].0.to_owned(), v)]
}

/// (what, prediction id, body, headers)
type Case = (&'static str, &'static str, Vec<u8>, Vec<(String, String)>);

/// The log entries of prediction `id`, oldest first, as `events show <id>` reads them.
async fn entries_of(rig: &Rig, id: &str) -> Vec<IndexEntry> {
    let keys = hookvault_localstack::s3::keys(
        &rig.stack.s3,
        crate::utils::BUCKET,
        &archive::index_prediction_prefix(id),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    for k in keys {
        let bytes = rig.object(&k).await.unwrap();
        out.push(serde_json::from_slice::<IndexEntry>(&bytes).unwrap());
    }
    out.sort_by_key(|e| e.received_at_ms);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_as_the_provider_signs_and_shapes_them_are_archived_with_their_files() {
    let rig = Rig::start_keyed("provider-dialects", API_KEY).await;
    let url = |name: &str, size: u64| format!("{}/files/{name}?size={size}", rig.cdn.url);
    // The docs' objects, byte for byte but for the output URL, which must be the local CDN.
    let wrapped = fixture("webhook_wrapped_succeeded.json").replace(
        "https://delivery.skytells.cloud/us/2026/03/06/d05b96fc-output.png",
        &url("d05b96fc-output.png", 2_000),
    );
    let get = fixture("get_prediction_response.json")
        .replace(
            "https://cdn.skytells.ai/outputs/pred_abc123.png",
            &url("abc.png", 3_000),
        )
        .replace("pred_abc123", "pred_get");
    let course = fixture("webhook_bare_training.json")
        .replace(
            "https://cdn.skytells.ai/outputs/pred_abc123/video.mp4",
            &url("video.mp4", 4_000),
        )
        .replace("pred_abc123", "pred_course");
    let failed = fixture("prediction_failed_data_removed.json");
    let cases: Vec<Case> = vec![
        (
            "wrapped prediction.succeeded, model as an object, one-string output, SDK signature",
            "d05b96fc-7fdf-4528-8e61-aa1092f48040",
            wrapped.clone().into_bytes(),
            sdk_signed(wrapped.as_bytes()),
        ),
        (
            "the API reference's Prediction object, prefixed signature in capitals",
            "pred_get",
            get.clone().into_bytes(),
            course_signed(get.as_bytes(), true),
        ),
        (
            "the course's bare body, prefixed signature",
            "pred_course",
            course.clone().into_bytes(),
            course_signed(course.as_bytes(), false),
        ),
        (
            "a failed prediction, error as a string, data_removed, SDK signature",
            "pred_id....",
            failed.clone().into_bytes(),
            sdk_signed(failed.as_bytes()),
        ),
    ];
    for (what, _, body, headers) in &cases {
        let (status, text) = rig.send_with(body, headers).await;
        assert_eq!(status, 202, "{what}: {text}");
    }
    let (envelopes, redeliver) = rig.archive_queue().await;
    assert!(redeliver.is_empty(), "{redeliver:?}");
    assert_eq!(envelopes.len(), cases.len());
    for (what, id, body, _) in &cases {
        // Queued byte for byte, with evidence that verifies again with the API key.
        let record = rig.assert_raw_event_kept(body, what).await;
        assert_eq!(record.prediction_id.as_deref(), Some(*id), "{what}");
    }
    for (id, name, size) in [
        ("d05b96fc-7fdf-4528-8e61-aa1092f48040", "0.png", 2_000),
        ("pred_get", "0.png", 3_000),
        ("pred_course", "0.mp4", 4_000),
    ] {
        let m: Manifest = rig.json(&format!("predictions/{id}/manifest.json")).await;
        assert_eq!(m.outputs.len(), 1, "{id}");
        assert_eq!(m.outputs[0].key, format!("predictions/{id}/{name}"), "{id}");
        assert_eq!(m.outputs[0].sha256, content_sha256(size), "{id}");
        let stored = rig.object(&m.outputs[0].key).await.unwrap();
        assert_eq!(stored.len() as u64, size, "{id}");
    }
    let m: Manifest = rig
        .json("predictions/d05b96fc-7fdf-4528-8e61-aa1092f48040/manifest.json")
        .await;
    assert_eq!(m.model.as_deref(), Some("truefusion-pro"));
    let f: FailureRecord = rig.json("predictions/pred_id..../failure.json").await;
    assert_eq!(
        (f.status.as_str(), f.error_message.as_deref()),
        ("failed", Some("Failed to generate image."))
    );
    let st: StateRecord = rig.json("predictions/pred_get/state.json").await;
    assert_eq!((st.status.as_str(), st.terminal), ("succeeded", true));
}

/// Sends `body` (SDK-signed) and archives what the queue holds; the one event's outcome.
async fn deliver(rig: &Rig, body: &serde_json::Value) -> Vec<u8> {
    let bytes = serde_json::to_vec(body).unwrap();
    let (status, text) = rig.send_with(&bytes, &sdk_signed(&bytes)).await;
    assert_eq!(status, 202, "{text}");
    let (envelopes, redeliver) = rig.archive_queue().await;
    assert_eq!((envelopes.len(), redeliver.len()), (1, 0));
    bytes
}

/// How many versions of `key` the (versioned) bucket holds: writes, counted.
async fn versions(rig: &Rig, key: &str) -> usize {
    hookvault_localstack::operator::versions(&rig.stack.s3, crate::utils::BUCKET, key)
        .await
        .unwrap()
}

/// A rig whose bucket keeps every version, so "written once" is countable.
async fn versioned_rig(queue: &str) -> Rig {
    let rig = Rig::start_keyed(queue, API_KEY).await;
    hookvault_localstack::operator::enable_versioning(&rig.stack.s3, crate::utils::BUCKET)
        .await
        .unwrap();
    rig
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_never_go_backwards_and_the_first_terminal_state_wins() {
    let rig = versioned_rig("provider-order").await;
    let file = |name: &str, size: u64| format!("{}/files/{name}?size={size}", rig.cdn.url);
    let wrapped = |t: &str, data: serde_json::Value| json!({"type": t, "created_at": "2026-12-05T00:00:00Z", "data": data});
    let succeeded = |id: &str, f: &str, size: u64| {
        wrapped(
            "prediction.succeeded",
            json!({"id": id, "status": "succeeded", "model": {"name": "truefusion", "type": "image"}, "output": file(f, size)}),
        )
    };
    let started = |id: &str| {
        wrapped(
            "prediction.started",
            json!({"id": id, "status": "started", "output": null}),
        )
    };
    let failed = |id: &str| {
        wrapped(
            "prediction.failed",
            json!({"id": id, "status": "failed", "error": "Failed to generate image.", "output": null}),
        )
    };

    // (prediction, events in the order they arrive, each distinct, the outcome of each,
    // the state held at the end)
    let late_start = {
        let mut s = started("pred_late_start");
        s["data"]["updated_at"] = json!("2026-12-05T00:00:09Z");
        s
    };
    let sequences: Vec<(&str, Vec<serde_json::Value>, Vec<IndexOutcome>, &str)> = vec![
        (
            "pred_late_start",
            vec![
                started("pred_late_start"),
                succeeded("pred_late_start", "a.png", 100),
                late_start,
            ],
            vec![
                IndexOutcome::Ignored,
                IndexOutcome::Archived,
                IndexOutcome::Ignored,
            ],
            "succeeded",
        ),
        (
            "pred_fail_after",
            vec![
                succeeded("pred_fail_after", "b.png", 200),
                failed("pred_fail_after"),
            ],
            vec![IndexOutcome::Archived, IndexOutcome::Conflicting],
            "succeeded",
        ),
        (
            "pred_two_bodies",
            vec![
                succeeded("pred_two_bodies", "c.png", 300),
                succeeded("pred_two_bodies", "d.png", 400),
            ],
            vec![IndexOutcome::Archived, IndexOutcome::Conflicting],
            "succeeded",
        ),
        (
            "pred_fail_first",
            vec![
                failed("pred_fail_first"),
                succeeded("pred_fail_first", "e.png", 500),
            ],
            vec![IndexOutcome::PredictionFailed, IndexOutcome::Conflicting],
            "failed",
        ),
    ];
    for (id, events, outcomes, held) in &sequences {
        let mut bodies = Vec::new();
        for e in events {
            bodies.push(deliver(&rig, e).await);
            // The edge's receipt times (milliseconds) order the log; keep them apart.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // Every raw event kept, and the log shows each, in order, with its outcome.
        for b in &bodies {
            rig.assert_raw_event_kept(b, id).await;
        }
        let log = entries_of(&rig, id).await;
        let got: Vec<(String, IndexOutcome)> = log
            .iter()
            .map(|e| (e.body_sha256.clone(), e.outcome))
            .collect();
        let want: Vec<(String, IndexOutcome)> = bodies
            .iter()
            .map(|b| hex::encode(Sha256::digest(b)))
            .zip(outcomes.iter().copied())
            .collect();
        assert_eq!(got, want, "{id}");
        let st: StateRecord = rig.json(&format!("predictions/{id}/state.json")).await;
        assert_eq!(st.status, *held, "{id}");
        assert_eq!(
            st.body_sha256,
            want.iter()
                .find(|(_, o)| matches!(o, IndexOutcome::Archived | IndexOutcome::PredictionFailed))
                .unwrap()
                .0,
            "{id}: the first terminal event holds the state"
        );
        let manifest = rig.object(&format!("predictions/{id}/manifest.json")).await;
        let failure = rig.object(&format!("predictions/{id}/failure.json")).await;
        if *held == "succeeded" {
            assert!(
                failure.is_none(),
                "{id}: a failure.json beside the manifest"
            );
            let m: Manifest = serde_json::from_slice(&manifest.unwrap()).unwrap();
            assert_eq!(m.outputs.len(), 1, "{id}");
        } else {
            assert!(manifest.is_none(), "{id}: a manifest after the failure");
            let f: FailureRecord = serde_json::from_slice(&failure.unwrap()).unwrap();
            assert_eq!(
                f.error_message.as_deref(),
                Some("Failed to generate image.")
            );
        }
    }
    // The second succeeded body of pred_two_bodies archived nothing: the one file holds
    // the first body's bytes (300), not the second's (400), written once.
    let m: Manifest = rig.json("predictions/pred_two_bodies/manifest.json").await;
    assert_eq!(m.outputs[0].sha256, content_sha256(300));
    let file = rig
        .object("predictions/pred_two_bodies/0.png")
        .await
        .unwrap();
    assert_eq!(file.len(), 300);
    for id in ["pred_late_start", "pred_fail_after", "pred_two_bodies"] {
        assert_eq!(
            versions(&rig, &format!("predictions/{id}/manifest.json")).await,
            1,
            "{id}"
        );
        assert_eq!(
            versions(&rig, &format!("predictions/{id}/0.png")).await,
            1,
            "{id}"
        );
    }
    // A redelivery of the holding event changes nothing (Same): still one manifest.
    let again = deliver(&rig, &succeeded("pred_late_start", "a.png", 100)).await;
    let log = entries_of(&rig, "pred_late_start").await;
    assert_eq!(
        log.len(),
        3,
        "the redelivered body is the same event: {log:?}"
    );
    let sha = hex::encode(Sha256::digest(&again));
    assert!(log
        .iter()
        .any(|e| e.body_sha256 == sha && e.outcome == IndexOutcome::Archived));
    assert_eq!(
        versions(&rig, "predictions/pred_late_start/manifest.json").await,
        1,
        "the redelivery wrote the manifest again"
    );
}

/// The rule holds for replays, for archives written before `state.json` existed (or whose
/// `state.json` is unreadable), and for two Lambdas taking contradicting events of one
/// prediction at the same moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_old_archives_and_racing_lambdas_keep_one_truth() {
    let rig = versioned_rig("provider-truth").await;
    let file = |name: &str, size: u64| format!("{}/files/{name}?size={size}", rig.cdn.url);
    let succeeded = |id: &str, f: &str, size: u64| json!({"type": "prediction.succeeded", "data": {"id": id, "status": "succeeded", "output": file(f, size)}});
    let failed = |id: &str| json!({"type": "prediction.failed", "data": {"id": id, "status": "failed", "error": "late"}});
    let send = |body: serde_json::Value| {
        let rig = &rig;
        async move {
            let bytes = serde_json::to_vec(&body).unwrap();
            let (status, text) = rig.send_with(&bytes, &sdk_signed(&bytes)).await;
            assert_eq!(status, 202, "{text}");
        }
    };

    // 1. `replay --force` of a contradicting event, and of a second succeeded body, changes
    // nothing: force redoes only the work of the event that holds the state.
    send(succeeded("pred_force", "a.png", 100)).await;
    send(failed("pred_force")).await;
    send(succeeded("pred_force", "b.png", 200)).await;
    let queued = rig.queued().await;
    assert_eq!(queued.len(), 3);
    for (i, env) in queued.iter().enumerate() {
        assert!(rig.archive_envelope(env, &format!("m{i}")).await.is_empty());
    }
    for (i, env) in queued.iter().enumerate().skip(1) {
        let mut forced = env.clone();
        forced.replay = Some(hookvault_core::envelope::Replay {
            at_ms: 1,
            force: true,
        });
        assert!(rig
            .archive_envelope(&forced, &format!("f{i}"))
            .await
            .is_empty());
    }
    assert!(rig
        .object("predictions/pred_force/failure.json")
        .await
        .is_none());
    assert_eq!(
        versions(&rig, "predictions/pred_force/manifest.json").await,
        1
    );
    let m: Manifest = rig.json("predictions/pred_force/manifest.json").await;
    assert_eq!(m.outputs[0].sha256, content_sha256(100));
    // Forcing the event that holds the state archives it again.
    let mut forced = queued[0].clone();
    forced.replay = Some(hookvault_core::envelope::Replay {
        at_ms: 2,
        force: true,
    });
    assert!(rig.archive_envelope(&forced, "f0").await.is_empty());
    assert_eq!(
        versions(&rig, "predictions/pred_force/manifest.json").await,
        2
    );

    // 2. An archive without state.json (as before states were kept), and one whose
    // state.json does not parse: the manifest is the state; a failed event contradicts it.
    for (id, state) in [
        ("pred_old", None),
        ("pred_corrupt", Some(b"{not json".to_vec())),
    ] {
        send(succeeded(id, "c.png", 300)).await;
        let queued = rig.queued().await;
        assert!(rig.archive_envelope(&queued[0], "s").await.is_empty());
        let key = format!("predictions/{id}/state.json");
        let s3 = &rig.stack.s3;
        match state {
            None => {
                s3.delete_object()
                    .bucket(crate::utils::BUCKET)
                    .key(&key)
                    .send()
                    .await
                    .unwrap();
            }
            Some(bytes) => {
                let put = s3.put_object().bucket(crate::utils::BUCKET).key(&key);
                put.body(bytes.into()).send().await.unwrap();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        send(json!({"type": "prediction.started", "data": {"id": id, "status": "started"}})).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        send(failed(id)).await;
        for (i, env) in rig.queued().await.iter().enumerate() {
            assert!(rig.archive_envelope(env, &format!("o{i}")).await.is_empty());
        }
        assert!(
            rig.object(&format!("predictions/{id}/failure.json"))
                .await
                .is_none(),
            "{id}"
        );
        let outcomes: Vec<IndexOutcome> = entries_of(&rig, id)
            .await
            .iter()
            .map(|e| e.outcome)
            .collect();
        assert_eq!(
            outcomes,
            [
                IndexOutcome::Archived,
                IndexOutcome::Ignored,
                IndexOutcome::Conflicting
            ],
            "{id}"
        );
    }

    // 3. Two Lambdas at once, one with succeeded and one with failed: exactly one truth.
    for round in 0..3 {
        let id = format!("pred_race_{round}");
        send(succeeded(&id, "d.png", 400)).await;
        send(failed(&id)).await;
        let queued = rig.queued().await;
        assert_eq!(queued.len(), 2);
        let (a, b) = tokio::join!(
            rig.archive_envelope(&queued[0], "r0"),
            rig.archive_envelope(&queued[1], "r1")
        );
        assert!(a.is_empty() && b.is_empty(), "{a:?} {b:?}");
        let manifest = rig.object(&format!("predictions/{id}/manifest.json")).await;
        let failure = rig.object(&format!("predictions/{id}/failure.json")).await;
        let st: StateRecord = rig.json(&format!("predictions/{id}/state.json")).await;
        match st.status.as_str() {
            "succeeded" => assert!(manifest.is_some() && failure.is_none(), "{id}"),
            "failed" => assert!(manifest.is_none() && failure.is_some(), "{id}"),
            other => panic!("{id}: state {other}"),
        }
        let outcomes: Vec<IndexOutcome> = entries_of(&rig, &id)
            .await
            .iter()
            .map(|e| e.outcome)
            .collect();
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == IndexOutcome::Conflicting)
                .count(),
            1,
            "{id}: {outcomes:?}"
        );
    }
}
