//! The api function under `cargo lambda watch` (as a Function URL), against moto and the
//! stand-in provider.
//!
//! Run alone with `cargo test -p hookvault-localstack --test it -- e2e_api` (after
//! `scripts/test.sh` has installed the tools once).

use std::time::{Duration, Instant};

use hookvault_core::provider_error::CODES;
use hookvault_core::records::{EventRecord, FailureRecord, Manifest, OutputRecord};
use hookvault_core::{KeySlot, Scheme};
use hookvault_localstack::api::{api_env, start_api, CALLER_KEY, CALLER_KEY_2};
use hookvault_localstack::lambda::LambdaFunction;
use hookvault_localstack::moto::Moto;
use hookvault_localstack::provider::predictions::Dialect;
use hookvault_localstack::provider::Provider;
use hookvault_localstack::rotation::API_KEY_SECRET_ID;
use hookvault_localstack::stack::LocalStack;

const BUCKET: &str = "hookvault-archive";
const WEBHOOK_URL: &str = "https://edge.example.com/webhooks/skytells";

struct ApiStack {
    _moto: Moto,
    provider: Provider,
    api: LambdaFunction,
    s3: aws_sdk_s3::Client,
    sm: aws_sdk_secretsmanager::Client,
    http: reqwest::Client,
}

impl ApiStack {
    async fn start() -> ApiStack {
        Self::start_with(1).await
    }

    /// The stack with up to `concurrency` api instances.
    async fn start_with(concurrency: u32) -> ApiStack {
        Self::start_configured(concurrency, None, None, &[]).await
    }

    /// One api instance with `PROVIDER_DIALECT=dialect` (unset when `None`: the
    /// default), and the edge's webhook URL on the stand-in itself,
    /// `{provider}/edge/{label}`, where the stand-in counts the completion webhooks it
    /// sends there (`Provider::hits`).
    async fn start_dialect(dialect: Option<&str>, label: &str) -> ApiStack {
        Self::start_configured(1, dialect, Some(label), &[]).await
    }

    async fn start_configured(
        concurrency: u32,
        dialect: Option<&str>,
        edge_label: Option<&str>,
        settings: &[(&str, &str)],
    ) -> ApiStack {
        let stack = LocalStack::builder()
            .bucket(BUCKET)
            .api_secrets()
            .provider()
            .start()
            .await
            .unwrap();
        let LocalStack {
            moto,
            s3: s3c,
            secrets: sm,
            provider,
            ..
        } = stack;
        let provider = provider.unwrap();
        let hook = edge_label.map_or(WEBHOOK_URL.to_owned(), |l| {
            format!("{}/edge/{l}", provider.url)
        });
        let extra: Vec<(&str, &str)> = dialect
            .map(|d| ("PROVIDER_DIALECT", d))
            .into_iter()
            .chain(settings.iter().copied())
            .collect();
        let env = api_env(&moto.endpoint, &provider.url, BUCKET, &hook, &extra);
        let api = start_api(&env, concurrency).await.unwrap();
        ApiStack {
            _moto: moto,
            provider,
            api,
            s3: s3c,
            sm,
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.api.function_url))
            .timeout(Duration::from_secs(120));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        self.answer(req).await
    }

    /// Sends `req`: its status, headers and JSON body (a body that is not JSON fails the
    /// test with the api's logs).
    async fn answer(
        &self,
        req: reqwest::RequestBuilder,
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("not JSON ({status}): {text}\n{}", self.api.logs()));
        (status, headers, v)
    }

    async fn submit(&self, model: &str) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        self.call(
            reqwest::Method::POST,
            "/predictions",
            Some(CALLER_KEY),
            Some(serde_json::json!({"model_id": model, "inputs": {"prompt": "a lake at dawn"}})),
        )
        .await
    }

    fn attempts(&self, model: &str) -> usize {
        self.provider.with(|s| s.predictions.attempts(model))
    }

    /// `POST /predictions` with `body` as `caller`, with `Idempotency-Key: key` if given.
    async fn post(
        &self,
        caller: &str,
        key: Option<&[u8]>,
        body: &serde_json::Value,
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let mut req = self
            .http
            .post(format!("{}/predictions", self.api.function_url))
            .timeout(Duration::from_secs(120))
            .bearer_auth(caller)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(k) = key {
            req = req.header(
                "idempotency-key",
                reqwest::header::HeaderValue::from_bytes(k).unwrap(),
            );
        }
        self.answer(req).await
    }

    /// The idempotency record of `key` for `caller`, if there is one.
    async fn record(&self, caller: &str, key: &str) -> Option<serde_json::Value> {
        let (object, _) = idempotency_names(caller, key);
        let (bytes, _) = hookvault_localstack::s3::get(&self.s3, BUCKET, &object)
            .await
            .unwrap()?;
        Some(serde_json::from_slice(&bytes).unwrap())
    }
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Where the api keeps `key` of `caller`, and the `Idempotency-Key` it sends the provider
/// for it (docs/api.md, "Idempotent submits").
fn idempotency_names(caller: &str, key: &str) -> (String, String) {
    let h = sha256_hex(format!("{}\n{key}", sha256_hex(caller.as_bytes())).as_bytes());
    (format!("idempotency/{h}.json"), format!("hv-{}", &h[..32]))
}

