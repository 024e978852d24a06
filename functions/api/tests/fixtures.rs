//! The api's event fixtures, `events/api/`: Lambda Function URL requests (payload format
//! 2.0, `AuthType: NONE` as in infra/template.yaml), read as the api's `main` reads them
//! (`lambda_http` turns the JSON into an `http::Request`, then `request::Inputs::read`,
//! the one reader `main` uses through `Api::serve`), and served as far as needs no AWS:
//! the route and method checks come before authentication, so a request without a bearer
//! key is answered 401 without a call to Secrets Manager or S3.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hookvault_api::request::Inputs;
use hookvault_api::{auth, idempotency, submit, Api, ApiConfig};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

const POST: &str = include_str!("../../../events/api/post-prediction.json");
const GET: &str = include_str!("../../../events/api/get-prediction.json");
const UNAUTHENTICATED: &str = include_str!("../../../events/api/unauthenticated.json");

/// The local stack's caller key (`CALLER_KEY` in tests/src/api.rs), so the fixtures are
/// accepted by the api under `cargo lambda watch` against the local stack.
const CALLER_KEY: &str = "caller-key-local-0123456789abcdef";
/// The succeeded prediction of events/archiver/sqs-batch.json.
const PREDICTION_ID: &str = "pred_7Hq2VxKp3mWz";
const URL_ID: &str = "kx7pmw3qr2vha6dnf4jb5c2yzu0tlgse";

fn request(fixture: &str) -> Request {
    lambda_http::request::from_str(fixture).expect("lambda_http reads the fixture")
}

/// An api whose AWS clients are never called (no credentials, no endpoint reached).
fn api() -> Api {
    let cfg = ApiConfig {
        provider_api_url: "http://127.0.0.1:9".into(),
        api_key_secret_id: "hookvault/provider-api-key".into(),
        cache_ttl: Duration::from_secs(300),
        edge_webhook_url: "https://hooks.example.com/webhooks/skytells".into(),
        bucket: "hookvault-archive".into(),
        presign_expiry: Duration::from_secs(900),
        caller_keys_secret_id: "hookvault/caller-keys".into(),
        max_request_bytes: 256 * 1024,
        http_timeout: Duration::from_secs(1),
        provider_dialect: hookvault_api::Dialect::default(),
        check_queue_url: None,
        check_first_delay_secs: 30,
    };
    let secrets = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .build(),
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .build(),
    );
    Api::new(cfg, secrets, s3)
}

async fn handle(api: &Api, i: &Inputs<'_>) -> hookvault_api::Reply {
    api.handle(
        i.method,
        i.path,
        i.authorization,
        &i.idempotency_keys,
        i.body,
        None,
    )
    .await
}

#[test]
fn fixtures_are_function_url_requests() {
    for (name, fixture) in [
        ("post-prediction", POST),
        ("get-prediction", GET),
        ("unauthenticated", UNAUTHENTICATED),
    ] {
        // The shape itself: API Gateway HTTP API payload 2.0, which Function URLs use.
        let raw: ApiGatewayV2httpRequest = serde_json::from_str(fixture).unwrap();
        assert_eq!(raw.version.as_deref(), Some("2.0"), "{name}");
        assert_eq!(raw.route_key.as_deref(), Some("$default"), "{name}");
        assert!(
            !raw.is_base64_encoded,
            "{name}: a JSON body is sent as text"
        );
        let req = request(fixture);
        let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else {
            panic!("{name}: not read as an HTTP API v2 request");
        };
        // A Function URL, not API Gateway: the `$default` stage (so the path has no stage
        // prefix), the URL's host, and `anonymous` for AuthType NONE.
        assert_eq!(ctx.stage.as_deref(), Some("$default"), "{name}");
        assert_eq!(ctx.account_id.as_deref(), Some("anonymous"), "{name}");
        let host = format!("{URL_ID}.lambda-url.us-east-1.on.aws");
        assert_eq!(ctx.domain_name.as_deref(), Some(host.as_str()), "{name}");
        assert_eq!(req.headers()["host"], host.as_str(), "{name}");
        assert_eq!(req.uri().host(), Some(host.as_str()), "{name}");
        assert_eq!(req.uri().scheme_str(), Some("https"), "{name}");
        assert_eq!(ctx.http.method, *req.method(), "{name}");
        assert_eq!(ctx.http.path.as_deref(), Some(req.uri().path()), "{name}");
        assert_eq!(req.raw_http_path(), req.uri().path(), "{name}");
        if let Some(length) = req.headers().get("content-length") {
            assert_eq!(
                length.to_str().unwrap(),
                req.body().len().to_string(),
                "{name}: content-length is the body's"
            );
        }
    }
}

