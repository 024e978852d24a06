//! The stand-in provider's create call, in the three dialects the api can speak
//! (`functions/api/src/dialect.rs`), with the errors of the seed's two tables on demand:
//!
//! | dialect | path | body |
//! |---|---|---|
//! | [`Dialect::Current`] | `POST /v1/predictions` | `{"model", "input", "webhook": {"url", "events"}}` (the provider's API reference) |
//! | [`Dialect::Course`] | `POST /v1/predictions` | `{"model_id", "inputs", "webhook_url", "webhook_events"}` |
//! | [`Dialect::Legacy`] | `POST /v1/predict` (or `/v1/predictions`, as the provider's CLI sends it) | `{"model", "input", "webhook": "<url>"}` |
//!
//! The webhook is optional in each. A body in none of them gets 400
//! `invalid_request_error`. The model (from `model` or `model_id`) picks the behaviour:
//!
//! | model | answer |
//! |---|---|
//! | `error/{CODE}` | always CODE, in its table's format, with its documented status (429 with `Retry-After: 1`) |
//! | `flaky/{CODE}/{n}` | CODE for the first `n` requests of that model, then success |
//! | `failed200/{CODE}` | HTTP 200 with a failed Prediction object carrying CODE |
//! | `slow/{ms}` | success, answered after `ms` milliseconds (at most 30 000) |
//! | anything else | 201, a Prediction object as the provider documents it ([`created`]): `{"id":"pred_N","status":"starting","model":{"name","type"},…}` |
//!
//! A key that is missing or revoked gets 401 `UNAUTHORIZED`. Every request is recorded
//! ([`Submitted`]: its path, dialect, model, webhook URL and `Idempotency-Key`;
//! [`PredictionState::received`] counts them). The stand-in ignores `Idempotency-Key`:
//! each request it accepts is a new prediction, so a test sees every duplicate the api
//! lets through. Each accepted prediction is kept ([`PredictionState::records`], the
//! Prediction object as answered) for `GET /v1/predictions/{id}` and the list
//! ([`super::polling`]). With [`PredictionState::complete_with`] set, each accepted
//! prediction is completed a moment later (300 ms, or
//! [`PredictionState::completes_after`]): its record turns `succeeded` with
//! outputs served by this stand-in's CDN, and a signed `succeeded` webhook goes to the
//! webhook URL of its dialect, unless [`PredictionState::delivery`] drops it
//! ([`PredictionState::dropped`]) or holds it back ([`super::delivery`]). Without
//! `complete_with`, predictions stay `starting`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::json;

use hookvault_core::provider_error::{Api, CODES};

use super::delivery::{Delivery, Fate};
use super::{keys, lock, polling, status, Body, State};

/// The request shapes the stand-in recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `{"model", "input", "webhook": {"url", "events"}}`, the provider's API reference
    /// (<https://learn.skytells.ai/docs/api/v1/webhooks>).
    Current,
    /// `{"model_id", "inputs", "webhook_url", "webhook_events"}`, the course's shape.
    Course,
    /// `{"model", "input", "webhook": "<url>"}`: the plain-string webhook of the
    /// provider's CLI (`Skytells/cli`, `src/types/index.ts`, `PredictionCreateRequest`),
    /// on `/v1/predict`, the older path (`Skytells/ts-sdk`, `src/endpoints.ts`).
    Legacy,
}

/// What a body in one of the dialects carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognised {
    /// Its dialect.
    pub dialect: Dialect,
    /// The model, from `model` or `model_id`.
    pub model: String,
    /// The model's input, from `input` or `inputs`.
    pub input: serde_json::Value,
    /// The webhook URL, if it has one.
    pub webhook_url: Option<String>,
    /// The events asked for (none in the legacy form).
    pub events: Vec<String>,
}

