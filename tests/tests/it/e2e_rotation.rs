//! The rotator for real: moto's Secrets Manager (RotateSecret invoking the rotator under
//! `cargo lambda watch`), the edge redeployed in workerd by the stand-in Cloudflare API,
//! the stand-in provider minting keys and signing webhooks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookvault_localstack::provider::keys::{
    send_signed, webhook_body, Signing, INITIAL_WEBHOOK_SECRET,
};
use hookvault_localstack::rotation::{
    KeyMode, Options, RotationStack, API_KEY_SECRET_ID, INITIAL_KEY_ID, WEBHOOK_SECRET_ID,
};

pub(crate) const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

pub(crate) fn webhook_url(stack: &RotationStack) -> String {
    format!("{}/webhooks/skytells", stack.edge.url)
}

pub(crate) async fn assert_no_secret_in_logs(stack: &RotationStack, extra: &[String]) {
    let logs = stack.logs().await;
    assert!(
        logs.contains("rotation step"),
        "the rotator logged nothing?\n{logs}"
    );
    for v in stack.secret_values().iter().chain(extra) {
        assert!(!logs.contains(v.as_str()), "a secret value is in the logs");
    }
}

/// Step `step` of the webhook secret's rotation `token` fails, saying `expected`.
pub(crate) async fn step_fails(stack: &RotationStack, token: &str, step: &str, expected: &str) {
    let err = stack
        .step(WEBHOOK_SECRET_ID, token, step)
        .await
        .unwrap_err();
    assert!(err.contains(expected), "{step}: {err}");
}

pub(crate) fn secret_of(v: &serde_json::Value) -> String {
    v["secret"].as_str().unwrap().to_owned()
}