#[test]
fn post_prediction_carries_a_key_an_idempotency_key_and_a_submission() {
    let req = request(POST);
    let i = Inputs::read(&req);
    assert_eq!((i.method, i.path), ("POST", "/predictions"));
    assert_eq!(auth::bearer(i.authorization), Some(CALLER_KEY));
    let key = idempotency::from_headers(&i.idempotency_keys)
        .unwrap()
        .unwrap();
    assert_eq!(key.as_str(), "974e05f3-dda4-471c-b867-b481ca1db1ad");
    // The provider's names, `{model, input}` (the unauthenticated fixture has the course's).
    let body: serde_json::Value = serde_json::from_slice(i.body).unwrap();
    assert_eq!(body["model"], "stable-video-6s");
    let submission = submit::parse(i.body).unwrap();
    assert_eq!(submission.model_id, "stable-video-6s");
    assert_eq!(submission.inputs["prompt"], "a lake at dawn");
    // The request's trace id: the caller's traceparent.
    assert_eq!(i.trace_id, "960911d4aab1bf2523e62a069275ea8c");
}

#[test]
fn get_prediction_names_the_archived_prediction() {
    let req = request(GET);
    let i = Inputs::read(&req);
    assert_eq!(i.method, "GET");
    assert_eq!(i.path, format!("/predictions/{PREDICTION_ID}"));
    assert_eq!(auth::bearer(i.authorization), Some(CALLER_KEY));
    assert!(i.body.is_empty());
    assert!(i.idempotency_keys.is_empty());
    hookvault_core::archive::check_id(PREDICTION_ID).unwrap();
}

#[tokio::test]
async fn unauthenticated_request_is_refused_before_any_aws_call() {
    let req = request(UNAUTHENTICATED);
    let i = Inputs::read(&req);
    assert_eq!((i.method, i.path), ("POST", "/predictions"));
    assert!(i.authorization.is_none());
    assert!(
        submit::parse(i.body).is_ok(),
        "a valid submission, only unsigned"
    );
    let body: serde_json::Value = serde_json::from_slice(i.body).unwrap();
    assert_eq!(body["model_id"], "stable-video-6s", "the course's names");
    // Served as main serves it: the whole response.
    let resp = api().serve(&req, None).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
    assert_eq!(body["error"], "unauthorized");
}

#[tokio::test]
async fn every_fixture_is_routed_to_an_authenticated_route() {
    // 404 and 405 come before authentication; a 401 for the request without its key
    // shows the route and method were accepted.
    let api = api();
    for (name, fixture) in [
        ("post-prediction", POST),
        ("get-prediction", GET),
        ("unauthenticated", UNAUTHENTICATED),
    ] {
        let req = request(fixture);
        let i = Inputs {
            authorization: None,
            ..Inputs::read(&req)
        };
        let reply = handle(&api, &i).await;
        assert_eq!(reply.status, 401, "{name}: {}", reply.body);
        // The same request with another method is refused by the router.
        let wrong = Inputs {
            method: if i.method == "GET" { "POST" } else { "GET" },
            ..i
        };
        let reply = handle(&api, &wrong).await;
        assert_eq!(reply.status, 405, "{name}: {}", reply.body);
    }
}