/// Recognises `body`, sent to `path`: `Err` says why it is in none of the dialects.
/// `/v1/predict` takes only the legacy form; `/v1/predictions` takes all three (the
/// provider's CLI sends the plain-string webhook there).
pub fn recognise(path: &str, body: &serde_json::Value) -> Result<Recognised, String> {
    let Some(obj) = body.as_object() else {
        return Err("the body is not a JSON object".into());
    };
    let has = |k: &str| obj.contains_key(k);
    let allowed: &[&str] = if has("model_id") || has("inputs") {
        &["model_id", "inputs", "webhook_url", "webhook_events"]
    } else {
        &["model", "input", "webhook"]
    };
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unexpected field {k:?} beside {:?}", allowed[0]));
    }
    let (model, input) = (obj.get(allowed[0]), obj.get(allowed[1]));
    let Some(model) = model.and_then(|m| m.as_str()) else {
        return Err(format!("{:?} must be a string", allowed[0]));
    };
    let Some(input) = input.filter(|i| i.is_object()) else {
        return Err(format!("{:?} must be an object", allowed[1]));
    };
    let strings = |v: Option<&serde_json::Value>| -> Result<Vec<String>, String> {
        match v {
            None => Ok(vec![]),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|e| e.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| "events must be strings".to_owned()),
            Some(_) => Err("events must be an array".into()),
        }
    };
    let url = |v: Option<&serde_json::Value>| -> Result<Option<String>, String> {
        match v {
            None => Ok(None),
            Some(serde_json::Value::String(u)) => Ok(Some(u.clone())),
            Some(_) => Err("the webhook URL must be a string".into()),
        }
    };
    let (dialect, webhook_url, events) = if allowed[0] == "model_id" {
        (
            Dialect::Course,
            url(obj.get("webhook_url"))?,
            strings(obj.get("webhook_events"))?,
        )
    } else {
        match obj.get("webhook") {
            Some(serde_json::Value::Object(w)) => {
                if let Some(k) = w.keys().find(|k| !matches!(k.as_str(), "url" | "events")) {
                    return Err(format!("unexpected webhook field {k:?}"));
                }
                if w.get("url").is_none() || w.get("events").is_none() {
                    return Err("the webhook object needs url and events".into());
                }
                (
                    Dialect::Current,
                    url(w.get("url"))?,
                    strings(w.get("events"))?,
                )
            }
            Some(serde_json::Value::String(u)) => (Dialect::Legacy, Some(u.clone()), vec![]),
            Some(_) => return Err("webhook must be an object or a string".into()),
            None if path == "/v1/predict" => (Dialect::Legacy, None, vec![]),
            None => (Dialect::Current, None, vec![]),
        }
    };
    if path == "/v1/predict" && dialect != Dialect::Legacy {
        return Err(format!(
            "/v1/predict takes the legacy form (a plain-string webhook), not {dialect:?}"
        ));
    }
    Ok(Recognised {
        dialect,
        model: model.to_owned(),
        input: input.clone(),
        webhook_url,
        events,
    })
}

/// One request to the create call.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// Its path: `/v1/predictions` or `/v1/predict`.
    pub path: String,
    /// The request body.
    pub body: serde_json::Value,
    /// Its dialect, `None` when it is in none (answered 400).
    pub dialect: Option<Dialect>,
    /// The model, from `model` or `model_id` (empty when neither is a string).
    pub model: String,
    /// The webhook URL of its dialect, if any.
    pub webhook_url: Option<String>,
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
    /// When set, the CDN answers 503 to each completed prediction's outputs for this long
    /// after its completion, then serves them (`/down-until/{unix_ms}/…`,
    /// [`output_urls`]).
    pub outputs_down_for: Option<Duration>,
    /// How long after it is accepted a prediction completes (none: [`COMPLETES_AFTER`]),
    /// e.g. after the first reconciliation check, which then finds it still running.
    pub completes_after: Option<Duration>,
    /// When set, each prediction completes `failed` with this `error` message instead
    /// (no output; its webhook a signed `failed` one).
    pub fails_with: Option<String>,
    /// This server's URL, for output links.
    pub base_url: String,
    /// The model of every `slow/{ms}` request, counted as it arrives: its entry in
    /// `submitted` is made only when it is answered, and a caller that gave up (its
    /// timeout) never sees it answered.
    pub slow_arrivals: Vec<String>,
    /// Every accepted prediction, in order: the Prediction object as the create call
    /// answered it, completed in place ([`super::polling::complete`]).
    pub records: Vec<serde_json::Value>,
    /// Which completion webhooks are dropped or held back.
    pub delivery: Delivery,
    /// The ids of the predictions whose webhooks were dropped, in order.
    pub dropped: Vec<String>,
    /// The ids of the predictions whose webhooks were sent, as each is sent.
    pub sent: Vec<String>,
    /// Each completed prediction's id and when it completed, Unix milliseconds (the
    /// record's `completed_at` has whole seconds), in the order they completed.
    pub completed: Vec<(String, i64)>,
    /// Each sent webhook's prediction id and the answer's status (`None`: no answer), as
    /// each is answered. The stand-in never sends a webhook again, whatever the answer.
    pub answers: Vec<(String, Option<u16>)>,
}