/// A sender that delivers continuously until stopped, each delivery on a fresh
/// connection: as the provider signs (with whatever secret it has been told), and, with
/// `old_too`, also signed with the initial secret. Returns every (`"provider"` or `"old"`,
/// status).
pub(crate) fn start_sender(
    stack: &Arc<RotationStack>,
    stop: &Arc<AtomicBool>,
    old_too: bool,
) -> tokio::task::JoinHandle<Vec<(&'static str, Option<u16>)>> {
    let stack = Arc::clone(stack);
    let stop = Arc::clone(stop);
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let url = webhook_url(&stack);
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let body = webhook_body(&format!("pred_cont_{n}"));
            seen.push(("provider", stack.provider.deliver(&url, &body).await));
            if old_too {
                let body = webhook_body(&format!("pred_old_{n}"));
                seen.push((
                    "old",
                    send_signed(&url, &body, INITIAL_WEBHOOK_SECRET).await,
                ));
            }
        }
        seen
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_secret_rotation_refuses_no_webhook_and_retires_the_old_secret_after_its_grace() {
    let stack = Arc::new(
        RotationStack::start(Options {
            webhook_grace_secs: 8,
            ..Options::default()
        })
        .await
        .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let sender = start_sender(&stack, &stop, true);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Secrets Manager starts the rotation; the four steps run on their own.
    let token = stack.rotate(WEBHOOK_SECRET_ID).await.unwrap();
    stack
        .wait_current(WEBHOOK_SECRET_ID, &token, Duration::from_secs(300))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let seen = sender.await.unwrap();

    let refused: Vec<_> = seen.iter().filter(|(_, s)| *s != Some(202)).collect();
    assert!(
        refused.is_empty(),
        "refused during the rotation: {refused:?}"
    );
    assert!(
        seen.len() >= 20,
        "the sender ran throughout ({} sends)",
        seen.len()
    );
    // The provider switched to the new secret during the rotation.
    let new = stack
        .value(WEBHOOK_SECRET_ID, None, "AWSCURRENT")
        .await
        .unwrap();
    assert_ne!(new["key_id"], INITIAL_KEY_ID);
    assert_eq!(stack.provider.webhook_secret(), secret_of(&new));
    let old = stack
        .value(WEBHOOK_SECRET_ID, None, "AWSPREVIOUS")
        .await
        .unwrap();
    assert_eq!(secret_of(&old), INITIAL_WEBHOOK_SECRET);
    assert!(
        stack.edge.deploys() >= 3,
        "the ring was pushed in setSecret and finishSecret"
    );

    // After the grace the old secret is refused, the new one still accepted.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let url = webhook_url(&stack);
    assert_eq!(
        send_signed(&url, &webhook_body("pred_late_old"), INITIAL_WEBHOOK_SECRET).await,
        Some(401)
    );
    assert_eq!(
        stack
            .provider
            .deliver(&url, &webhook_body("pred_late_new"))
            .await,
        Some(202)
    );
    assert_no_secret_in_logs(&stack, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_reruns_and_a_rotation_stopped_after_any_step_resumes_to_the_same_result() {
    let stack = RotationStack::start(Options::default()).await.unwrap();
    stack.drive_steps_by_hand().unwrap();
    let url = webhook_url(&stack);
    let mut made = Vec::new();
    for stop_after in 1..=STEPS.len() {
        let before = stack
            .value(WEBHOOK_SECRET_ID, None, "AWSCURRENT")
            .await
            .unwrap();
        let token = stack.rotate(WEBHOOK_SECRET_ID).await.unwrap();
        // Every step twice, up to the crash.
        for step in &STEPS[..stop_after] {
            for _ in 0..2 {
                stack.step(WEBHOOK_SECRET_ID, &token, step).await.unwrap();
            }
        }
        let pending = stack
            .value(WEBHOOK_SECRET_ID, Some(&token), "AWSPENDING")
            .await
            .unwrap();
        // Whatever state the crash left, the secret in use keeps working.
        assert_eq!(
            stack
                .provider
                .deliver(&url, &webhook_body(&format!("pred_crash_{stop_after}")))
                .await,
            Some(202)
        );
        // Secrets Manager retries: every step from the start, with the same token.
        for step in STEPS {
            stack.step(WEBHOOK_SECRET_ID, &token, step).await.unwrap();
        }
        let after = stack
            .value(WEBHOOK_SECRET_ID, None, "AWSCURRENT")
            .await
            .unwrap();
        assert_eq!(
            after["key_id"], pending["key_id"],
            "no second secret was made"
        );
        assert_eq!(secret_of(&after), secret_of(&pending));
        assert_ne!(after["key_id"], before["key_id"]);
        assert_eq!(stack.provider.webhook_secret(), secret_of(&after));
        // New and previous both accepted (the previous within its grace).
        assert_eq!(
            send_signed(
                &url,
                &webhook_body(&format!("pred_new_{stop_after}")),
                &secret_of(&after)
            )
            .await,
            Some(202)
        );
        assert_eq!(
            send_signed(
                &url,
                &webhook_body(&format!("pred_prev_{stop_after}")),
                &secret_of(&before)
            )
            .await,
            Some(202)
        );
        // Steps of a finished rotation do nothing.
        let again = stack
            .step(WEBHOOK_SECRET_ID, &token, "setSecret")
            .await
            .unwrap();
        assert_eq!(again["outcome"], "already-current");
        made.push(secret_of(&after));
    }
    let ring = stack.edge.binding("WEBHOOK_SECRETS").await.unwrap();
    let ring: serde_json::Value = serde_json::from_str(&ring).unwrap();
    // Rotations within one grace period: the current key, the previous one, and the one
    // before it (its own grace still running); older keys are gone.
    let slots: Vec<_> = ring
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["secret"].as_str().unwrap().to_owned(),
                k["slot"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let n = made.len();
    assert_eq!(
        slots,
        vec![
            (made[n - 1].clone(), "current".to_owned()),
            (made[n - 2].clone(), "previous".to_owned()),
            (made[n - 3].clone(), "previous".to_owned()),
        ]
    );
    assert_no_secret_in_logs(&stack, &made).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_that_refuses_the_pending_secret_fails_the_rotation_and_the_current_secret_keeps_working(
) {
    let stack = RotationStack::start(Options {
        propagation_secs: 2,
        ..Options::default()
    })
    .await
    .unwrap();
    stack.drive_steps_by_hand().unwrap();
    let url = webhook_url(&stack);

    // 1. The new ring never reaches the edge: setSecret fails before the provider is told.
    stack.edge.ignore_updates(true);
    let token = stack.rotate(WEBHOOK_SECRET_ID).await.unwrap();
    stack
        .step(WEBHOOK_SECRET_ID, &token, "createSecret")
        .await
        .unwrap();
    step_fails(&stack, &token, "setSecret", "did not accept").await;
    step_fails(&stack, &token, "testSecret", "did not accept").await;
    assert_eq!(stack.provider.webhook_secret(), INITIAL_WEBHOOK_SECRET);
    assert_eq!(
        stack.provider.deliver(&url, &webhook_body("pred_r1")).await,
        Some(202)
    );
    let current = stack
        .value(WEBHOOK_SECRET_ID, None, "AWSCURRENT")
        .await
        .unwrap();
    assert_eq!(current["key_id"], INITIAL_KEY_ID);

    // 2. The edge loses the pending key after setSecret told the provider: testSecret
    // fails and puts the current secret back at the provider.
    stack.edge.ignore_updates(false);
    stack
        .step(WEBHOOK_SECRET_ID, &token, "setSecret")
        .await
        .unwrap();
    let pending = stack
        .value(WEBHOOK_SECRET_ID, Some(&token), "AWSPENDING")
        .await
        .unwrap();
    assert_eq!(stack.provider.webhook_secret(), secret_of(&pending));
    let only_current =
        serde_json::json!([{"id": INITIAL_KEY_ID, "secret": INITIAL_WEBHOOK_SECRET}]);
    let put = reqwest::Client::new()
        .put(format!("{}/accounts/{}/workers/scripts/{}/secrets", stack.edge.api_url, hookvault_localstack::cloudflare::ACCOUNT, hookvault_localstack::cloudflare::SCRIPT))
        .bearer_auth(hookvault_localstack::rotation::CLOUDFLARE_TOKEN)
        .body(serde_json::json!({"name": "WEBHOOK_SECRETS", "text": only_current.to_string(), "type": "secret_text"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    step_fails(&stack, &token, "testSecret", "did not accept").await;
    assert_eq!(stack.provider.webhook_secret(), INITIAL_WEBHOOK_SECRET);
    assert_eq!(
        stack.provider.deliver(&url, &webhook_body("pred_r2")).await,
        Some(202)
    );

    // 3. The provider refuses the new secret: setSecret fails, nothing else changes; once
    // it accepts again the rotation completes.
    stack.provider.with(|s| s.keys.fail_webhook_secret = 10);
    step_fails(&stack, &token, "setSecret", "HTTP 500").await;
    assert_eq!(
        stack.provider.deliver(&url, &webhook_body("pred_r3")).await,
        Some(202)
    );
    stack.provider.with(|s| s.keys.fail_webhook_secret = 0);
    // Cloudflare failing once is retried within the step.
    stack.edge.fail_updates(1);
    for step in &STEPS[1..] {
        stack.step(WEBHOOK_SECRET_ID, &token, step).await.unwrap();
    }
    assert_eq!(stack.provider.webhook_secret(), secret_of(&pending));
    assert_eq!(
        stack.provider.deliver(&url, &webhook_body("pred_r4")).await,
        Some(202)
    );
    assert_no_secret_in_logs(&stack, &[secret_of(&pending)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_rotation_mints_once_and_revokes_the_key_two_generations_old_after_its_grace() {
    let stack = RotationStack::start(Options {
        api_key_grace_secs: 8,
        ..Options::default()
    })
    .await
    .unwrap();
    stack.drive_steps_by_hand().unwrap();
    let keys = |s: &RotationStack| s.provider.with(|st| st.keys.keys.clone());

    // First rotation, every step twice: one key minted.
    let t1 = stack.rotate(API_KEY_SECRET_ID).await.unwrap();
    for step in STEPS {
        for _ in 0..2 {
            stack.step(API_KEY_SECRET_ID, &t1, step).await.unwrap();
        }
    }
    assert_eq!(keys(&stack).len(), 2, "key_0 and one new key");
    let current = stack
        .value(API_KEY_SECRET_ID, None, "AWSCURRENT")
        .await
        .unwrap();
    assert_eq!(current["key_id"], "key_1");
    assert!(keys(&stack).iter().all(|k| !k.revoked));

    // Second rotation at once; the mint's answer is lost and the call retried: still one key.
    stack.provider.with(|s| s.keys.lose_mint_answers = 1);
    let t2 = stack.rotate(API_KEY_SECRET_ID).await.unwrap();
    for step in STEPS {
        stack.step(API_KEY_SECRET_ID, &t2, step).await.unwrap();
    }
    let ks = keys(&stack);
    assert_eq!(ks.len(), 3, "one key per rotation: {ks:?}");
    let current = stack
        .value(API_KEY_SECRET_ID, None, "AWSCURRENT")
        .await
        .unwrap();
    assert_eq!(current["key_id"], "key_2");
    // key_0 left AWSCURRENT seconds ago: within its grace, it is not revoked yet.
    assert!(!ks[0].revoked, "key_0 revoked within its grace");

    // The schedule revokes it once the grace has passed; key_1 (previous) stays.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let report = stack.scheduled().await.unwrap();
    assert!(
        report.to_string().contains("1 old API key(s) revoked"),
        "{report}"
    );
    let ks = keys(&stack);
    assert!(ks[0].revoked && !ks[1].revoked && !ks[2].revoked, "{ks:?}");
    // The pending key was tested with a real call; the current one works.
    assert!(stack
        .provider
        .with(|s| s.keys.is_valid(current["api_key"].as_str().unwrap())));
    assert_no_secret_in_logs(&stack, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_rotation_stopped_after_any_step_resumes_with_the_same_key() {
    let stack = RotationStack::start(Options::default()).await.unwrap();
    stack.drive_steps_by_hand().unwrap();
    let minted = |s: &RotationStack| s.provider.with(|st| st.keys.keys.len());
    for stop_after in 1..=STEPS.len() {
        let before = stack
            .value(API_KEY_SECRET_ID, None, "AWSCURRENT")
            .await
            .unwrap();
        let token = stack.rotate(API_KEY_SECRET_ID).await.unwrap();
        for step in &STEPS[..stop_after] {
            stack.step(API_KEY_SECRET_ID, &token, step).await.unwrap();
        }
        let pending = stack
            .value(API_KEY_SECRET_ID, Some(&token), "AWSPENDING")
            .await
            .unwrap();
        let keys_after_crash = minted(&stack);
        // The key in use works whatever state the crash left.
        let in_use = stack
            .value(API_KEY_SECRET_ID, None, "AWSCURRENT")
            .await
            .unwrap();
        assert!(stack
            .provider
            .with(|s| s.keys.is_valid(in_use["api_key"].as_str().unwrap())));
        for step in STEPS {
            stack.step(API_KEY_SECRET_ID, &token, step).await.unwrap();
        }
        let after = stack
            .value(API_KEY_SECRET_ID, None, "AWSCURRENT")
            .await
            .unwrap();
        assert_eq!(
            after["key_id"], pending["key_id"],
            "stopped after {stop_after}"
        );
        assert_ne!(after["key_id"], before["key_id"]);
        assert_eq!(minted(&stack), keys_after_crash, "resuming minted nothing");
        assert!(stack
            .provider
            .with(|s| s.keys.is_valid(after["api_key"].as_str().unwrap())));
    }
    assert_eq!(minted(&stack), 1 + STEPS.len(), "one key per rotation");
    assert_no_secret_in_logs(&stack, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_starts_due_rotations_and_reports_a_stuck_one() {
    let stack = RotationStack::start(Options {
        extra_env: vec![
            ("ROTATION_INTERVAL_DAYS".into(), "0".into()),
            ("ROTATION_STUCK_AFTER_SECS".into(), "2".into()),
        ],
        ..Options::default()
    })
    .await
    .unwrap();
    // Both secrets are due (interval 0): the schedule calls RotateSecret, which runs
    // the steps.
    let report = stack.scheduled().await.unwrap();
    assert_eq!(
        report.to_string().matches("rotation started").count(),
        2,
        "{report}"
    );
    for id in [WEBHOOK_SECRET_ID, API_KEY_SECRET_ID] {
        let start = std::time::Instant::now();
        loop {
            let stages = stack.stages(id).await.unwrap();
            let current = stack.value(id, None, "AWSCURRENT").await.unwrap();
            if current["key_id"] != INITIAL_KEY_ID && current["key_id"] != "key_0" {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{id} not rotated: {stages:?}\n{}",
                stack.logs().await
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    // A rotation that stops after createSecret is stuck once it is old enough.
    stack.drive_steps_by_hand().unwrap();
    let token = stack.rotate(API_KEY_SECRET_ID).await.unwrap();
    stack
        .step(API_KEY_SECRET_ID, &token, "createSecret")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let err = stack.scheduled().await.unwrap_err();
    assert!(
        err.contains("rotation stuck") && err.contains(&token),
        "{err}"
    );
    assert!(
        err.contains("update-secret-version-stage"),
        "says how to cancel: {err}"
    );
    // Not touched: the current key still works, and the rotation can be resumed.
    for step in STEPS {
        stack.step(API_KEY_SECRET_ID, &token, step).await.unwrap();
    }
    let current = stack
        .value(API_KEY_SECRET_ID, None, "AWSCURRENT")
        .await
        .unwrap();
    assert!(stack
        .provider
        .with(|s| s.keys.is_valid(current["api_key"].as_str().unwrap())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_are_refused_for_unknown_or_finished_versions_and_bad_events() {
    let stack = RotationStack::start(Options::default()).await.unwrap();
    stack.drive_steps_by_hand().unwrap();
    let err = stack
        .step(
            WEBHOOK_SECRET_ID,
            "00000000-0000-0000-0000-000000000000",
            "createSecret",
        )
        .await
        .unwrap_err();
    assert!(err.contains("has no stage for rotation"), "{err}");
    let token = stack.rotate(WEBHOOK_SECRET_ID).await.unwrap();
    step_fails(&stack, &token, "rotateSecret", "unknown rotation step").await;
    step_fails(&stack, &token, "setSecret", "run createSecret first").await;
    let err = stack
        .invoke(serde_json::json!({"hello": "world"}))
        .await
        .unwrap_err();
    assert!(err.contains("unrecognised event"), "{err}");
    // The previous version (not pending, not current) is refused.
    for step in STEPS {
        stack.step(WEBHOOK_SECRET_ID, &token, step).await.unwrap();
    }
    let t2 = stack.rotate(WEBHOOK_SECRET_ID).await.unwrap();
    let done = stack.step(WEBHOOK_SECRET_ID, &token, "createSecret").await;
    assert_eq!(done.unwrap()["outcome"], "already-current");
    stack
        .step(WEBHOOK_SECRET_ID, &t2, "createSecret")
        .await
        .unwrap();
    for step in &STEPS[1..] {
        stack.step(WEBHOOK_SECRET_ID, &t2, step).await.unwrap();
    }
    step_fails(&stack, &token, "testSecret", "is not AWSPENDING").await;
}

/// `general` key mode (the provider signs webhooks with the API key, Skytells' SDK
/// default): an API-key rotation under a continuous sender, once for each behaviour the
/// provider might have (signing with the key the prediction was created under; with the
/// account's current key, i.e. the key of its latest request, which the rotator's own
/// `testSecret` call with the pending key changes), refuses nothing; after the grace
/// both retired keys are refused, and the schedule takes them out of the edge's ring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn general_mode_an_api_key_rotation_refuses_no_webhook_in_either_signing_behaviour_and_retires_the_old_key_after_its_grace(
) {
    let grace = 8;
    let stack = Arc::new(
        RotationStack::start(Options {
            key_mode: KeyMode::General,
            webhook_grace_secs: grace,
            ..Options::default()
        })
        .await
        .unwrap(),
    );
    let url = webhook_url(&stack);
    // A prediction runs this long: the last ones created under the old key are
    // delivered after finishSecret, signed with it.
    let runtime = Duration::from_millis(1500);
    let mut retired = Vec::new();
    for signing in [Signing::PredictionKey, Signing::AccountKey] {
        stack.provider.with(|s| s.keys.signing = signing);
        let before = stack
            .value(API_KEY_SECRET_ID, None, "AWSCURRENT")
            .await
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let sender = stack.start_prediction_sender(&stop, runtime);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let token = stack.rotate(API_KEY_SECRET_ID).await.unwrap();
        stack
            .wait_current(API_KEY_SECRET_ID, &token, Duration::from_secs(120))
            .await
            .unwrap();
        // Predictions created under the new key are delivered too.
        tokio::time::sleep(runtime + Duration::from_millis(700)).await;
        stop.store(true, Ordering::SeqCst);
        let seen = sender.await.unwrap();
        let after = stack
            .value(API_KEY_SECRET_ID, None, "AWSCURRENT")
            .await
            .unwrap();
        let refused: Vec<_> = seen.iter().filter(|d| d.status != Some(202)).collect();
        assert!(
            refused.is_empty(),
            "{signing:?}: refused during the rotation: {refused:?}\n{}",
            stack.logs().await
        );
        assert!(
            seen.len() >= 15,
            "{signing:?}: the sender ran throughout ({} sends)",
            seen.len()
        );
        // Both keys signed webhooks: the old one after nothing submitted with it any
        // more, the new one once the api submitted with it.
        for key in [&before["key_id"], &after["key_id"]] {
            assert!(
                seen.iter().any(|d| d.signed_with == key.as_str().unwrap()),
                "{signing:?}: no webhook signed with {key}: {seen:?}"
            );
        }
        retired.push(before["api_key"].as_str().unwrap().to_owned());
    }

    // Two rotations within one grace: the ring holds the current key and both retired
    // ones, each until its not_after.
    let ids = |ring: &str| -> Vec<String> {
        let ring: serde_json::Value = serde_json::from_str(ring).unwrap();
        ring.as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let ring = stack.edge.binding("WEBHOOK_SECRETS").await.unwrap();
    assert_eq!(ids(&ring), ["key_2", "key_1", "key_0"]);
    let report = stack.scheduled().await.unwrap();
    assert!(
        !report.to_string().contains("retired API key removed"),
        "nothing is due within the grace: {report}"
    );

    // After the grace the retired keys are refused, and the schedule removes them.
    tokio::time::sleep(Duration::from_secs(grace as u64 + 1)).await;
    for (n, old) in retired.iter().enumerate() {
        assert_eq!(
            send_signed(&url, &webhook_body(&format!("pred_late_{n}")), old).await,
            Some(401),
            "retired key {n} after its grace"
        );
    }
    let report = stack.scheduled().await.unwrap();
    assert!(
        report.to_string().contains("retired API key removed"),
        "{report}"
    );
    let ring = stack.edge.binding("WEBHOOK_SECRETS").await.unwrap();
    assert_eq!(ids(&ring), ["key_2"]);
    let current = stack
        .value(API_KEY_SECRET_ID, None, "AWSCURRENT")
        .await
        .unwrap();
    let body = webhook_body("pred_late_current");
    assert_eq!(
        send_signed(&url, &body, current["api_key"].as_str().unwrap()).await,
        Some(202)
    );
    assert_eq!(
        send_signed(&url, &webhook_body("pred_later_0"), &retired[0]).await,
        Some(401)
    );
    assert_no_secret_in_logs(&stack, &retired).await;
}

/// The edge's key ring (`WEBHOOK_SECRETS` of the version serving): each entry's key id
/// and `not_after`, newest first.
async fn ring_entries(stack: &RotationStack) -> Vec<(String, Option<i64>)> {
    let ring = stack.edge.binding("WEBHOOK_SECRETS").await.unwrap();
    let ring: serde_json::Value = serde_json::from_str(&ring).unwrap();
    ring.as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_owned(),
                k["not_after"].as_i64(),
            )
        })
        .collect()
}

/// The `not_after` the ring gives key `id` (`None`: none, or not in the ring).
async fn not_after_of(stack: &RotationStack, id: &str) -> Option<Option<i64>> {
    ring_entries(stack)
        .await
        .into_iter()
        .find(|(k, _)| k == id)
        .map(|(_, t)| t)
}

/// `general` key mode: finishSecret fails to move `AWSCURRENT` (its
/// `UpdateSecretVersionStage` call fails once; an operator cancelling the rotation then
/// would leave the same state). The old key is still `AWSCURRENT`: the api submits with
/// it, so the provider signs with it, and the edge must keep accepting it, with no
/// expiry, past `WEBHOOK_GRACE_SECS`. Resumed, the rotation finishes and the old key gets
/// its grace from then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn general_mode_a_finish_secret_that_fails_to_move_awscurrent_leaves_the_key_in_use_accepted_past_the_grace(
) {
    let grace = 3;
    let stack = RotationStack::start(Options {
        key_mode: KeyMode::General,
        webhook_grace_secs: grace,
        fault_proxy: true,
        ..Options::default()
    })
    .await
    .unwrap();
    stack.drive_steps_by_hand().unwrap();
    let url = webhook_url(&stack);
    let in_use = stack
        .value(API_KEY_SECRET_ID, None, "AWSCURRENT")
        .await
        .unwrap();
    let old = in_use["api_key"].as_str().unwrap().to_owned();
    let token = stack.rotate(API_KEY_SECRET_ID).await.unwrap();
    for step in &STEPS[..3] {
        stack.step(API_KEY_SECRET_ID, &token, step).await.unwrap();
    }
    let faults = stack.faults.as_ref().unwrap();
    faults.fail_next("UpdateSecretVersionStage", 1);
    let err = stack
        .step(API_KEY_SECRET_ID, &token, "finishSecret")
        .await
        .unwrap_err();
    assert!(err.contains("UpdateSecretVersionStage"), "{err}");
    let still = stack
        .value(API_KEY_SECRET_ID, None, "AWSCURRENT")
        .await
        .unwrap();
    assert_eq!(still["key_id"], "key_0", "AWSCURRENT did not move");
    assert_eq!(
        not_after_of(&stack, "key_0").await,
        Some(None),
        "the AWSCURRENT key has no expiry at the edge: {:?}",
        ring_entries(&stack).await
    );

    // Nobody resumes within the grace: the key in use is still accepted.
    tokio::time::sleep(Duration::from_secs(grace as u64 + 1)).await;
    assert_eq!(
        send_signed(&url, &webhook_body("pred_stuck"), &old).await,
        Some(202),
        "a webhook signed with the AWSCURRENT key, past the grace"
    );

    // Resumed: the new key is current, the old one accepted until its grace has passed.
    stack
        .step(API_KEY_SECRET_ID, &token, "finishSecret")
        .await
        .unwrap();
    let new = stack
        .value(API_KEY_SECRET_ID, None, "AWSCURRENT")
        .await
        .unwrap();
    assert_eq!(new["key_id"], "key_1");
    let new = new["api_key"].as_str().unwrap().to_owned();
    assert_eq!(not_after_of(&stack, "key_1").await, Some(None));
    assert!(
        matches!(not_after_of(&stack, "key_0").await, Some(Some(_))),
        "{:?}",
        ring_entries(&stack).await
    );
    assert_eq!(
        send_signed(&url, &webhook_body("pred_resumed_old"), &old).await,
        Some(202)
    );
    tokio::time::sleep(Duration::from_secs(grace as u64 + 1)).await;
    assert_eq!(
        send_signed(&url, &webhook_body("pred_late_old"), &old).await,
        Some(401)
    );
    assert_eq!(
        send_signed(&url, &webhook_body("pred_late_new"), &new).await,
        Some(202)
    );
    assert_no_secret_in_logs(&stack, &[]).await;
}

/// `general` key mode, the schedule's invariant: the API key that is `AWSCURRENT` is in
/// the edge's ring without expiry. (1) An operator moves `AWSCURRENT` back to the old key
/// after a finished rotation, whose ring gave that key an expiry: the next scheduled run
/// writes the ring again, and webhooks signed with it are accepted past the grace; the
/// run after that has nothing to repair. (2) The ring loses the key altogether (written
/// by hand): the scheduled run finds the edge refusing it and writes the ring again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn general_mode_the_schedule_rewrites_the_ring_when_the_awscurrent_key_is_not_in_it_without_expiry(
) {
    let grace = 3;
    let stack = RotationStack::start(Options {
        key_mode: KeyMode::General,
        webhook_grace_secs: grace,
        ..Options::default()
    })
    .await
    .unwrap();
    stack.drive_steps_by_hand().unwrap();
    let url = webhook_url(&stack);
    let token = stack.rotate(API_KEY_SECRET_ID).await.unwrap();
    for step in STEPS {
        stack.step(API_KEY_SECRET_ID, &token, step).await.unwrap();
    }
    assert!(matches!(not_after_of(&stack, "key_0").await, Some(Some(_))));

    // (1) Rolled back as an operator would: key_0 is AWSCURRENT again, key_1 is in no
    // rotation.
    let stages = stack.stages(API_KEY_SECRET_ID).await.unwrap();
    let previous = stages
        .iter()
        .find(|(_, s)| s.iter().any(|x| x == "AWSPREVIOUS"))
        .map(|(v, _)| v.clone())
        .unwrap();
    stack
        .sm
        .update_secret_version_stage()
        .secret_id(API_KEY_SECRET_ID)
        .version_stage("AWSCURRENT")
        .move_to_version_id(&previous)
        .remove_from_version_id(&token)
        .send()
        .await
        .unwrap();
    stack
        .sm
        .update_secret_version_stage()
        .secret_id(API_KEY_SECRET_ID)
        .version_stage("AWSPENDING")
        .remove_from_version_id(&token)
        .send()
        .await
        .unwrap();
    let in_use = stack
        .value(API_KEY_SECRET_ID, None, "AWSCURRENT")
        .await
        .unwrap();
    assert_eq!(in_use["key_id"], "key_0");
    let in_use = in_use["api_key"].as_str().unwrap().to_owned();
    let report = stack.scheduled().await.unwrap();
    assert!(report.to_string().contains("key ring repaired"), "{report}");
    assert_eq!(
        not_after_of(&stack, "key_0").await,
        Some(None),
        "{:?}",
        ring_entries(&stack).await
    );
    tokio::time::sleep(Duration::from_secs(grace as u64 + 1)).await;
    assert_eq!(
        send_signed(&url, &webhook_body("pred_rolled_back"), &in_use).await,
        Some(202),
        "a webhook signed with the AWSCURRENT key, past the grace"
    );
    let report = stack.scheduled().await.unwrap();
    assert!(
        !report.to_string().contains("key ring repaired"),
        "nothing left to repair: {report}"
    );

    // (2) The ring loses the AWSCURRENT key.
    let other = stack
        .value(API_KEY_SECRET_ID, None, "AWSPREVIOUS")
        .await
        .unwrap();
    let only_other = serde_json::json!([{"id": other["key_id"], "secret": other["api_key"]}]);
    let put = reqwest::Client::new()
        .put(format!(
            "{}/accounts/{}/workers/scripts/{}/secrets",
            stack.edge.api_url,
            hookvault_localstack::cloudflare::ACCOUNT,
            hookvault_localstack::cloudflare::SCRIPT
        ))
        .bearer_auth(hookvault_localstack::rotation::CLOUDFLARE_TOKEN)
        .body(
            serde_json::json!({"name": "WEBHOOK_SECRETS", "text": only_other.to_string(), "type": "secret_text"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(
        send_signed(&url, &webhook_body("pred_lost"), &in_use).await,
        Some(401)
    );
    let report = stack.scheduled().await.unwrap();
    assert!(report.to_string().contains("key ring repaired"), "{report}");
    assert_eq!(
        send_signed(&url, &webhook_body("pred_found"), &in_use).await,
        Some(202)
    );
    assert_eq!(
        ring_entries(&stack).await,
        [("key_0".to_owned(), None)],
        "the grace of key_1 has passed"
    );
    assert_no_secret_in_logs(&stack, &[]).await;
}