/// The api's log, checked to hold the `request` line of a call to `path` answered with
/// `status` (text or JSON format): a check that a secret is absent from the log means
/// nothing unless the log was captured at all.
fn captured_log(api: &LambdaFunction, path: &str, status: u16) -> String {
    let logs = api.logs();
    let logged = logs.lines().any(|l| {
        l.contains("request")
            && l.contains(path)
            && (l.contains(&format!("status={status}"))
                || l.contains(&format!("\"status\":{status}")))
    });
    assert!(
        logged,
        "the api's log has no request line for {path} answered {status}: the log was not captured\n{logs}"
    );
    logs
}

fn replayed(h: &reqwest::header::HeaderMap) -> bool {
    h.get("idempotent-replayed").is_some_and(|v| v == "true")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_calls_are_refused_before_anything_else() {
    let stack = ApiStack::start().await;
    let body = Some(serde_json::json!({"model_id": "m", "inputs": {}}));
    for key in [None, Some("caller-key-local-0123456789abcdeX"), Some("")] {
        let (status, headers, v) = stack
            .call(reqwest::Method::POST, "/predictions", key, body.clone())
            .await;
        assert_eq!(status, 401, "{key:?}: {v}");
        assert_eq!(v["error"], "unauthorized");
        assert_eq!(headers["www-authenticate"], "Bearer");
        let (status, _, _) = stack
            .call(reqwest::Method::GET, "/predictions/pred_1", key, None)
            .await;
        assert_eq!(status, 401);
    }
    assert_eq!(stack.attempts("m"), 0, "nothing reached the provider");
    // Routing errors are answered as JSON too.
    let (status, _, v) = stack
        .call(
            reqwest::Method::DELETE,
            "/predictions",
            Some(CALLER_KEY),
            None,
        )
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let (status, _, _) = stack
        .call(reqwest::Method::GET, "/nope", Some(CALLER_KEY), None)
        .await;
    assert_eq!(status, 404);
    let logs = captured_log(&stack.api, "/nope", 404);
    assert!(
        !logs.contains(CALLER_KEY),
        "the caller key is in a log line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prediction_is_forwarded_with_the_key_and_the_edge_as_webhook() {
    let stack = ApiStack::start().await;
    let (status, headers, v) = stack.submit("stable-video-6s").await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["id"], "pred_1");
    assert_eq!(headers["location"], "/predictions/pred_1");
    let sent = stack.provider.with(|s| s.predictions.submitted.clone());
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].key_id.as_deref(), Some("key_0"));
    // The default dialect: the provider's current API reference.
    assert_eq!(sent[0].path, "/v1/predictions");
    assert_eq!(sent[0].dialect, Some(Dialect::Current));
    assert_eq!(sent[0].webhook_url.as_deref(), Some(WEBHOOK_URL));
    assert_eq!(
        sent[0].body["webhook"]["events"],
        serde_json::json!([
            "prediction.succeeded",
            "prediction.failed",
            "prediction.cancelled"
        ])
    );
    assert_eq!(sent[0].body["input"]["prompt"], "a lake at dawn");
    // Bad requests never reach the provider.
    for body in [
        serde_json::json!({"model_id": "m"}),
        serde_json::json!({"model_id": "a b", "inputs": {}}),
        serde_json::json!({"model_id": "m", "inputs": {}, "webhook_url": "https://evil.example"}),
    ] {
        let (status, _, v) = stack
            .call(
                reqwest::Method::POST,
                "/predictions",
                Some(CALLER_KEY),
                Some(body),
            )
            .await;
        assert_eq!(status, 400, "{v}");
    }
    let big = "x".repeat(300 * 1024);
    let (status, _, _) = stack
        .call(
            reqwest::Method::POST,
            "/predictions",
            Some(CALLER_KEY),
            Some(serde_json::json!({"model_id": "m", "inputs": {"p": big}})),
        )
        .await;
    assert_eq!(status, 413);
    assert_eq!(stack.provider.with(|s| s.predictions.submitted.len()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_with_back_off_and_retry_after_others_never() {
    let stack = ApiStack::start().await;
    // 429 twice (Retry-After: 1), then accepted.
    let t = Instant::now();
    let (status, _, v) = stack.submit("flaky/RATE_LIMIT_EXCEEDED/2").await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(stack.attempts("flaky/RATE_LIMIT_EXCEEDED/2"), 3);
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "Retry-After honoured: {:?}",
        t.elapsed()
    );
    let (status, _, v) = stack.submit("flaky/service_unavailable/1").await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(stack.attempts("flaky/service_unavailable/1"), 2);

    // Every code of both tables, at once: status, code, advice, and how often it was tried.
    let calls = CODES.iter().map(|c| {
        let stack = &stack;
        async move { (c, stack.submit(&format!("error/{}", c.code)).await) }
    });
    for (c, (status, headers, v)) in futures_util::future::join_all(calls).await {
        let model = format!("error/{}", c.code);
        let expected_status = match c.status {
            401 | 500 => 502,
            s => s,
        };
        assert_eq!(status, expected_status, "{}: {v}", c.code);
        assert_eq!(v["error"], c.code);
        assert!(v["message"].as_str().unwrap().starts_with(c.advice), "{v}");
        let expected_attempts = match (c.code, c.retryable, c.status) {
            ("PREDICTION_FAILED", _, _) => 2,
            (_, true, _) => 4,
            // A refused key is reread once.
            (_, false, 401) => 2,
            _ => 1,
        };
        assert_eq!(stack.attempts(&model), expected_attempts, "{}", c.code);
        assert_eq!(
            headers.contains_key("retry-after"),
            c.status == 429,
            "{}",
            c.code
        );
        assert_eq!(
            v["attempts"],
            expected_attempts.min(if c.status == 401 { 1 } else { 4 }) as u64,
            "{}: {v}",
            c.code
        );
    }
    // A failed Prediction object in a 200 is an error too.
    let (status, _, v) = stack.submit("failed200/INSUFFICIENT_CREDITS").await;
    assert_eq!(status, 402, "{v}");
    assert!(v["message"].as_str().unwrap().contains("top up"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_reread_after_a_401_and_the_call_succeeds() {
    let stack = ApiStack::start().await;
    assert_eq!(stack.submit("m1").await.0, 201);
    // Rotate behind the api's back: a new key current, the cached one revoked.
    let new = stack.provider.with(|s| {
        s.keys
            .keys
            .push(hookvault_localstack::provider::keys::KeyRecord::active(
                "key_9",
                "sk-test-rotated-9",
            ));
        s.keys.keys[0].revoked = true;
        s.keys.keys[1].key.clone()
    });
    stack
        .sm
        .put_secret_value()
        .secret_id(API_KEY_SECRET_ID)
        .secret_string(
            serde_json::json!({"kind": "provider-api-key", "key_id": "key_9", "api_key": new})
                .to_string(),
        )
        .version_stages("AWSCURRENT")
        .send()
        .await
        .unwrap();
    let (status, _, v) = stack.submit("m2").await;
    assert_eq!(status, 201, "{v}");
    let sent = stack.provider.with(|s| s.predictions.submitted.clone());
    let keys: Vec<_> = sent.iter().map(|s| s.key_id.clone()).collect();
    assert_eq!(keys, vec![Some("key_0".into()), None, Some("key_9".into())]);
    let logs = captured_log(&stack.api, "/predictions", 201);
    assert!(!logs.contains("sk-test-"), "an API key is in a log line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_status_comes_with_presigned_urls_that_serve_the_outputs() {
    let stack = ApiStack::start().await;
    let content = b"archived output bytes".to_vec();
    let key = "predictions/pred_7/output-0.png";
    let put = |k: &str, body: Vec<u8>| {
        stack
            .s3
            .put_object()
            .bucket(BUCKET)
            .key(k)
            .body(body.into())
            .send()
    };
    put(key, content.clone()).await.unwrap();
    // The raw event: its bytes and evidence, as the archiver writes them.
    let raw = b"\xEF\xBB\xBF{\"id\":\"pred_7\",\"status\":\"succeeded\"}\n".to_vec();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&raw))
    };
    let event_key = format!("events/skytells/{sha}/event.json");
    let body_key = format!("events/skytells/{sha}/body");
    let record = |status: &str| EventRecord {
        envelope_version: 2,
        provider: "skytells".into(),
        scheme: Scheme::Skytells,
        event_id: "ev_1".into(),
        received_at_ms: 1_800_000_000_123,
        key_id: "2026-11".into(),
        key_slot: KeySlot::Current,
        signature_headers: vec![("x-skytells-signature".into(), "sha256=ab".into())],
        content_type: Some("application/json".into()),
        body_sha256: sha.clone(),
        body_bytes: raw.len() as u64,
        body_key: body_key.clone(),
        prediction_id: Some("pred_7".into()),
        status: Some(status.into()),
        message_id: "m".into(),
        archived_at: "2026-11-25T00:00:00Z".into(),
        trace_id: None,
        reconciled: None,
    };
    put(&body_key, raw.clone()).await.unwrap();
    put(
        &event_key,
        serde_json::to_vec(&record("succeeded")).unwrap(),
    )
    .await
    .unwrap();
    let output = br#"{"image": "https://cdn.example/o.png", "caption": "a cat", "score": 0.5}"#;
    put("predictions/pred_7/output.json", output.to_vec())
        .await
        .unwrap();
    let manifest = Manifest {
        id: "pred_7".into(),
        status: "succeeded".into(),
        model: Some("flux".into()),
        event_id: "ev_1".into(),
        archived_at: "2026-11-25T00:00:00Z".into(),
        outputs: vec![OutputRecord {
            index: 0,
            pointer: "/image".into(),
            source_url: "https://cdn.example/o.png".into(),
            key: key.into(),
            bytes: content.len() as u64,
            sha256: "abc".into(),
            content_type: "image/png".into(),
        }],
        output_key: Some("predictions/pred_7/output.json".into()),
        raw_event: Some(event_key.clone()),
        trace_id: None,
    };
    put(
        "predictions/pred_7/manifest.json",
        serde_json::to_vec(&manifest).unwrap(),
    )
    .await
    .unwrap();
    let (status, headers, v) = stack
        .call(
            reqwest::Method::GET,
            "/predictions/pred_7",
            Some(CALLER_KEY),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(v["status"], "archived");
    let url = v["outputs"][0]["url"].as_str().unwrap();
    assert!(
        url.contains("X-Amz-Expires=900") && url.contains("X-Amz-Signature="),
        "{url}"
    );
    assert_eq!(v["outputs"][0]["expires_in"], 900);
    let got = reqwest::get(url).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), content);
    assert_eq!(v["outputs"][0]["pointer"], "/image");
    assert_eq!(v["outputs"][0]["source_url"], "https://cdn.example/o.png");
    assert_eq!(
        v["output"],
        serde_json::from_slice::<serde_json::Value>(output).unwrap(),
        "the output value"
    );
    let output_url = v["output_url"].as_str().unwrap();
    let got = reqwest::get(output_url).await.unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), output, "output.json");
    let event = &v["event"];
    assert_eq!(
        (
            event["event_id"].as_str(),
            event["scheme"].as_str(),
            event["key_id"].as_str(),
            event["key_slot"].as_str(),
            event["received_at_ms"].as_i64(),
            event["body_sha256"].as_str(),
            event["body_bytes"].as_u64(),
        ),
        (
            Some("ev_1"),
            Some("skytells"),
            Some("2026-11"),
            Some("current"),
            Some(1_800_000_000_123),
            Some(sha.as_str()),
            Some(raw.len() as u64)
        ),
        "{event}"
    );
    assert_eq!(
        event["signature_headers"],
        serde_json::json!([["x-skytells-signature", "sha256=ab"]])
    );
    let body_url = event["body_url"].as_str().unwrap();
    assert!(body_url.contains("X-Amz-Signature="), "{body_url}");
    let got = reqwest::get(body_url).await.unwrap();
    assert_eq!(
        got.bytes().await.unwrap().to_vec(),
        raw,
        "the raw event, byte for byte"
    );

    // A manifest written before output.json and raw events existed still reads.
    let old = r#"{"id":"pred_old","status":"succeeded","event_id":"e","archived_at":"2026-01-01T00:00:00Z","outputs":[{"index":0,"source_url":"https://cdn.example/o.png","key":"predictions/pred_7/output-0.png","bytes":21,"sha256":"abc","content_type":"image/png"}]}"#;
    put(
        "predictions/pred_old/manifest.json",
        old.as_bytes().to_vec(),
    )
    .await
    .unwrap();
    let (status, _, v) = stack
        .call(
            reqwest::Method::GET,
            "/predictions/pred_old",
            Some(CALLER_KEY),
            None,
        )
        .await;
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("archived")),
        "{v}"
    );
    assert_eq!(
        (
            &v["output"],
            &v["output_url"],
            &v["event"],
            &v["outputs"][0]["pointer"]
        ),
        (
            &serde_json::Value::Null,
            &serde_json::Value::Null,
            &serde_json::Value::Null,
            &serde_json::json!("")
        ),
        "{v}"
    );
    assert!(v["outputs"][0]["url"].is_string());

    let failure = FailureRecord {
        id: "pred_8".into(),
        status: "failed".into(),
        error_id: Some("INSUFFICIENT_CREDITS".into()),
        error_message: Some("no credits".into()),
        output_index: Some(0),
        output_pointer: Some("/image".into()),
        raw_event: Some(event_key.clone()),
        event_id: "ev_2".into(),
        recorded_at: "2026-11-25T00:00:00Z".into(),
        trace_id: None,
    };
    put(
        "predictions/pred_8/failure.json",
        serde_json::to_vec(&failure).unwrap(),
    )
    .await
    .unwrap();
    let (status, _, v) = stack
        .call(
            reqwest::Method::GET,
            "/predictions/pred_8",
            Some(CALLER_KEY),
            None,
        )
        .await;
    assert_eq!((status, v["status"].as_str()), (200, Some("failed")), "{v}");
    assert_eq!(v["error"]["id"], "INSUFFICIENT_CREDITS");
    assert_eq!(
        (&v["error"]["output_index"], &v["error"]["output_pointer"]),
        (&serde_json::json!(0), &serde_json::json!("/image"))
    );
    assert_eq!(v["event"]["body_sha256"], sha.as_str(), "{v}");
    assert!(v["event"]["body_url"].is_string(), "{v}");

    // Only a non-terminal state (a `processing` webhook came, nothing to archive yet): the
    // latest status, not archived, with its evidence.
    let state = hookvault_core::state::StateRecord {
        id: "pred_9".into(),
        status: "processing".into(),
        terminal: false,
        event_id: "ev_3".into(),
        body_sha256: sha.clone(),
        raw_event: Some(event_key.clone()),
        updated_at: "2026-11-25T00:00:01Z".into(),
        reconciled: false,
    };
    put(
        "predictions/pred_9/state.json",
        serde_json::to_vec(&state).unwrap(),
    )
    .await
    .unwrap();
    let (status, _, v) = stack
        .call(
            reqwest::Method::GET,
            "/predictions/pred_9",
            Some(CALLER_KEY),
            None,
        )
        .await;
    assert_eq!(
        (status, v["status"].as_str(), &v["archived"]),
        (200, Some("processing"), &serde_json::json!(false)),
        "{v}"
    );
    assert_eq!(v["event"]["body_sha256"], sha.as_str(), "{v}");
    // A state beside a manifest does not change the answer: the manifest is read first.
    put(
        "predictions/pred_7/state.json",
        serde_json::to_vec(&hookvault_core::state::StateRecord {
            id: "pred_7".into(),
            status: "started".into(),
            terminal: false,
            ..state.clone()
        })
        .unwrap(),
    )
    .await
    .unwrap();
    let (status, _, v) = stack
        .call(
            reqwest::Method::GET,
            "/predictions/pred_7",
            Some(CALLER_KEY),
            None,
        )
        .await;
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("archived")),
        "{v}"
    );

    let (status, _, v) = stack
        .call(
            reqwest::Method::GET,
            "/predictions/pred_404",
            Some(CALLER_KEY),
            None,
        )
        .await;
    assert_eq!((status, v["error"].as_str()), (404, Some("not_found")));
    let (status, _, v) = stack
        .call(
            reqwest::Method::GET,
            "/predictions/..%2Fsecret",
            Some(CALLER_KEY),
            None,
        )
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_prediction_id")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_makes_a_submission_happen_once() {
    use serde_json::json;
    let stack = ApiStack::start_with(8).await;

    // Without a key every submission is a new prediction, with its own provider key. Eight
    // at once also start the api's instances for the race below.
    let calls = (0..8).map(|i| {
        let stack = &stack;
        async move {
            stack
                .post(
                    CALLER_KEY,
                    None,
                    &json!({"model_id": "slow/300", "inputs": {"n": i}}),
                )
                .await
        }
    });
    let mut ids = std::collections::HashSet::new();
    for (status, headers, v) in futures_util::future::join_all(calls).await {
        assert_eq!(status, 201, "{v}");
        assert!(!replayed(&headers));
        ids.insert(v["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 8, "eight predictions");
    let sent = stack.provider.with(|s| s.predictions.submitted.clone());
    let provider_keys: std::collections::HashSet<_> = sent
        .iter()
        .map(|s| s.idempotency_key.clone().unwrap())
        .collect();
    assert_eq!(
        provider_keys.len(),
        8,
        "a fresh provider key per submission"
    );
    for k in &provider_keys {
        let hex = k.strip_prefix("hv-").unwrap();
        assert_eq!(hex.len(), 32, "{k}");
        assert_eq!(&hex[12..13], "4", "a v4 UUID: {k}");
    }

    // Eight at once with one key: one prediction, one answer.
    let key = "idem-key-raw-7f3a9c";
    let body = json!({"model_id": "slow/1500", "inputs": {"prompt": "a lake at dawn"}});
    let calls = (0..8).map(|_| {
        let (stack, body) = (&stack, &body);
        async move { stack.post(CALLER_KEY, Some(key.as_bytes()), body).await }
    });
    let answers = futures_util::future::join_all(calls).await;
    let first = answers[0].2["id"].as_str().unwrap().to_owned();
    for (status, headers, v) in &answers {
        assert_eq!(*status, 201, "{v}\n{}", stack.api.logs());
        assert_eq!(v["id"], first.as_str(), "the same prediction");
        assert_eq!(
            headers["location"],
            format!("/predictions/{first}").as_str()
        );
    }
    assert_eq!(
        answers.iter().filter(|(_, h, _)| !replayed(h)).count(),
        1,
        "one original answer, seven replays"
    );
    assert_eq!(
        stack.attempts("slow/1500"),
        1,
        "the provider got one submission"
    );
    let (object, provider_key) = idempotency_names(CALLER_KEY, key);
    let sent = stack.provider.with(|s| s.predictions.submitted.clone());
    let last = sent.last().unwrap();
    assert_eq!(last.idempotency_key.as_deref(), Some(provider_key.as_str()));
    // The record: done, the request's hash, the answer; neither key in it.
    let (raw, _) = hookvault_localstack::s3::get(&stack.s3, BUCKET, &object)
        .await
        .unwrap()
        .unwrap();
    let record: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(record["v"], 1);
    assert_eq!(record["state"], "done", "{record}");
    assert_eq!(
        record["request_sha256"],
        sha256_hex(body.to_string().as_bytes()).as_str()
    );
    assert_eq!(record["response"]["status"], 201);
    assert_eq!(record["response"]["body"]["id"], first.as_str());
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains(key) && !text.contains(CALLER_KEY), "{text}");

    // Later, the same key and body: the same prediction, marked as a replay.
    let (status, headers, v) = stack.post(CALLER_KEY, Some(key.as_bytes()), &body).await;
    assert_eq!(
        (status, v["id"].as_str()),
        (201, Some(first.as_str())),
        "{v}"
    );
    assert!(replayed(&headers));
    assert_eq!(
        headers["location"],
        format!("/predictions/{first}").as_str()
    );
    // The same key with another body: refused, nothing sent.
    let other = json!({"model_id": "slow/1500", "inputs": {"prompt": "a lake at dusk"}});
    let (status, _, v) = stack.post(CALLER_KEY, Some(key.as_bytes()), &other).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{v}"
    );
    assert_eq!(stack.attempts("slow/1500"), 1);
    // Keys are per caller: another caller's same key is another submission.
    let (status, headers, v) = stack.post(CALLER_KEY_2, Some(key.as_bytes()), &body).await;
    assert_eq!(status, 201, "{v}");
    assert!(!replayed(&headers));
    assert_ne!(v["id"], first.as_str());
    assert_eq!(stack.attempts("slow/1500"), 2);

    // Keys that are not 1 to 255 visible ASCII characters are refused before anything.
    // (A value that is not UTF-8 is a unit test only: cargo-lambda's emulator answers 500
    // for it before the function runs.)
    let before = stack.provider.with(|s| s.predictions.received());
    let long = vec![b'k'; 256];
    for bad in [&b"has space"[..], b"", &long, b"in\ttab"] {
        let (status, _, v) = stack.post(CALLER_KEY, Some(bad), &body).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_idempotency_key")),
            "{}: {v}",
            String::from_utf8_lossy(bad)
        );
        assert!(!v["message"].as_str().unwrap().contains("has space"));
    }
    // A refused body is not remembered under its key: fixed, it goes through.
    let (status, _, v) = stack
        .post(
            CALLER_KEY,
            Some(b"idem-key-fixme"),
            &json!({"model_id": "a b"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(stack.record(CALLER_KEY, "idem-key-fixme").await.is_none());
    assert_eq!(stack.provider.with(|s| s.predictions.received()), before);

    // A retry-able failure is forgotten: the same key goes again, with the same provider key.
    let flaky = json!({"model_id": "flaky/UNAUTHORIZED/2", "inputs": {}});
    let (status, _, v) = stack
        .post(CALLER_KEY, Some(b"idem-key-flaky"), &flaky)
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (502, Some("UNAUTHORIZED")),
        "{v}"
    );
    assert!(stack.record(CALLER_KEY, "idem-key-flaky").await.is_none());
    let (status, headers, v) = stack
        .post(CALLER_KEY, Some(b"idem-key-flaky"), &flaky)
        .await;
    assert_eq!(status, 201, "{v}");
    assert!(!replayed(&headers));
    let (_, provider_key) = idempotency_names(CALLER_KEY, "idem-key-flaky");
    let sent = stack.provider.with(|s| s.predictions.submitted.clone());
    let flaky_keys: Vec<_> = sent
        .iter()
        .filter(|s| s.model == "flaky/UNAUTHORIZED/2")
        .map(|s| s.idempotency_key.clone())
        .collect();
    assert_eq!(flaky_keys, vec![Some(provider_key); 3]);
    // A definitive refusal is kept and given again.
    let missing = json!({"model_id": "error/MODEL_NOT_FOUND", "inputs": {}});
    for replay in [false, true] {
        let (status, headers, v) = stack
            .post(CALLER_KEY, Some(b"idem-key-404"), &missing)
            .await;
        assert_eq!(
            (status, v["error"].as_str()),
            (404, Some("MODEL_NOT_FOUND")),
            "{v}"
        );
        assert_eq!(replayed(&headers), replay);
    }
    assert_eq!(stack.attempts("error/MODEL_NOT_FOUND"), 1);

    // While the first is running, a repeat waits (5 s at most) and is then told to retry.
    let slow = json!({"model_id": "slow/8000", "inputs": {}});
    let running = stack.post(CALLER_KEY, Some(b"idem-key-slow"), &slow);
    let repeat = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = Instant::now();
        let answer = stack.post(CALLER_KEY, Some(b"idem-key-slow"), &slow).await;
        (answer, t.elapsed())
    };
    let ((status, _, v), ((status2, headers2, v2), waited)) = tokio::join!(running, repeat);
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (status2, v2["error"].as_str()),
        (409, Some("idempotency_key_in_progress")),
        "{v2}"
    );
    assert_eq!(headers2["retry-after"], "1");
    assert!(waited >= Duration::from_secs(4), "it waited: {waited:?}");
    let (status, headers, v3) = stack.post(CALLER_KEY, Some(b"idem-key-slow"), &slow).await;
    assert_eq!((status, &v3["id"]), (201, &v["id"]));
    assert!(replayed(&headers));
    assert_eq!(stack.attempts("slow/8000"), 1);

    // A record older than 24 hours is replaced, and so is a pending one whose owner's
    // lease has ended (its instance died).
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let fresh = json!({"model_id": "m-fresh", "inputs": {}});
    for (key, record) in [
        (
            "idem-key-old",
            json!({"v": 1, "key_sha256": "x", "request_sha256": sha256_hex(fresh.to_string().as_bytes()),
                   "state": "done", "created_at": "2026-01-01T00:00:00Z", "created_at_ms": now_ms - 25 * 3600 * 1000,
                   "response": {"status": 201, "headers": [], "body": {"id": "pred_stale"}}}),
        ),
        (
            "idem-key-dead",
            json!({"v": 1, "key_sha256": "x", "request_sha256": sha256_hex(fresh.to_string().as_bytes()),
                   "state": "pending", "created_at": "2026-01-01T00:00:00Z", "created_at_ms": now_ms - 60_000,
                   "lease_until_ms": now_ms - 1_000}),
        ),
    ] {
        let (object, _) = idempotency_names(CALLER_KEY, key);
        stack
            .s3
            .put_object()
            .bucket(BUCKET)
            .key(&object)
            .body(record.to_string().into_bytes().into())
            .send()
            .await
            .unwrap();
        let (status, headers, v) = stack.post(CALLER_KEY, Some(key.as_bytes()), &fresh).await;
        assert_eq!(status, 201, "{key}: {v}");
        assert!(!replayed(&headers), "{key}");
        assert_ne!(v["id"], "pred_stale");
        let r = stack.record(CALLER_KEY, key).await.unwrap();
        assert_eq!(
            (r["state"].as_str(), r["response"]["body"]["id"].as_str()),
            (Some("done"), v["id"].as_str()),
            "{key}: {r}"
        );
        assert!(
            r["created_at_ms"].as_u64().unwrap() >= now_ms,
            "a new window"
        );
    }
    assert_eq!(stack.attempts("m-fresh"), 2);

    let logs = captured_log(&stack.api, "/predictions", 201);
    for raw in [key, "idem-key-flaky", "idem-key-slow", CALLER_KEY] {
        assert!(!logs.contains(raw), "{raw} is in a log line");
    }
}