impl PredictionState {
    /// Requests received so far (every create call, accepted or not).
    pub fn received(&self) -> usize {
        self.submitted.len()
    }

    /// Requests made for `model` (sent as `model` or as `model_id`).
    pub fn attempts(&self, model: &str) -> usize {
        self.submitted.iter().filter(|s| s.model == model).count()
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

/// A webhook for prediction `id` reaching `status`, completed now.
pub fn prediction(id: &str, status: &str, outputs: &[String]) -> String {
    let now = hookvault_core::time::rfc3339(hookvault_core::time::unix_now());
    // The wrapped shape of the provider's API reference (learn.skytells.ai,
    // docs/api/v1/webhooks, "Webhook POST payload"; `core/tests/fixtures/skytells/`), with
    // `model` as an object.
    json!({
        "type": format!("prediction.{status}"),
        "created_at": now,
        "data": {
            "id": id,
            "status": status,
            "model": {"name": "truefusion", "type": "image"},
            "stream": false,
            "type": "inference",
            "output": outputs,
            "created_at": now,
            "completed_at": now,
        },
    })
    .to_string()
}

/// The answer to an accepted create call: a Prediction object as the provider documents
/// it (<https://docs.skytells.ai/prediction>, "Prediction Schema"), with `model` as an
/// object `{"name", "type"}` and the webhook as `{"url", "events"}`.
pub fn created(id: &str, r: &Recognised) -> serde_json::Value {
    json!({
        "id": id,
        "status": "starting",
        "stream": false,
        "type": "inference",
        "model": {"name": r.model, "type": "image"},
        "input": r.input,
        "output": null,
        "error": null,
        "created_at": "2026-11-25T00:00:00Z",
        "started_at": null,
        "completed_at": null,
        "updated_at": "2026-11-25T00:00:00Z",
        "privacy": "private",
        "source": "api",
        "webhook": {"url": r.webhook_url, "events": r.events},
        "metrics": {},
        "metadata": {},
        "urls": {"get": format!("/v1/predictions/{id}"), "cancel": format!("/v1/predictions/{id}/cancel")},
    })
}

/// Serves the create call: `POST /v1/predictions` and `POST /v1/predict`.
pub async fn route(req: Request<Incoming>, state: &Arc<Mutex<State>>) -> Response<Body> {
    if req.method() != hyper::Method::POST {
        return status(405, &[]);
    }
    let path = req.uri().path().to_owned();
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
    let recognised = recognise(&path, &body);
    let model = match &recognised {
        Ok(r) => r.model.clone(),
        Err(_) => body["model"]
            .as_str()
            .or(body["model_id"].as_str())
            .unwrap_or_default()
            .to_owned(),
    };
    // `slow/{ms}`: the answer comes late (the request is recorded when it is answered).
    if let Some(ms) = model
        .strip_prefix("slow/")
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        lock(state).predictions.slow_arrivals.push(model.clone());
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
        path,
        body: body.clone(),
        dialect: recognised.as_ref().ok().map(|r| r.dialect),
        model: model.clone(),
        webhook_url: recognised.as_ref().ok().and_then(|r| r.webhook_url.clone()),
        key_id: key_id.clone(),
        idempotency_key,
    });
    if key_id.is_none() {
        return error("UNAUTHORIZED");
    }
    let recognised = match recognised {
        Ok(r) => r,
        Err(why) => {
            return json_answer(
                400,
                &json!({"error": {"code": "invalid_request_error", "message": format!("stand-in: the body is in none of the three dialects: {why}"), "status": 400, "request_id": "req_standin"}}),
                &[],
            )
        }
    };
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
    let n = s.predictions.accepted;
    let id = format!("pred_{n}");
    let mut answer = created(&id, &recognised);
    let now = hookvault_core::time::rfc3339(hookvault_core::time::unix_now());
    answer["created_at"] = json!(now);
    answer["updated_at"] = json!(now);
    s.predictions.records.push(answer.clone());
    if let Some((count, size)) = s.predictions.complete_with {
        let after = s.predictions.completes_after.unwrap_or(COMPLETES_AFTER);
        let down_until_ms = s.predictions.outputs_down_for.map(|d| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            (now + after + d).as_millis()
        });
        let outputs = output_urls(&s.predictions.base_url, &id, count, size, down_until_ms);
        let fate = s.predictions.delivery.fate(n);
        let url = recognised.webhook_url.clone();
        let state = Arc::clone(state);
        let end = match &s.predictions.fails_with {
            Some(message) => End::Failed(message.clone()),
            None => End::Succeeded(outputs),
        };
        tokio::spawn(complete_later(state, id, end, url, fate, after));
    }
    json_answer(201, &answer, &[])
}

