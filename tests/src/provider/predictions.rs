//! The stand-in provider's `POST /v1/predictions`, with the errors of the seed's two
//! tables on demand. The model id picks the behaviour:
//!
//! | `model_id` | answer |
//! |---|---|
//! | `error/{CODE}` | always CODE, in its table's format, with its documented status (429 with `Retry-After: 1`) |
//! | `flaky/{CODE}/{n}` | CODE for the first `n` requests of that model id, then success |
//! | `failed200/{CODE}` | HTTP 200 with a failed Prediction object carrying CODE |
//! | `slow/{ms}` | success, answered after `ms` milliseconds (at most 30 000) |
//! | anything else | 201 `{"id":"pred_N","status":"starting",…}` |
//!
//! A key that is missing or revoked gets 401 `UNAUTHORIZED`. Every request is recorded
//! ([`Submitted`], with its `Idempotency-Key`; [`PredictionState::received`] counts them).
//! The stand-in ignores `Idempotency-Key`: each request it accepts is a new prediction, so
//! a test sees every duplicate the api lets through. With [`PredictionState::complete_with`] set, each accepted prediction
//! is completed a moment later: a signed `succeeded` webhook to its `webhook_url`, with
//! outputs served by this stand-in's CDN.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::json;

use hookvault_core::provider_error::{Api, CODES};

use super::{keys, lock, status, Body, State};

/// One request to `POST /v1/predictions`.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The request body.
    pub body: serde_json::Value,
    /// The key id that authenticated it (`None` if refused).
    pub key_id: Option<String>,
    /// Its `Idempotency-Key` header, if any.
    pub idempotency_key: Option<String>,
}

/// What the predictions endpoint remembers.
#[derive(Debug, Default)]
pub struct PredictionState {
    /// Every request, in order.
    pub submitted: Vec<Submitted>,
    /// Accepted predictions so far.
    pub accepted: u32,
    /// When set, each accepted prediction sends a `succeeded` webhook with this many
    /// outputs of this size.
    pub complete_with: Option<(usize, u64)>,
    /// This server's URL, for output links.
    pub base_url: String,
}

impl PredictionState {
    /// Requests received so far (every `POST /v1/predictions`, accepted or not).
    pub fn received(&self) -> usize {
        self.submitted.len()
    }

    /// Requests made with `model_id`.
    pub fn attempts(&self, model_id: &str) -> usize {
        self.submitted
            .iter()
            .filter(|s| s.body["model_id"] == model_id)
            .count()
    }
}

fn json_answer(code: u16, v: &serde_json::Value, headers: &[(&str, String)]) -> Response<Body> {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    crate::process::json_response(code, v, &headers)
}

/// The error `code` as the provider sends it: `(status, body)`.
pub fn error_body(code: &str) -> (u16, serde_json::Value) {
    let info = CODES.iter().find(|c| c.code == code);
    let status = info.map_or(500, |i| i.status);
    let message = format!("stand-in error {code}");
    match info.map(|i| i.api) {
        Some(Api::Inference) => (
            status,
            json!({"error": {"code": code, "message": message, "status": status, "request_id": "req_standin"}}),
        ),
        _ => (
            status,
            json!({"id": "pred_failed", "status": "failed", "error_id": code, "error_message": message}),
        ),
    }
}

fn error(code: &str) -> Response<Body> {
    let (status, body) = error_body(code);
    let headers = if status == 429 {
        vec![("retry-after", "1".to_owned())]
    } else {
        vec![]
    };
    json_answer(status, &body, &headers)
}

/// A Prediction object for a webhook.
pub fn prediction(id: &str, status: &str, outputs: &[String]) -> String {
    json!({
        "id": id,
        "status": status,
        "output": outputs,
        "created_at": "2026-11-25T00:00:00Z",
    })
    .to_string()
}

/// Serves `POST /v1/predictions`.
pub async fn route(req: Request<Incoming>, state: &Arc<Mutex<State>>) -> Response<Body> {
    if req.method() != hyper::Method::POST {
        return status(405, &[]);
    }
    let api_key = req
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let idempotency_key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Ok(body) = Limited::new(req.into_body(), 1 << 20).collect().await else {
        return status(413, &[]);
    };
    let body: serde_json::Value = serde_json::from_slice(&body.to_bytes()).unwrap_or_default();
    // `slow/{ms}`: the answer comes late (the request is recorded when it is answered).
    if let Some(ms) = body["model_id"]
        .as_str()
        .and_then(|m| m.strip_prefix("slow/"))
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms.min(30_000))).await;
    }
    let mut s = lock(state);
    let key_id = s
        .keys
        .keys
        .iter()
        .find(|k| k.key == api_key && !k.revoked)
        .map(|k| k.id.clone());
    s.predictions.submitted.push(Submitted {
        body: body.clone(),
        key_id: key_id.clone(),
        idempotency_key,
    });
    if key_id.is_none() {
        return error("UNAUTHORIZED");
    }
    let model = body["model_id"].as_str().unwrap_or_default().to_owned();
    let parts: Vec<&str> = model.split('/').collect();
    match parts.as_slice() {
        ["error", code] => return error(code),
        ["failed200", code] => {
            let (_, body) = error_body(code);
            return json_answer(200, &body, &[]);
        }
        ["flaky", code, n] => {
            let n: usize = n.parse().unwrap_or(1);
            if s.predictions.attempts(&model) <= n {
                return error(code);
            }
        }
        _ => {}
    }
    s.predictions.accepted += 1;
    let id = format!("pred_{}", s.predictions.accepted);
    if let (Some((count, size)), Some(url)) =
        (s.predictions.complete_with, body["webhook_url"].as_str())
    {
        let outputs: Vec<String> = (0..count)
            .map(|i| format!("{}/files/{id}-{i}.png?size={size}", s.predictions.base_url))
            .collect();
        let webhook = prediction(&id, "succeeded", &outputs);
        let url = url.to_owned();
        let state = Arc::clone(state);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let secret = lock(&state).keys.webhook_secret.clone();
            let status = keys::send_signed(&url, &webhook, &secret).await;
            eprintln!("stand-in provider: the webhook for the prediction was answered {status:?}");
        });
    }
    json_answer(
        201,
        &json!({"id": id, "status": "starting", "model_id": model, "created_at": "2026-11-25T00:00:00Z"}),
        &[],
    )
}