/// Submits through `stack`'s api and returns what the stand-in received, after waiting
/// for the completion webhook the stand-in sends to the dialect's webhook URL
/// (`{provider}/edge/{label}`).
async fn submit_and_complete(
    stack: &ApiStack,
    label: &str,
) -> hookvault_localstack::provider::predictions::Submitted {
    stack
        .provider
        .with(|s| s.predictions.complete_with = Some((1, 1024)));
    let (status, headers, v) = stack
        .post(
            CALLER_KEY,
            None,
            &serde_json::json!({"model": "truefusion", "input": {"prompt": "a lake at dawn", "seed": 7}}),
        )
        .await;
    assert_eq!(status, 201, "{label}: {v}\n{}", stack.api.logs());
    assert_eq!(headers["location"], "/predictions/pred_1");
    // The stand-in's answer is the documented Prediction object, `model` as an object:
    // the api passes it on unchanged.
    assert_eq!(v["id"], "pred_1");
    assert_eq!(
        v["model"],
        serde_json::json!({"name": "truefusion", "type": "image"})
    );
    let sent = stack.provider.with(|s| s.predictions.submitted.clone());
    assert_eq!(sent.len(), 1, "{label}");
    let edge = format!("/edge/{label}");
    let t = Instant::now();
    while stack.provider.hits(&edge) == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{label}: no completion webhook reached {edge}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stack.provider.hits(&edge), 1, "{label}");
    sent.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_reaches_the_stand_in_in_each_dialect_and_the_default_is_the_current_reference() {
    let input = serde_json::json!({"prompt": "a lake at dawn", "seed": 7});
    // No PROVIDER_DIALECT: the provider's current API reference.
    let stack = ApiStack::start_dialect(None, "default").await;
    let hook = format!("{}/edge/default", stack.provider.url);
    let sent = submit_and_complete(&stack, "default").await;
    assert_eq!(
        (
            sent.path.as_str(),
            sent.dialect,
            sent.webhook_url.as_deref()
        ),
        (
            "/v1/predictions",
            Some(Dialect::Current),
            Some(hook.as_str())
        )
    );
    assert_eq!(
        sent.body,
        serde_json::json!({
            "model": "truefusion",
            "input": input,
            "webhook": {
                "url": hook,
                "events": ["prediction.succeeded", "prediction.failed", "prediction.cancelled"],
            },
        })
    );
    assert!(
        stack.api.logs().contains("dialect=current")
            || stack.api.logs().contains(r#""dialect":"current""#)
    );
    drop(stack);

    // The same, named.
    let stack = ApiStack::start_dialect(Some("current"), "current").await;
    let hook = format!("{}/edge/current", stack.provider.url);
    let sent = submit_and_complete(&stack, "current").await;
    assert_eq!(
        (
            sent.path.as_str(),
            sent.dialect,
            sent.webhook_url.as_deref()
        ),
        (
            "/v1/predictions",
            Some(Dialect::Current),
            Some(hook.as_str())
        )
    );
    assert_eq!(sent.body["webhook"]["url"], hook.as_str());
    drop(stack);

    // The course's shape.
    let stack = ApiStack::start_dialect(Some("course"), "course").await;
    let hook = format!("{}/edge/course", stack.provider.url);
    let sent = submit_and_complete(&stack, "course").await;
    assert_eq!(
        (
            sent.path.as_str(),
            sent.dialect,
            sent.webhook_url.as_deref()
        ),
        (
            "/v1/predictions",
            Some(Dialect::Course),
            Some(hook.as_str())
        )
    );
    assert_eq!(
        sent.body,
        serde_json::json!({
            "model_id": "truefusion",
            "inputs": input,
            "webhook_url": hook,
            "webhook_events": ["prediction.completed", "prediction.failed"],
        })
    );
    drop(stack);

    // The legacy form: the older path, the webhook as a plain string.
    let stack = ApiStack::start_dialect(Some("legacy"), "legacy").await;
    let hook = format!("{}/edge/legacy", stack.provider.url);
    let sent = submit_and_complete(&stack, "legacy").await;
    assert_eq!(
        (
            sent.path.as_str(),
            sent.dialect,
            sent.webhook_url.as_deref()
        ),
        ("/v1/predict", Some(Dialect::Legacy), Some(hook.as_str()))
    );
    assert_eq!(
        sent.body,
        serde_json::json!({"model": "truefusion", "input": input, "webhook": hook})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_may_send_model_and_input_or_model_id_and_inputs_and_mixes_are_refused() {
    let stack = ApiStack::start().await;
    // Both caller shapes, and each field under either of its names.
    for (i, body) in [
        serde_json::json!({"model": "truefusion", "input": {"prompt": "a"}}),
        serde_json::json!({"model_id": "truefusion", "inputs": {"prompt": "a"}}),
        serde_json::json!({"model": "truefusion", "inputs": {"prompt": "a"}}),
        serde_json::json!({"model_id": "truefusion", "input": {"prompt": "a"}}),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, _, v) = stack.post(CALLER_KEY, None, &body).await;
        assert_eq!(status, 201, "{body}: {v}");
        assert_eq!(v["id"], format!("pred_{}", i + 1));
    }
    let sent = stack.provider.with(|s| s.predictions.submitted.clone());
    assert_eq!(sent.len(), 4);
    for s in &sent {
        // Whatever the caller's names, the provider gets the current reference's.
        assert_eq!(
            s.body,
            serde_json::json!({
                "model": "truefusion",
                "input": {"prompt": "a"},
                "webhook": {
                    "url": WEBHOOK_URL,
                    "events": ["prediction.succeeded", "prediction.failed", "prediction.cancelled"],
                },
            })
        );
    }
    // Malformed mixes: 400, the message naming the problem; nothing reaches the provider.
    for (body, code, message) in [
        (
            serde_json::json!({"model": "a", "model_id": "a", "input": {}}),
            "invalid_request",
            r#"the body has both "model" and "model_id": send the model's id once, as "model" (or "model_id")"#,
        ),
        (
            serde_json::json!({"model": "a", "input": {}, "inputs": {}}),
            "invalid_request",
            r#"the body has both "input" and "inputs": send the model's input (an object) once, as "input" (or "inputs")"#,
        ),
        (
            serde_json::json!({"input": {}}),
            "invalid_request",
            r#"the body has no "model" (or "model_id"): the model's id is required"#,
        ),
        (
            serde_json::json!({"model_id": "a"}),
            "invalid_request",
            r#"the body has no "input" (or "inputs"): the model's input (an object) is required"#,
        ),
        (
            serde_json::json!({"model": ["a"], "input": {}}),
            "invalid_request",
            r#""model" must be a string"#,
        ),
        (
            serde_json::json!({"model": "a", "input": "a lake"}),
            "invalid_request",
            r#""input" must be an object of the model's inputs"#,
        ),
        (
            serde_json::json!({"model": "a b", "input": {}}),
            "invalid_model_id",
            "model must be 1 to 128 characters of A-Z a-z 0-9 - _ . / :",
        ),
        (
            serde_json::json!({"model_id": "a b", "inputs": {}}),
            "invalid_model_id",
            "model_id must be 1 to 128 characters of A-Z a-z 0-9 - _ . / :",
        ),
    ] {
        let (status, _, v) = stack.post(CALLER_KEY, None, &body).await;
        assert_eq!(
            (status, v["error"].as_str(), v["message"].as_str()),
            (400, Some(code), Some(message)),
            "{body}"
        );
    }
    // A field of the provider's own, such as the webhook, is refused.
    let (status, _, v) = stack
        .post(
            CALLER_KEY,
            None,
            &serde_json::json!({"model": "a", "input": {}, "webhook": {"url": "https://evil.example", "events": []}}),
        )
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("an unknown or repeated field"),
        "{v}"
    );
    assert_eq!(stack.provider.with(|s| s.predictions.received()), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_s3_settles_conditional_writes_as_s3_does() {
    let stack = LocalStack::builder().bucket(BUCKET).start().await.unwrap();
    let s3c = stack.s3.clone();
    fn status<E>(
        e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Option<u16> {
        e.raw_response().map(|r| r.status().as_u16())
    }
    // Twelve writers per key with If-None-Match: *: exactly one wins, the others get 412.
    for k in 0..25 {
        let key = format!("race/{k}");
        let puts = (0..12).map(|i| {
            s3c.put_object()
                .bucket(BUCKET)
                .key(&key)
                .if_none_match("*")
                .body(vec![i as u8; 1000].into())
                .send()
        });
        let results = futures_util::future::join_all(puts).await;
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{key}: {wins} writers won");
        for r in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(status(r), Some(412), "{key}");
        }
    }
    // If-Match: only on the current ETag; a missing key is 404.
    let etag = s3c
        .put_object()
        .bucket(BUCKET)
        .key("m")
        .body(b"1".to_vec().into())
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_owned();
    let put = |key: &'static str, etag: &str| {
        s3c.put_object()
            .bucket(BUCKET)
            .key(key)
            .if_match(etag)
            .body(b"2".to_vec().into())
            .send()
    };
    assert_eq!(status(&put("m", "\"nope\"").await.unwrap_err()), Some(412));
    assert_eq!(status(&put("missing", &etag).await.unwrap_err()), Some(404));
    put("m", &etag).await.unwrap();
    assert_eq!(
        status(&put("m", &etag).await.unwrap_err()),
        Some(412),
        "the ETag changed"
    );
}

/// `HTTP_TIMEOUT_MS` bounds each attempt at the provider: a provider that answers later
/// than it is retried, then answered 503 `provider_unreachable` (retryable by the caller),
/// where without the setting (10 s by default) the same provider's answer, 1.5 s late,
/// would have been a 201; one that answers within it is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_slower_than_the_http_timeout_is_unreachable() {
    let stack = ApiStack::start_configured(1, None, None, &[("HTTP_TIMEOUT_MS", "400")]).await;
    // Within the timeout: served (this also warms the function).
    let (status, _, v) = stack.submit("slow/50").await;
    assert_eq!(status, 201, "{v}\n{}", stack.api.logs());
    let (status, _, v) = stack.submit("slow/1500").await;
    assert_eq!(
        (status, v["error"].as_str()),
        (503, Some("provider_unreachable")),
        "{v}"
    );
    // Every attempt of the provider policy (RetryPolicy::provider_api: 4) was made, and
    // none was answered: each was given up at the timeout.
    let arrived = stack.provider.with(|s| {
        s.predictions
            .slow_arrivals
            .iter()
            .filter(|m| *m == "slow/1500")
            .count()
    });
    assert_eq!(arrived, 4, "retried until the policy's last attempt");
    assert_eq!(stack.attempts("slow/1500"), 0, "an attempt was answered");
    let logs = captured_log(&stack.api, "/predictions", 503);
    assert!(logs.contains("provider unreachable"), "{logs}");
}