/// How long after it is accepted a prediction completes, by default
/// ([`PredictionState::completes_after`]).
pub const COMPLETES_AFTER: Duration = Duration::from_millis(300);

/// The URLs of prediction `id`'s `count` outputs of `size` bytes on the CDN at `base`:
/// `/files/{id}-{i}.png?size=…`, or, with `down_until_ms`, the same file behind
/// `/down-until/{ms}/` (503 until then).
pub fn output_urls(
    base: &str,
    id: &str,
    count: usize,
    size: u64,
    down_until_ms: Option<u128>,
) -> Vec<String> {
    let path = down_until_ms.map_or("files".to_owned(), |ms| format!("down-until/{ms}"));
    (0..count)
        .map(|i| format!("{base}/{path}/{id}-{i}.png?size={size}"))
        .collect()
}

/// How a prediction ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// `succeeded` with these outputs.
    Succeeded(Vec<String>),
    /// `failed` with this error message.
    Failed(String),
}

impl End {
    /// The signed webhook of prediction `id` ending so ([`prediction`]; a failure carries
    /// `error`, and no output).
    pub fn webhook(&self, id: &str) -> String {
        match self {
            End::Succeeded(outputs) => prediction(id, "succeeded", outputs),
            End::Failed(message) => {
                let mut v: serde_json::Value =
                    serde_json::from_str(&prediction(id, "failed", &[])).unwrap_or_default();
                v["data"]["output"] = serde_json::Value::Null;
                v["data"]["error"] = json!(message);
                v.to_string()
            }
        }
    }
}

