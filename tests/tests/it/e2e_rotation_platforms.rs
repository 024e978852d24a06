//! Rotation against platforms that do not behave ideally (issue #15): edge locations that
//! converge over seconds, provider keys that become valid late, Worker versions nobody
//! deployed and gradual deployments, and Secrets Manager's own configuration test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookvault_localstack::provider::keys::{webhook_body, INITIAL_WEBHOOK_SECRET};
use hookvault_localstack::rotation::{
    Options, RotationStack, API_KEY_SECRET_ID, CLOUDFLARE_TOKEN, WEBHOOK_SECRET_ID,
};

use crate::e2e_rotation::{
    assert_no_secret_in_logs, secret_of, start_sender, step_fails, webhook_url, STEPS,
};

/// Delivers as the provider signs, continuously, each on a fresh connection, until
/// stopped: every status seen.
fn deliver_continuously(
    stack: &Arc<RotationStack>,
    stop: &Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Option<u16>>> {
    let sender = start_sender(stack, stop, false);
    tokio::spawn(async move {
        let seen = sender.await.unwrap();
        seen.into_iter().map(|(_, status)| status).collect()
    })
}

/// Rotates the webhook secret under a continuous sender while one new connection in two
/// reaches the version before each deployment for `lag`: what the sender saw, and how many
/// connections lagged.
async fn rotate_under_lagging_locations(opts: Options, lag: Duration) -> (Vec<Option<u16>>, u32) {
    let stack = Arc::new(RotationStack::start(opts).await.unwrap());
    stack.edge.lag_locations(lag, 2);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = deliver_continuously(&stack, &stop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let token = stack.rotate(WEBHOOK_SECRET_ID).await.unwrap();
    stack
        .wait_current(WEBHOOK_SECRET_ID, &token, Duration::from_secs(180))
        .await
        .unwrap();
    // Past the finishSecret deployment's own lag.
    tokio::time::sleep(lag + Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let seen = sender.await.unwrap();
    let new = stack
        .value(WEBHOOK_SECRET_ID, None, "AWSCURRENT")
        .await
        .unwrap();
    assert_eq!(stack.provider.webhook_secret(), secret_of(&new));
    (seen, stack.edge.lagged_connections())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_switches_only_once_lagging_locations_have_converged_so_nothing_is_refused() {
    // Locations lag 4 s; the rotator wants 4 accepting probes across 6 s.
    let lag = Duration::from_secs(4);
    let (seen, lagged) = rotate_under_lagging_locations(
        Options {
            convergence_probes: 4,
            soak_secs: 6,
            ..Options::default()
        },
        lag,
    )
    .await;
    let refused: Vec<_> = seen.iter().filter(|s| **s != Some(202)).collect();
    assert!(
        refused.is_empty(),
        "refused during the rotation: {refused:?}"
    );
    assert!(
        seen.len() >= 20,
        "the sender ran throughout ({} sends)",
        seen.len()
    );
    assert!(lagged > 0, "no connection reached a lagging location");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_soak_the_same_lag_refuses_webhooks_signed_with_the_new_key() {
    // The control for the test above: the provider is told after the first accepting
    // probe, as before issue #15, and lagging locations refuse the new key. (The steps
    // after setSecret are not run: testSecret may itself meet a lagging location.)
    let lag = Duration::from_secs(4);
    let stack = Arc::new(
        RotationStack::start(Options {
            convergence_probes: 1,
            soak_secs: 0,
            ..Options::default()
        })
        .await
        .unwrap(),
    );
    stack.drive_steps_by_hand().unwrap();
    stack.edge.lag_locations(lag, 2);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = deliver_continuously(&stack, &stop);
    let token = stack.rotate(WEBHOOK_SECRET_ID).await.unwrap();
    for step in &STEPS[..2] {
        stack.step(WEBHOOK_SECRET_ID, &token, step).await.unwrap();
    }
    tokio::time::sleep(lag).await;
    stop.store(true, Ordering::SeqCst);
    let seen = sender.await.unwrap();
    let refused = seen.iter().filter(|s| **s == Some(401)).count();
    assert!(stack.edge.lagged_connections() > 0);
    assert!(
        refused > 0,
        "no 401 without a soak: the lag model does not lag ({} sends)",
        seen.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_that_becomes_valid_seconds_after_minting_still_completes_the_rotation() {
    let stack = RotationStack::start(Options {
        api_key_activation_secs: 8,
        ..Options::default()
    })
    .await
    .unwrap();
    // 1. New keys are refused (401) for 3 s: testSecret retries, the rotation completes.
    stack
        .provider
        .with(|s| s.keys.activation_delay = Duration::from_secs(3));
    let token = stack.rotate(API_KEY_SECRET_ID).await.unwrap();
    stack
        .wait_current(API_KEY_SECRET_ID, &token, Duration::from_secs(120))
        .await
        .unwrap();
    let current = stack
        .value(API_KEY_SECRET_ID, None, "AWSCURRENT")
        .await
        .unwrap();
    let record = stack.provider.with(|s| {
        s.keys
            .key(current["key_id"].as_str().unwrap())
            .cloned()
            .unwrap()
    });
    assert!(
        record.refused_early > 0,
        "the new key was never refused: the activation delay did not bite"
    );

    // 2. A key that stays invalid longer than API_KEY_ACTIVATION_SECS fails testSecret,
    // naming the delay; AWSCURRENT does not move.
    stack.drive_steps_by_hand().unwrap();
    stack
        .provider
        .with(|s| s.keys.activation_delay = Duration::from_secs(600));
    let t2 = stack.rotate(API_KEY_SECRET_ID).await.unwrap();
    for step in &STEPS[..2] {
        stack.step(API_KEY_SECRET_ID, &t2, step).await.unwrap();
    }
    let started = std::time::Instant::now();
    let err = stack
        .step(API_KEY_SECRET_ID, &t2, "testSecret")
        .await
        .unwrap_err();
    assert!(err.contains("API_KEY_ACTIVATION_SECS (8 s)"), "{err}");
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "testSecret gave up after {:?}, before the activation window",
        started.elapsed()
    );
    let still = stack
        .value(API_KEY_SECRET_ID, None, "AWSCURRENT")
        .await
        .unwrap();
    assert_eq!(still["key_id"], current["key_id"]);
    assert_no_secret_in_logs(&stack, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_deploys_the_serving_code_not_an_undeployed_upload_and_waits_out_a_gradual_deployment(
) {
    let stack = Arc::new(RotationStack::start(Options::default()).await.unwrap());
    let (first, code) = stack.edge.serving().await.unwrap();
    let undeployed = stack.edge.upload_undeployed().await.unwrap();
    assert_ne!(stack.edge.code_of(&undeployed).await.unwrap(), code);

    // The legacy secrets endpoint would refuse now (it edits the latest version).
    let put = reqwest::Client::new()
        .put(format!(
            "{}/accounts/{}/workers/scripts/{}/secrets",
            stack.edge.api_url,
            hookvault_localstack::cloudflare::ACCOUNT,
            hookvault_localstack::cloudflare::SCRIPT
        ))
        .bearer_auth(CLOUDFLARE_TOKEN)
        .body(r#"{"name":"X","text":"y","type":"secret_text"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 400);
    assert!(put.text().await.unwrap().contains("10215"));

    // 1. A full rotation under a continuous sender: nothing refused, and what serves
    // afterwards is the code that served before, with the new ring.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = deliver_continuously(&stack, &stop);
    let token = stack.rotate(WEBHOOK_SECRET_ID).await.unwrap();
    stack
        .wait_current(WEBHOOK_SECRET_ID, &token, Duration::from_secs(180))
        .await
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    let seen = sender.await.unwrap();
    assert!(seen.iter().all(|s| *s == Some(202)), "refused: {seen:?}");
    // "Nothing refused" holds over zero sends too: the sender must have run throughout.
    assert!(
        seen.len() >= 20,
        "the sender ran throughout ({} sends)",
        seen.len()
    );
    let (serving, serving_code) = stack.edge.serving().await.unwrap();
    assert_ne!(serving, first, "the ring is in a new version");
    assert_eq!(serving_code, code, "the code serving changed");
    assert!(
        !stack.edge.deployed_versions().await.contains(&undeployed),
        "the undeployed upload was deployed"
    );
    let new = stack
        .value(WEBHOOK_SECRET_ID, None, "AWSCURRENT")
        .await
        .unwrap();
    let ring = stack.edge.binding("WEBHOOK_SECRETS").await.unwrap();
    assert!(ring.contains(new["key_id"].as_str().unwrap()));
    let logs = stack.rotator.logs();
    assert!(
        logs.contains("key ring deployed as a new version of the serving code")
            && logs.contains(&first),
        "the rotator does not report the version it deployed:\n{logs}"
    );
    // It warns that the upload still carries the old ring.
    assert!(
        logs.contains("still carry the key ring from before this rotation")
            && logs.contains(&undeployed),
        "no warning about the stale upload:\n{logs}"
    );
    // Every other binding came along (the edge still reaches SQS: 202 above).
    assert!(stack.edge.binding("SQS_QUEUE_URL").await.is_some());

    // 2. A gradual deployment in progress: setSecret refuses before touching anything.
    stack.drive_steps_by_hand().unwrap();
    let canary = stack.edge.begin_gradual(10.0).await.unwrap();
    let deploys = stack.edge.deploys();
    let t2 = stack.rotate(WEBHOOK_SECRET_ID).await.unwrap();
    stack
        .step(WEBHOOK_SECRET_ID, &t2, "createSecret")
        .await
        .unwrap();
    step_fails(&stack, &t2, "setSecret", "gradual deployment").await;
    let err = stack
        .step(WEBHOOK_SECRET_ID, &t2, "setSecret")
        .await
        .unwrap_err();
    assert!(err.contains(&canary) && err.contains("10 %"), "{err}");
    assert_eq!(stack.edge.deploys(), deploys, "something was deployed");
    assert_eq!(stack.provider.webhook_secret(), secret_of(&new));
    assert_eq!(
        stack
            .provider
            .deliver(&webhook_url(&stack), &webhook_body("pred_gradual"))
            .await,
        Some(202)
    );
    let pending = stack
        .value(WEBHOOK_SECRET_ID, Some(&t2), "AWSPENDING")
        .await
        .unwrap();
    assert_no_secret_in_logs(
        &stack,
        &[INITIAL_WEBHOOK_SECRET.to_owned(), secret_of(&pending)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_test_passes_and_a_rotation_that_lost_its_value_still_fails() {
    // Starting the stack configures rotation of both secrets with RotateImmediately=false:
    // Secrets Manager runs testSecret alone on a pending version with no value.
    let stack = RotationStack::start(Options::default()).await.unwrap();
    let moto = stack.moto.logs();
    for id in [WEBHOOK_SECRET_ID, API_KEY_SECRET_ID] {
        assert!(
            moto.contains(&format!("configuration test of {id} passed")),
            "{id}: no passed configuration test\n{moto}"
        );
        let stages = stack.stages(id).await.unwrap();
        assert!(
            stages.values().flatten().all(|s| s != "AWSPENDING"),
            "{id}: the test's pending version was left: {stages:?}"
        );
    }
    assert!(stack
        .rotator
        .logs()
        .contains("Secrets Manager's configuration test"));

    // A configuration that cannot work fails the test (the alarm would fire): the
    // provider refuses the current API key.
    stack.provider.with(|s| s.keys.keys[0].revoked = true);
    stack
        .sm
        .rotate_secret()
        .secret_id(API_KEY_SECRET_ID)
        .rotate_immediately(false)
        .send()
        .await
        .unwrap();
    let moto = stack.moto.logs();
    assert!(
        moto.contains(&format!("configuration test of {API_KEY_SECRET_ID} failed")),
        "{moto}"
    );
    stack.provider.with(|s| s.keys.keys[0].revoked = false);

    // A real rotation whose createSecret stored no value still fails testSecret.
    stack.drive_steps_by_hand().unwrap();
    stack.provider.with(|s| s.keys.lose_mint_answers = 100);
    let token = stack.rotate(API_KEY_SECRET_ID).await.unwrap();
    assert!(stack
        .step(API_KEY_SECRET_ID, &token, "createSecret")
        .await
        .is_err());
    let err = stack
        .step(API_KEY_SECRET_ID, &token, "testSecret")
        .await
        .unwrap_err();
    assert!(
        err.contains("createSecret started for it but stored no value"),
        "{err}"
    );
    assert_no_secret_in_logs(&stack, &[]).await;
}