/// Completes prediction `id` `after` its acceptance, then sends its webhook to `url` as
/// `fate` says.
async fn complete_later(
    state: Arc<Mutex<State>>,
    id: String,
    end: End,
    url: Option<String>,
    fate: Fate,
    after: Duration,
) {
    tokio::time::sleep(after).await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    {
        let mut s = lock(&state);
        if let Some(p) = s.predictions.records.iter_mut().find(|p| p["id"] == id) {
            match &end {
                End::Succeeded(outputs) => {
                    polling::complete(p, outputs, now_ms.div_euclid(1000));
                }
                End::Failed(message) => polling::fail(p, message, now_ms.div_euclid(1000)),
            }
        }
        s.predictions.completed.push((id.clone(), now_ms));
    }
    let Some(url) = url else { return };
    let delay = match fate {
        Fate::Drop => {
            eprintln!("stand-in provider: the webhook for {id} is dropped");
            lock(&state).predictions.dropped.push(id);
            return;
        }
        Fate::Send(delay) => delay,
    };
    tokio::time::sleep(delay).await;
    let webhook = end.webhook(&id);
    let secret = {
        let mut s = lock(&state);
        s.predictions.sent.push(id.clone());
        s.keys.webhook_secret.clone()
    };
    let status = keys::send_signed(&url, &webhook, &secret).await;
    lock(&state).predictions.answers.push((id, status));
    eprintln!("stand-in provider: the webhook for the prediction was answered {status:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOOK: &str = "https://edge.example.com/webhooks/skytells";

    #[test]
    fn each_dialect_is_recognised_with_its_model_and_webhook() {
        let current = json!({"model": "m", "input": {"p": 1}, "webhook": {"url": HOOK, "events": ["prediction.succeeded"]}});
        let course = json!({"model_id": "m", "inputs": {"p": 1}, "webhook_url": HOOK, "webhook_events": ["prediction.completed"]});
        let legacy = json!({"model": "m", "input": {"p": 1}, "webhook": HOOK});
        for (path, body, dialect, events) in [
            (
                "/v1/predictions",
                &current,
                Dialect::Current,
                vec!["prediction.succeeded"],
            ),
            (
                "/v1/predictions",
                &course,
                Dialect::Course,
                vec!["prediction.completed"],
            ),
            ("/v1/predict", &legacy, Dialect::Legacy, vec![]),
            // The provider's CLI sends the string form to /v1/predictions.
            ("/v1/predictions", &legacy, Dialect::Legacy, vec![]),
        ] {
            let r = recognise(path, body).unwrap();
            assert_eq!(
                (
                    r.dialect,
                    r.model.as_str(),
                    r.webhook_url.as_deref(),
                    r.input.clone()
                ),
                (dialect, "m", Some(HOOK), json!({"p": 1})),
                "{path} {body}"
            );
            assert_eq!(r.events, events);
        }
        // The webhook is optional.
        let bare = json!({"model": "m", "input": {}});
        assert_eq!(
            recognise("/v1/predictions", &bare).unwrap().dialect,
            Dialect::Current
        );
        assert_eq!(
            recognise("/v1/predict", &bare).unwrap().dialect,
            Dialect::Legacy
        );
    }

    #[test]
    fn mixed_or_malformed_bodies_are_in_no_dialect() {
        for (path, body) in [
            (
                "/v1/predict",
                json!({"model": "m", "input": {}, "webhook": {"url": HOOK, "events": []}}),
            ),
            (
                "/v1/predict",
                json!({"model_id": "m", "inputs": {}, "webhook_url": HOOK}),
            ),
            ("/v1/predictions", json!({"model": "m", "inputs": {}})),
            ("/v1/predictions", json!({"model_id": "m", "input": {}})),
            (
                "/v1/predictions",
                json!({"model": "m", "input": {}, "webhook_url": HOOK}),
            ),
            (
                "/v1/predictions",
                json!({"model": "m", "input": {}, "webhook": {"url": HOOK}}),
            ),
            (
                "/v1/predictions",
                json!({"model": "m", "input": {}, "webhook": 7}),
            ),
            ("/v1/predictions", json!({"model": 7, "input": {}})),
            ("/v1/predictions", json!({"model": "m", "input": []})),
            ("/v1/predictions", json!([])),
        ] {
            assert!(recognise(path, &body).is_err(), "{path} {body}");
        }
    }

    #[test]
    fn a_failed_end_sends_a_failed_webhook_with_its_error_and_no_output() {
        let v: serde_json::Value =
            serde_json::from_str(&End::Failed("NSFW".into()).webhook("pred_9")).unwrap();
        assert_eq!(v["type"], "prediction.failed");
        assert_eq!(v["data"]["id"], "pred_9");
        assert_eq!(v["data"]["status"], "failed");
        assert_eq!(v["data"]["error"], "NSFW");
        assert!(v["data"]["output"].is_null());
        let ok: serde_json::Value =
            serde_json::from_str(&End::Succeeded(vec!["u".into()]).webhook("p")).unwrap();
        assert_eq!(ok["data"]["output"], json!(["u"]));
    }

    #[test]
    fn outputs_are_files_or_files_behind_a_down_until() {
        assert_eq!(
            output_urls("http://c", "pred_1", 2, 10, None),
            vec![
                "http://c/files/pred_1-0.png?size=10",
                "http://c/files/pred_1-1.png?size=10"
            ]
        );
        assert_eq!(
            output_urls("http://c", "pred_2", 1, 5, Some(1_800_000_000_000)),
            vec!["http://c/down-until/1800000000000/pred_2-0.png?size=5"]
        );
    }

    #[test]
    fn the_answer_is_the_documented_prediction_object() {
        let r = recognise(
            "/v1/predictions",
            &json!({"model": "truefusion", "input": {"prompt": "x"}, "webhook": {"url": HOOK, "events": ["prediction.succeeded"]}}),
        )
        .unwrap();
        let v = created("pred_1", &r);
        assert_eq!(v["id"], "pred_1");
        assert_eq!(v["status"], "starting");
        assert_eq!(v["model"], json!({"name": "truefusion", "type": "image"}));
        assert_eq!(v["input"], json!({"prompt": "x"}));
        assert_eq!(
            v["webhook"],
            json!({"url": HOOK, "events": ["prediction.succeeded"]})
        );
    }
}
